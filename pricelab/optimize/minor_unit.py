"""Prices a shop can charge: every recommended price on its currency's minor unit.

The currency's minor unit (ISO 4217: JPY and KRW have none, BHD/KWD/OMR/JOD/TND three
decimals, most currencies two) is a constraint like a ladder. The currency comes from the
markets table in database mode (the base currency where a market has none) or from a
``currency`` column of a demand table; a demand table without one is solved as given. rows on a ladder keep its
points, frozen rows and rows in conflict keep their current price. Every other row takes
a multiple of its unit inside its own limits, ``ceil(lo)`` .. ``floor(hi)`` (or keeps its
current price when that scores better: the shop already charges it). Rows that nothing
couples take the better of the two units around the continuous optimum (profit is
unimodal, so that is the optimum on the grid); when parity, ordering or a linking
constraint couples rows, the candidate MILP chooses among those units so that every
constraint still holds. The plan's proven bound stays valid: the gap grows by the rounding.
"""

from __future__ import annotations

import numpy as np

from pricelab.errors import SolverError
from pricelab.optimize.candidates import STRICT_MARGIN, solve_milp
from pricelab.optimize.problem import Problem

#: ISO 4217 minor units that are not 2 (currency code -> decimals)
DECIMALS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0,
    "XPF": 0, "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
}  # fmt: skip
DEFAULT_DECIMALS = 2
LOSS_TOL = 1e-5  # a rounded plan this close to the unrounded one ends the search
GAP_SHARE = 0.1  # ... or this share of the plan's proven gap
MAX_REACH_CELLS = 200_000  # candidates of all rows searched by a wider rounding MILP
MAX_ROW_STEPS = 32  # candidates either side of a row at reach 1 (parity items, _item_steps)
#: branch-and-bound nodes of one rounding MILP: the search stops on work done, not on the
#: clock (it stopped on 60 s, then 10 s, of wall time), so a loaded machine returns the
#: plan a quiet one does. Every rounding MILP of the test suite ends at its root node.
NODE_LIMIT = 2_000
#: wall-clock guard only, far above any solve seen (the bundled sample's largest rounding
#: MILP: 11 CPU s): the node limit is what bounds a search
GUARD_SECONDS = 900.0


def decimals(currency: object) -> int:
    """Decimals of a currency's minor unit (2 when unknown or missing)."""
    if not isinstance(currency, str) or not currency.strip():
        return DEFAULT_DECIMALS
    return DECIMALS.get(currency.strip().upper(), DEFAULT_DECIMALS)


def units(prob: Problem) -> np.ndarray:
    """Each row's minor unit (0.01, 1, 0.001 ...); NaN where the price is not rounded
    (a ladder sets the price points, or the row is frozen at its current price)."""
    f = prob.frame
    if "currency" not in f.columns:  # a demand table that does not say: prices as solved
        return np.full(prob.n, np.nan)
    u = np.array([10.0 ** -decimals(c) for c in f["currency"].to_list()], dtype=float)
    return np.where(np.isnan(prob.ladder_spacing) & ~prob.frozen, u, np.nan)


def _grid(x: np.ndarray, u: np.ndarray, up: bool) -> np.ndarray:
    """``x`` to a multiple of ``u`` (up or down), robust to float noise (39.99 / 0.01)."""
    with np.errstate(invalid="ignore"):  # an open limit (inf) stays open
        k = x / u
        r = np.round(k)
        near = np.abs(k - r) <= 1e-9 * np.maximum(1.0, np.abs(k))
        k = np.where(near, r, np.ceil(k) if up else np.floor(k))
        return np.where(np.isfinite(x), np.round(k * u, 6), x)


#: why rows coupled by parity, ordering or a link keep the solver's price
NO_COMBINATION = (
    "no prices on the minor units near the plan meet parity, ordering and the linked "
    "constraints together: the solver's price is kept"
)


