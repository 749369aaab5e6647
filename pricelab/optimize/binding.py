"""Which constraints hold each price where it is (the plan's ``binding`` column)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from pricelab.errors import PricelabError
from pricelab.optimize.closed_form import argmax_interval, unconstrained_price
from pricelab.optimize.links import Link, UnitsLink
from pricelab.optimize.problem import Problem

REL = 1e-7


def _close(a: np.ndarray, b: np.ndarray, rel: float = REL) -> np.ndarray:
    return np.abs(a - b) <= rel * np.maximum(1.0, np.abs(b))


def _on_limit(
    p: np.ndarray, limit: np.ndarray, step: np.ndarray, free: np.ndarray, side: int
) -> np.ndarray:
    """The price sits on ``limit`` (upper: ``side`` +1, lower: -1): on it, or, on a ladder,
    on the last point before it with the row's own optimum ``free`` beyond it."""
    on = _close(p, limit)
    with np.errstate(invalid="ignore"):
        gap = side * (limit - p)
        near = (step > 0) & (gap >= 0) & (gap < step * (1 - 1e-9)) & (side * (free - p) > 0)
    return on | near


def _bands(
    prob: Problem, groups: np.ndarray, p: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Parity bands at prices ``p``: the rows in a parity group (mask), then per such row its
    base price, its group's lowest and highest base price, and its gap."""
    m = groups >= 0
    g = groups[m]
    b = p[m] / prob.fx[m]
    ng = int(g.max()) + 1
    bmin, bmax = np.full(ng, np.inf), np.zeros(ng)
    np.minimum.at(bmin, g, b)
    np.maximum.at(bmax, g, b)
    return m, b, bmin[g], bmax[g], np.nan_to_num(prob.parity_gap[m])


def binding_labels(
    prob: Problem,
    p: np.ndarray,
    *,
    parity_groups: np.ndarray,
    row_shift: np.ndarray | None = None,
    tight_links: list[int] | None = None,
    milp: bool = False,
) -> list[str]:
    """Comma-separated constraint names per row.

    A bound binds when the price sits on it; parity when the item's band is tight, the
    row sits on its edge and its own optimum lies elsewhere; a linking constraint when
    its multiplier (decomposition) or tightness (MILP) moves the row off its own optimum;
    a ladder when the row is on a ladder and not on a bound.
    """
    n = prob.n
    labels: list[list[str]] = [[] for _ in range(n)]
    free = unconstrained_price(prob.cost, prob.e)
    step = np.nan_to_num(prob.ladder_spacing)  # 0 off the ladder
    at_hi = np.isfinite(prob.hi) & _on_limit(p, prob.hi, step, free, +1)
    at_lo = (prob.lo > 0) & _on_limit(p, prob.lo, step, free, -1)
    own = argmax_interval(prob.lo, prob.hi, prob.cost, prob.p0, prob.q0, prob.e)
    moved = ~_close(p, own)
    for i in np.flatnonzero(prob.frozen):
        labels[i].append("frozen")
    for i in np.flatnonzero(at_hi & ~prob.frozen):
        labels[i].append(prob.hi_src[i])
    for name in ("max_decrease_pct", "min_margin_pct", "inventory", "max_extrapolation_pct"):
        v = prob.sources.get(name, np.full(n, np.nan))
        on = at_lo & ~prob.frozen & ~np.isnan(v)
        on[on] = _on_limit(p[on], v[on], step[on], free[on], -1)
        for i in np.flatnonzero(on):
            labels[i].append(name)
    if (parity_groups >= 0).any():
        m, b, bmin, bmax, gap = _bands(prob, parity_groups, p)
        tight = bmax >= bmin * (1 + gap) * (1 - 1e-6)
        edge = _close(b, bmin) | _close(b, bmax)
        rows = np.flatnonzero(m)[tight & edge]
        for i in rows:
            if moved[i] and not (at_lo[i] or at_hi[i]):
                labels[i].append("parity")
    if row_shift is not None:
        for i in np.flatnonzero((row_shift != 0) & moved & ~at_lo & ~at_hi):
            labels[i].append("inventory" if row_shift[i] > 0 else "min_volume_pct")
    if tight_links:
        for j in tight_links:
            lk = prob.links[j]
            for i in lk.rows[moved[lk.rows]]:
                if lk.key not in labels[i]:
                    labels[i].append(lk.key)
    for lower, upper, f, _name in prob.ordering:
        tight = p[upper] <= f * p[lower] * (1 + REL)
        for i in np.concatenate([lower[tight], upper[tight]]):
            if moved[i] and "ordering" not in labels[i]:
                labels[i].append("ordering")
    if milp:
        for i in np.flatnonzero(~np.isnan(prob.ladder_spacing) & ~at_lo & ~at_hi):
            labels[i].append("ladder")
    return [",".join(dict.fromkeys(x)) for x in labels]


#: labels a re-solve decides (constraints that couple rows, and ladders); row limits stay analytic
COUPLED = ("parity", "ordering", "min_volume_pct", "inventory", "max_avg_change_pct", "ladder")
CHANGE_REL = 1e-6  # a re-solved price this far from the plan's has moved
ROW_CHECKS = 8  # laddered rows one step inside a limit re-solved one by one up to this many
LINK_CHECKS = 8  # stock limits re-solved one by one (to tell a row's own from a sibling's)


def _without(prob: Problem, key: str) -> Problem | None:
    """``prob`` with every constraint named ``key`` removed (None when it has none)."""
    n = prob.n
    q = replace(prob, lo=prob.lo.copy(), hi=prob.hi.copy())
    if key == "parity":
        q.parity_gap = np.full(n, np.nan)
        return None if np.isnan(prob.parity_gap).all() else q
    if key == "ladder":
        q.ladder_spacing = np.full(n, np.nan)
        return None if np.isnan(prob.ladder_spacing).all() else q
    if key == "ordering":
        q.ordering = []
        return q if prob.ordering else None
    q.links = [lk for lk in prob.links if lk.key != key]
    return q if len(q.links) < len(prob.links) else None


def _subject(
    prob: Problem, key: str, groups: np.ndarray, p_free: np.ndarray, reach: Any = None
) -> np.ndarray:
    """Rows the constraint ``key`` applies to (parity: items whose band it has to close;
    a units link: the rows whose prices enter it, see :func:`_reach`)."""
    n = prob.n
    if key == "ladder":
        return ~np.isnan(prob.ladder_spacing)
    if key == "ordering":
        m = np.zeros(n, dtype=bool)
        for lower, upper, _f, _name in prob.ordering:
            m[lower] = m[upper] = True
        return m
    if key == "parity":
        if not (groups >= 0).any():
            return groups >= 0
        m, _b, bmin, bmax, gap = _bands(prob, groups, p_free)
        out = np.zeros(n, dtype=bool)
        out[np.flatnonzero(m)] = bmax > bmin * (1 + gap) * (1 + CHANGE_REL)
        return out
    m = np.zeros(n, dtype=bool)
    for lk in prob.links:
        if lk.key == key:
            m[_reach(lk, reach)] = True
    return m


def _reach(lk: Link, reach: Any) -> np.ndarray:
    """Rows whose prices enter the constraint ``lk``: its rows, and under cross-price demand
    (``reach``: the elasticity matrix) a units link's rows' siblings as well."""
    if reach is None or not isinstance(lk, UnitsLink):
        return lk.rows
    return np.union1d(lk.rows, reach[lk.rows].nonzero()[1])


def explain(
    prob: Problem,
    p: np.ndarray,
    labels: list[str],
    groups: np.ndarray,
    resolve: Callable[[Problem], np.ndarray],
    keys: tuple[str, ...] = COUPLED,
    reach: Any = None,
) -> list[str]:
    """``binding`` by counterfactual: a coupling constraint (parity, ordering, a linking
    constraint, a ladder) holds a row when re-solving without it moves the row's price.

    ``keys``: the constraints tested by re-solves (others keep the route's own label).
    ``reach``: the cross-price elasticity matrix, when a row's units depend on its siblings'
    prices: a volume floor or stock then also holds the siblings of its rows, and a row held
    by another row's stock is labelled ``inventory of ITEM/MARKET`` (see :func:`_labelled`).

    Row limits (bounds, margin floor, dedicated stock, extrapolation cap, frozen) keep the
    analytic test (the price sits on the limit); a laddered row one step inside a limit is
    held by it when the limit one step wider moves it (:func:`_check_ladder_neighbours`).
    Under cross-price demand (``reach``) the row's own optimum does not say which of its
    limits it presses against, so every limit within one ladder step is tested; a limit and
    a coupling constraint that hold a row together (neither alone moves it, both lifted
    together do) are both named (:func:`_held_together`); and a laddered row that no limit
    holds says ``ladder``. ``resolve`` solves a problem the same way the plan was solved; a
    re-solve that fails leaves the route's own label for that key.
    """
    rows: list[list[str]] = [
        [x for x in s.split(",") if x and (x not in keys or _row_limit(prob, i, x))]
        for i, s in enumerate(labels)
    ]
    if reach is not None:
        _add_near_limits(prob, p, rows)
    dropped = _check_ladder_neighbours(prob, p, rows, resolve)
    for key in keys:
        q = _without(prob, key)
        if q is None:
            continue
        try:
            p_free = resolve(q)
        except PricelabError:
            for i, s in enumerate(labels):
                if key in s.split(",") and key not in rows[i]:
                    rows[i].append(key)
            continue
        moved = ~_close(p_free, p, CHANGE_REL)
        held = moved & _subject(prob, key, groups, p_free, reach) & ~prob.frozen
        for i, names in _labelled(prob, p, key, held, resolve, reach).items():
            rows[i] += [x for x in names if x not in rows[i]]
    if reach is not None:
        _held_together(prob, p, rows, dropped, keys, groups, resolve, reach)
        _ladder_unless_limited(prob, rows)
    return [",".join(dict.fromkeys(r)) for r in rows]


def _labelled(
    prob: Problem,
    p: np.ndarray,
    key: str,
    held: np.ndarray,
    resolve: Callable[[Problem], np.ndarray],
    reach: Any,
) -> dict[int, list[str]]:
    """Labels of the rows that the constraints named ``key`` hold together (``held``).

    Where each of those constraints would give a held row the same label (the key: parity,
    budgets, volume floors, stock on its own rows), that is the label. Where they differ (a
    row's own stock or a sibling's, under cross-price demand), each constraint that reaches a
    held row is re-solved without it alone (up to :data:`LINK_CHECKS` of them) and labels the
    rows it moves; a held row that no single one moves (held by two together), and every
    held row when more constraints reach them, keeps the key.
    """
    idx = np.flatnonzero(held).tolist()
    if reach is None or not idx:  # each constraint reaches its own rows only: the key
        return {i: [key] for i in idx}
    near = [(lk, _reach(lk, reach)) for lk in prob.links if lk.key == key]
    touching = [(lk, r) for lk, r in near if np.isin(r, idx).any()]
    if len(near) == 1:  # the re-solve was without this one
        return {i: [near[0][0].label_for(i)] for i in idx}
    if all(lk.label_for(i) == key for lk, r in touching for i in r.tolist()) or (
        len(touching) > LINK_CHECKS
    ):
        return {i: [key] for i in idx}
    out: dict[int, list[str]] = {}
    for lk, r in touching:
        try:
            p_one = resolve(replace(prob, links=[x for x in prob.links if x is not lk]))
        except PricelabError:
            continue
        moved = ~_close(p_one, p, CHANGE_REL) & ~prob.frozen
        for i in r[moved[r]].tolist():
            out.setdefault(i, []).append(lk.label_for(i))
    for i in idx:
        out.setdefault(i, [key])
    return out


def _row_limit(prob: Problem, i: int, name: str) -> bool:
    """``name`` is the row's own price limit (an implied budget cap, dedicated stock)."""
    return name in (prob.hi_src[i], prob.lo_src[i])


LO_NAMES = ("max_decrease_pct", "min_margin_pct", "inventory", "max_extrapolation_pct")


def _limit_names(prob: Problem, i: int) -> set[str]:
    """Names of row ``i``'s own price limits (the names its ``binding`` can show for them)."""
    lows = {x for x in LO_NAMES if not np.isnan(prob.sources.get(x, np.full(prob.n, np.nan))[i])}
    return ({"frozen", str(prob.hi_src[i]), str(prob.lo_src[i])} | lows) - {""}


def _add_near_limits(prob: Problem, p: np.ndarray, rows: list[list[str]]) -> None:
    """Under cross-price demand: every limit within one ladder step of a laddered row's
    price becomes a candidate label, on either side (the own optimum, which
    :func:`binding_labels` uses to pick the side, is not the joint one); the neighbour check
    keeps those that hold."""
    step = np.nan_to_num(prob.ladder_spacing)
    near = (step > 0) & ~prob.frozen
    with np.errstate(invalid="ignore"):
        up = near & np.isfinite(prob.hi) & (prob.hi - p >= 0) & (prob.hi - p < step * (1 - 1e-9))
        low = near & (prob.lo > 0) & (p - prob.lo >= 0) & (p - prob.lo < step * (1 - 1e-9))
    for i in np.flatnonzero(up).tolist():
        if prob.hi_src[i] not in rows[i]:
            rows[i].append(str(prob.hi_src[i]))
    for name in LO_NAMES:
        v = prob.sources.get(name, np.full(prob.n, np.nan))
        with np.errstate(invalid="ignore"):
            on = low & ~np.isnan(v) & (p - v >= 0) & (p - v < step * (1 - 1e-9))
        for i in np.flatnonzero(on).tolist():
            if name not in rows[i]:
                rows[i].append(name)


def _widened(prob: Problem, batch: list[int], side: int) -> Problem:
    """``prob`` with the rows' upper (``side`` +1) or lower (-1) limit one ladder step wider
    (the floors' sources too: the cross route checks its plan against the margin floor's)."""
    step = np.nan_to_num(prob.ladder_spacing)
    src = {k: v.copy() for k, v in prob.sources.items()}
    q = replace(prob, lo=prob.lo.copy(), hi=prob.hi.copy(), sources=src)
    if side > 0:
        q.hi[batch] += step[batch]
    else:
        q.lo[batch] = np.maximum(q.lo[batch] - step[batch], 0.0)
        for name in LO_NAMES:
            if name in src:
                src[name][batch] = np.minimum(src[name][batch], q.lo[batch])
    return q


def _check_ladder_neighbours(
    prob: Problem, p: np.ndarray, rows: list[list[str]], resolve: Callable[[Problem], np.ndarray]
) -> list[tuple[int, int, list[str]]]:
    """A laddered row one step inside a row limit is held by it only if, with the limit one
    ladder step wider, the row takes the next point: re-solve and drop the label otherwise.

    Returns the dropped labels as ``(row, side, names)`` (side +1 upper, -1 lower), for
    :func:`_held_together`."""
    step = np.nan_to_num(prob.ladder_spacing)
    dropped: list[tuple[int, int, list[str]]] = []
    for side in (+1, -1):
        near: dict[str, list[int]] = {}
        for i in np.flatnonzero(step > 0).tolist():
            for name in rows[i]:
                if side > 0 and name == prob.hi_src[i] and not _close(p[i], prob.hi[i]):
                    near.setdefault(name, []).append(i)
                if side < 0 and name in LO_NAMES:
                    v = prob.sources.get(name, np.full(prob.n, np.nan))[i]
                    if not _close(p[i], v):
                        near.setdefault(name, []).append(i)
        gone: dict[int, list[str]] = {}
        for name, idx in near.items():
            # one row at a time (a budget couples them); many rows: all at once
            batches = [[i] for i in idx] if len(idx) <= ROW_CHECKS else [idx]
            for batch in batches:
                try:
                    p_wide = resolve(_widened(prob, batch, side))
                except PricelabError:
                    continue
                for i in batch:
                    if _close(p_wide[i], p[i], CHANGE_REL):
                        rows[i].remove(name)
                        gone.setdefault(i, []).append(name)
        dropped += [(i, side, names) for i, names in gone.items()]
    return dropped


def _touches(prob: Problem, key: str, i: int, groups: np.ndarray, reach: Any) -> bool:
    """Some constraint named ``key`` involves row ``i``'s price."""
    if key == "parity":
        return bool(groups[i] >= 0)
    if key == "ordering":
        return any(i in lower or i in upper for lower, upper, _f, _n in prob.ordering)
    return any(i in _reach(lk, reach) for lk in prob.links if lk.key == key)


def _held_together(
    prob: Problem,
    p: np.ndarray,
    rows: list[list[str]],
    dropped: list[tuple[int, int, list[str]]],
    keys: tuple[str, ...],
    groups: np.ndarray,
    resolve: Callable[[Problem], np.ndarray],
    reach: Any,
) -> None:
    """A row limit and a coupling constraint that hold a row together: lifting either alone
    leaves the price where it is (each holds it without the other), lifting both moves it.
    For each label the neighbour check dropped (up to :data:`ROW_CHECKS` rows), re-solve with
    the limit one step wider and each coupling constraint that reaches the row lifted; where
    the row moves, both are named (the coupling constraint as :func:`_labelled` names it)."""
    for i, side, names in dropped[:ROW_CHECKS]:
        wide = _widened(prob, [i], side)
        for key in keys:
            q = _without(wide, key)
            if q is None or any(x.split(" of ")[0] == key for x in rows[i]):
                continue
            if not _touches(prob, key, i, groups, reach):
                continue
            try:
                p_both = resolve(q)
            except PricelabError:
                continue
            if _close(p_both[i], p[i], CHANGE_REL):
                continue
            mask = np.zeros(prob.n, dtype=bool)
            mask[i] = True
            got = _labelled(wide, p, key, mask, resolve, reach).get(i, [key])
            rows[i] += [x for x in names + got if x not in rows[i]]


def _ladder_unless_limited(prob: Problem, rows: list[list[str]]) -> None:
    """A laddered row says ``ladder`` exactly when none of its own limits holds it."""
    for i in np.flatnonzero(~np.isnan(prob.ladder_spacing) & ~prob.frozen).tolist():
        limited = any(x in _limit_names(prob, i) for x in rows[i])
        if limited and "ladder" in rows[i]:
            rows[i].remove("ladder")
        elif not limited and "ladder" not in rows[i]:
            rows[i].insert(0, "ladder")