def round_prices(
    prob: Problem, p: np.ndarray, groups: np.ndarray, gap: float = 0.0
) -> tuple[np.ndarray, dict[int, str]]:
    """Prices on their minor unit meeting every constraint; and why each row that could
    not be rounded keeps the solver's price (no multiple of the unit inside the row's
    limits, or no rounded combination meets the coupling constraints).

    The rounding MILP widens its window around ``p`` until the rounded plan is within
    ``LOSS_TOL``, or within ``GAP_SHARE`` of ``gap`` (the plan's proven gap), of ``p``'s
    objective: a wider search cannot change the reported gap by more than that. When the
    one MILP over every coupled row finds no plan (infeasible after rounding, or stopped
    by its node limit), each independent block (:meth:`Problem.coupled_blocks`: an item's
    markets under parity, a linked group) is rounded on its own, so that only the blocks
    that cannot be rounded keep the solver's prices."""
    found, unrounded = _round(prob, p, groups, gap)
    if found is not None:
        return found, unrounded
    blocks = prob.coupled_blocks(groups)
    free = np.ones(prob.n, dtype=bool)
    for r in blocks:
        free[r] = False
    out, why = p.copy(), dict[int, str]()
    for k, r in enumerate([*blocks, np.flatnonzero(free)]):
        if r.size == 0:
            continue
        sub = prob.take(r)
        got: np.ndarray | None = None
        sub_why: dict[int, str] = {}
        if not (len(blocks) == 1 and k == 0):  # else the joint search just failed on it
            got, sub_why = _round(sub, p[r], _renumbered(groups[r]), gap)
        if got is None:
            got, sub_why = p[r], _kept(sub)
        out[r] = got
        why |= {int(r[i]): m for i, m in sub_why.items()}
    return out, why


def _kept(prob: Problem) -> dict[int, str]:
    """Why each row that takes a unit keeps the solver's price when no rounded plan was
    found: no unit inside its limits, else no rounded combination meets the constraints."""
    _, lo, hi, todo = _limits_on_units(prob)
    return {int(i): NO_COMBINATION for i in np.flatnonzero(todo)} | no_unit_inside(
        prob, todo & (lo > hi)
    )


def _renumbered(groups: np.ndarray) -> np.ndarray:
    """Parity group codes 0..k-1 (-1 kept) for a sub-problem's rows."""
    out = np.full(groups.size, -1, dtype=groups.dtype)
    m = groups >= 0
    out[m] = np.unique(groups[m], return_inverse=True)[1]
    return out


def _limits_on_units(prob: Problem) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each row's unit (1 where none), and its limits on the unit: ``(u, lo, hi, todo)``,
    ``todo`` the rows that take a unit."""
    u = units(prob)
    todo = ~np.isnan(u)
    uu = np.where(todo, u, 1.0)
    lo = _grid(np.maximum(prob.lo, 0.0), uu, up=True)
    hi = _grid(np.where(np.isfinite(prob.hi), prob.hi, np.inf), uu, up=False)
    return uu, lo, hi, todo


def _round(
    prob: Problem, p: np.ndarray, groups: np.ndarray, gap: float
) -> tuple[np.ndarray | None, dict[int, str]]:
    """Rounded prices of every row at once (None: no rounded plan of the coupled rows was
    found), and the rows with no unit inside their limits."""
    uu, lo_u, hi_u, todo = _limits_on_units(prob)
    if not todo.any():
        return p, {}
    lo, hi = np.where(todo, lo_u, p), np.where(todo, hi_u, p)
    room = todo & (lo <= hi)
    unrounded = no_unit_inside(prob, todo & ~room)
    coupled = bool(prob.links) or bool(prob.ordering) or bool((groups >= 0).any())
    P = _candidates(prob, p, uu, lo, hi, room, 1)
    valid = ~np.isnan(P)
    value = np.where(valid, prob.objective_value(np.where(valid, P, 1.0)), -np.inf)
    best = P[np.arange(prob.n), np.argmax(value, axis=1)]
    if not coupled:
        return best, unrounded
    for r in (best, _inside_bands(prob, p, uu, lo, hi, room, groups)):
        if _holds(prob, r, groups):
            return r, unrounded
    steps = _item_steps(prob, p, uu, room, groups)
    try:
        found = _search(prob, p, groups, gap, (uu, lo, hi, room, steps))
    except SolverError:  # no plan within the node limit
        found = None
    return found, unrounded


def no_unit_inside(prob: Problem, rows: np.ndarray) -> dict[int, str]:
    """Why each of ``rows`` (mask) keeps a price off its minor unit: none lies inside its
    limits (e.g. floor 10.004 and cap 10.006 in a 2-decimal currency)."""
    u = units(prob)
    cur = prob.frame["currency"].to_list() if "currency" in prob.frame.columns else []
    return {
        int(i): f"no multiple of its minor unit ({u[i]:g} {cur[i]}) between its limits "
        f"{prob.lo[i]:.6g} and {prob.hi[i]:.6g}: the solver's price is kept"
        for i in np.nonzero(rows)[0]
    }


def _search(
    prob: Problem, p: np.ndarray, groups: np.ndarray, gap: float, grid: tuple
) -> np.ndarray | None:
    """The rounding MILP on widening windows of units around ``p`` (None: no rounded plan
    meets every constraint). A window is widened only while the best plan so far loses more
    than the tolerance and some row's choice sits on the window's edge (inside its limits):
    when none does, the window did not hold the plan where it is. Rows whose window is
    strided (:func:`_spacing`) then choose among the units between their strides around
    the plan found."""
    u, lo, hi, room, steps = grid
    target = float(prob.objective_value(p).sum())
    tol = max(LOSS_TOL, GAP_SHARE * gap) * abs(target)
    found, found_v = None, -np.inf
    down, up = _grid(p, u, up=False), _grid(p, u, up=True)
    count, stride = _spacing(steps)
    for reach in (1, 4, 16):  # the candidate MILP on the units around each price
        span = reach * count
        if found is not None and 2 * float(span.sum()) > MAX_REACH_CELLS:
            break  # a wider search is too large
        try:
            got = _choose(prob, _candidates(prob, p, u, lo, hi, room, reach, steps), groups)
        except SolverError:  # no plan within the node limit
            if found is None:
                raise
            got = None
        if got is not None and float(prob.objective_value(got).sum()) > found_v:
            found, found_v = got, float(prob.objective_value(got).sum())
        if found is not None:
            if target - found_v <= tol:
                break  # close enough to the unrounded plan
            low_edge, high_edge = down - (span - 1) * stride * u, up + (span - 1) * stride * u
            eps = 1e-9 * np.maximum(1.0, np.abs(p))
            edge = (found <= low_edge + eps) & (low_edge - u >= lo - eps)
            edge |= (found >= high_edge - eps) & (high_edge + u <= hi + eps)
            if not (room & edge).any():
                break  # no row pressed against the window: a wider one is not needed
    if found is not None and (stride > 1).any() and target - found_v > tol:
        fine = _candidates(prob, found, u, lo, hi, room, 1, np.maximum(stride, 2))
        try:
            got = _choose(prob, fine, groups)
        except SolverError:
            got = None
        if got is not None and float(prob.objective_value(got).sum()) > found_v:
            found = got
    return found


def _choose(prob: Problem, P: np.ndarray, groups: np.ndarray) -> np.ndarray | None:
    """The candidate MILP's best plan among ``P`` that meets every constraint (None: it
    found none; :class:`SolverError` when it stopped without a plan)."""
    valid = ~np.isnan(P)
    value = np.where(valid, prob.objective_value(np.where(valid, P, 1.0)), 0.0)
    for margin in (STRICT_MARGIN, 0.0):  # narrowed first: HiGHS meets rows to ~1e-6
        res = solve_milp(
            prob,
            P,
            value,
            parity_groups=groups,
            parity_gap=np.nan_to_num(prob.parity_gap),
            time_limit=GUARD_SECONDS,
            margin=margin,
            node_limit=NODE_LIMIT,
        )
        ok = res.status != "infeasible" and not np.isnan(res.prices).any()
        if ok and _holds(prob, res.prices, groups):
            return res.prices
    return None


def on_units(prob: Problem, P: np.ndarray) -> np.ndarray:
    """A candidate matrix (n, K) on each row's minor unit: every candidate to the nearest
    unit inside the row's limits ``ceil(lo)`` .. ``floor(hi)``, repeats dropped, and the
    current price kept when it lies within the limits (the shop already charges it).

    Routes that choose among candidates (the expected-profit and CVaR MILP, the cross route)
    then return prices on the grid that meet every constraint by construction. Rows without
    a unit (ladder, frozen, no currency) and rows with no unit inside their limits keep
    their candidates (:func:`off_grid` counts them).
    """
    uu, lo, hi, todo = _limits_on_units(prob)
    if not todo.any():
        return P
    room = todo & (lo <= hi)
    with np.errstate(invalid="ignore"):
        near = np.round(np.round(P / uu[:, None]) * uu[:, None], 6)
    S = np.where(room[:, None], np.clip(near, lo[:, None], hi[:, None]), P)
    cur = np.where(room & (prob.p0 >= prob.lo) & (prob.p0 <= prob.hi), prob.p0, np.nan)
    S = np.sort(np.column_stack([np.round(S, 9), cur]), axis=1)  # the current price exact
    S[:, 1:][S[:, 1:] == S[:, :-1]] = np.nan  # sorted: a repeat follows its twin
    S = np.sort(S, axis=1)
    return S[:, ~np.all(np.isnan(S), axis=0)]


def neighbours(prob: Problem, x: np.ndarray) -> np.ndarray:
    """(n, 2): the units just below and above ``x`` (``x`` itself on rows without a unit),
    so that a linear constraint met by ``x`` can be met by a choice between them."""
    u = units(prob)
    uu = np.where(np.isnan(u), 1.0, u)
    down, up = _grid(x, uu, up=False), _grid(x, uu, up=True)
    return np.where(np.isnan(u)[:, None], x[:, None], np.column_stack([down, up]))


def off_grid(prob: Problem, p: np.ndarray) -> np.ndarray:
    """Rows that should be on a minor unit but are not (nor at their current price)."""
    u = units(prob)
    with np.errstate(invalid="ignore"):
        k = p / np.where(np.isnan(u), 1.0, u)
        bad = np.abs(k - np.round(k)) > 1e-6 * np.maximum(1.0, np.abs(k))
    return ~np.isnan(u) & bad & ~np.isclose(p, prob.p0, rtol=1e-12, atol=0.0)


def _inside_bands(
    prob: Problem,
    p: np.ndarray,
    u: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    room: np.ndarray,
    groups: np.ndarray,
) -> np.ndarray:
    """Parity rows in the lower half of their item's band rounded up, the upper half down
    (the band can only narrow); other rows to the better neighbouring unit."""
    b = p / prob.fx
    m = groups >= 0
    better_up = prob.objective_value(_grid(p, u, True)) >= prob.objective_value(_grid(p, u, False))
    if not m.any():
        r = np.where(better_up, _grid(p, u, up=True), _grid(p, u, up=False))
        return np.where(room, np.clip(r, lo, hi), p)
    g = groups[m]
    ng = int(g.max()) + 1
    bmin, bmax = np.full(ng, np.inf), np.zeros(ng)
    np.minimum.at(bmin, g, b[m])
    np.maximum.at(bmax, g, b[m])
    low = np.zeros(prob.n, dtype=bool)
    low[m] = b[m] <= (bmin[g] + bmax[g]) / 2
    up = np.where(m, low, better_up)
    r = np.where(room, np.clip(np.where(up, _grid(p, u, True), _grid(p, u, False)), lo, hi), p)
    # the band's new floor, then the upper rows under (1 + gap) times it
    new_min = np.full(ng, np.inf)
    np.minimum.at(new_min, g, (r / prob.fx)[m])
    cap = np.full(prob.n, np.inf)
    cap[m] = (1 + np.nan_to_num(prob.parity_gap[m])) * new_min[g] * prob.fx[m]
    top = m & ~low & room
    r[top] = np.maximum(_grid(np.minimum(p[top], cap[top]), u[top], up=False), lo[top])
    return r


def _holds(prob: Problem, r: np.ndarray, groups: np.ndarray, tol: float = 1e-9) -> bool:
    """``r`` meets parity, ordering and every linking constraint (row limits hold already)."""
    m = groups >= 0
    if m.any():
        g = groups[m]
        b = r[m] / prob.fx[m]
        ng = int(g.max()) + 1
        bmin, bmax = np.full(ng, np.inf), np.zeros(ng)
        np.minimum.at(bmin, g, b)
        np.maximum.at(bmax, g, b)
        if (bmax[g] > bmin[g] * (1 + np.nan_to_num(prob.parity_gap[m])) * (1 + tol)).any():
            return False
    for lower, upper, f, _name in prob.ordering:
        if (r[upper] < f * r[lower] * (1 - tol)).any():
            return False
    return all(lk.holds(prob, r, tol) for lk in prob.links)


def _item_steps(
    prob: Problem, p: np.ndarray, u: np.ndarray, room: np.ndarray, groups: np.ndarray
) -> np.ndarray:
    """Units either side of a row's price at reach 1: one, or on a parity item as many as
    move the row by the item's largest relative unit (:func:`_spacing` turns more than
    ``MAX_ROW_STEPS`` into a stride).

    A parity row pinned at a limit rounds one way by up to its unit (1 yen on 20,000 is
    5e-5); the item's other markets must be able to follow by as much, and a 0.001 dinar
    on 50 is 2e-5: one unit either side leaves the band unmeetable (the 40-item case: 7
    items; 150 items: infeasible at 4 units). Capped at 32 units, a dinar row next to a
    yen row at its floor (1 yen on 134 is 7.5e-3, 0.001 dinar on 118 is 8.5e-6: 880
    units) could not follow even at reach 16, and that one item left every row of the
    plan unrounded (10 items in JPY/GBP/KWD/CHF, parity 3%).
    """
    k = np.ones(prob.n)
    m = (groups >= 0) & room
    if not m.any():
        return k
    rel = np.where(m, u / np.maximum(p, 1e-300), 0.0)
    big = np.zeros(int(groups.max()) + 1)
    np.maximum.at(big, groups[m], rel[m])
    k[m] = np.ceil(big[groups[m]] / rel[m] * (1 - 1e-9))
    return np.maximum(k, 1)


def _spacing(steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(candidates, stride) per side and reach: a row that must reach ``steps`` units takes
    at most ``MAX_ROW_STEPS`` candidates, ``stride`` units apart, beyond its two
    neighbouring units (``count * stride >= steps``)."""
    stride = np.ceil(steps / MAX_ROW_STEPS)
    return np.ceil(steps / stride), stride


def _candidates(
    prob: Problem,
    p: np.ndarray,
    u: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    room: np.ndarray,
    reach: int,
    steps: np.ndarray | None = None,
) -> np.ndarray:
    """Per row: the units from ``reach * steps`` below to as many above ``p`` within
    [lo, hi] (``steps`` per row, default 1; past ``MAX_ROW_STEPS`` every ``stride``-th unit
    beyond the two around ``p``, :func:`_spacing`), and the current price when it lies
    within the row's limits (NaN pads; unrounded rows: p)."""
    down, up = _grid(p, u, up=False), _grid(p, u, up=True)
    count, stride = _spacing(np.ones(prob.n) if steps is None else steps)
    span = reach * count
    ks = range(int(span.max()))
    cand = [np.where(k < span, np.round(down - k * stride * u, 9), np.nan) for k in ks]
    cand += [np.where(k < span, np.round(up + k * stride * u, 9), np.nan) for k in ks]
    cols = [np.where(room & (c >= lo - 1e-9) & (c <= hi + 1e-9), c, np.nan) for c in cand]
    cols.append(np.where(room & (prob.p0 >= prob.lo) & (prob.p0 <= prob.hi), prob.p0, np.nan))
    P = np.column_stack(cols)
    P[:, 0] = np.where(room, np.clip(down, lo, hi), p)  # every row keeps one candidate
    P = np.sort(np.round(P, 9), axis=1)  # NaN pads last
    P[:, 1:][P[:, 1:] == P[:, :-1]] = np.nan  # drop repeats (a row's down == up on the grid)
    P = np.sort(P, axis=1)
    return P[:, ~np.all(np.isnan(P), axis=0)]
