"""The cross route's solve on a built problem (:func:`solve_cross`), re-run by the binding
explanations without one constraint (:func:`pricelab.optimize.binding.explain`).

Blocks of substitutes (connected components of the cross matrix) small enough are
enumerated and one MILP chooses a combination per block (:mod:`.cross_milp`); larger
blocks get a best-response search and a relaxation bound (:mod:`.cross_search`). Every
returned price is checked against every constraint with the cross demand (:func:`violations`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
from scipy.sparse.csgraph import connected_components

from pricelab.demand.curves import CrossElasticity
from pricelab.errors import SolverError, UsageError
from pricelab.optimize import diagnose as dg
from pricelab.optimize.binding import binding_labels
from pricelab.optimize.candidates import candidate_matrix, with_ordering_points
from pricelab.optimize.cross_diagnose import conflicting_set
from pricelab.optimize.cross_milp import choose_combinations, enumerate_block
from pricelab.optimize.cross_refine import OnCandidates, merge, refine
from pricelab.optimize.cross_search import best_response, block_objective, relaxation_bound
from pricelab.optimize.decompose import Responder
from pricelab.optimize.links import Link, UnitsLink
from pricelab.optimize.minor_unit import neighbours
from pricelab.optimize.problem import Problem

MAX_COMBOS = 250_000  # per block: enumerated exactly up to this many price combinations
MAX_TOTAL = 2_000_000  # over all blocks
MAX_RISK_VALUES = 5_000_000  # with --risk / --expected: combinations x draws enumerated


@dataclass
class CrossSolved:
    """The cross route's plan on a problem: prices, objective, proven gap and how."""

    prices: np.ndarray
    objective: float
    gap: float
    status: str
    formulation: str
    certificate: str
    labels: list[str]
    blocks: int
    combinations: int
    risk: dict[str, float] | None = None


def solve_cross(
    prob: Problem,
    resp: Responder,
    curve: CrossElasticity,
    *,
    n_grid: int = 15,
    max_combos: int = MAX_COMBOS,
    time_limit: float = 600.0,
    alpha: float | None = None,
    E: np.ndarray | None = None,
    refine_grid: bool = True,
) -> CrossSolved:
    """Price every block of substitutes (see the module docstring).

    Own-elasticity draws ``E`` (S, n): maximise the expected objective over the draws
    (``--expected``); with ``alpha`` subject to CVaR_alpha(objective) >= the current prices'
    CVaR (``--risk``).
    ``refine_grid``: refine the grids around the plan (:mod:`.cross_refine`); False keeps
    the first grid's plan (for comparison).
    """
    cvar = (
        None if alpha is None or E is None else (alpha, _cvar(_base_draws(prob, curve, E), alpha))
    )
    P = merge(
        prob, with_ordering_points(prob, candidate_matrix(prob, n_grid)), np.zeros((prob.n, 0))
    )
    msgs = dg.ladder_conflicts(prob, P)
    if msgs:
        dg.raise_infeasible(msgs)
    links = list(prob.links)  # dedicated stock included (build_problem(stock_floors=False))

    choose = partial(choose_combinations, prob, links=links, groups=resp.groups, cvar=cvar)

    def solve_on(P: np.ndarray) -> OnCandidates:
        counts = (~np.isnan(P)).sum(axis=1)
        blocks, small, sizes = _partition(
            prob, curve, counts, links, resp.groups, max_combos, E is not None
        )
        if E is not None:
            _check_risk_size(float(sizes.sum()), E.shape[0])
        enum = [
            enumerate_block(prob, curve, P, counts, b, E)
            for b, s in zip(blocks, small, strict=True)
            if s
        ]
        res = choose(enum, time_limit=time_limit)
        return OnCandidates(P, counts, blocks, small, sizes, enum, res)

    on = solve_on(P)
    if on.res["status"] == "infeasible":
        # a grid can miss a narrow band (a tight parity gap): the relaxation's mixture
        # prices (and the units either side) join the candidates, as on the own-price route
        mix = choose(on.enum, time_limit=time_limit, relax=True)
        free = np.isnan(prob.ladder_spacing) & (prob.lo < prob.hi) & ~prob.frozen
        if mix and (free & ~np.isnan(mix["mixture"])).any():
            add = np.where(free[:, None], neighbours(prob, mix["mixture"]), np.nan)
            on = solve_on(merge(prob, P, add))
    if on.res["status"] == "infeasible":
        dg.raise_infeasible(conflicting_set(prob, on.enum, links, resp.groups, time_limit, cvar))
    on, rounds = refine(prob, curve, links, resp.groups, on, solve_on) if refine_grid else (on, 0)
    blocks, small, sizes, enum, res = on.blocks, on.small, on.sizes, on.enum, on.res
    p = on.prices(prob.p0)
    big = [b for b, s in zip(blocks, small, strict=True) if not s]
    bound_big = obj_big = 0.0
    for b in big:
        p[b] = best_response(prob, curve, on.P, on.counts, b)
        got = float(block_objective(prob, curve, p, b).sum())
        obj_big += got
        bound_big += relaxation_bound(prob, curve, b, incumbent=got)
    obj = float(block_objective(prob, curve, p).sum())
    bad = violations(prob, curve, p, resp.groups, links)
    if bad:
        raise SolverError("cross-price plan violates: " + "; ".join(bad[:3]))
    risk = None
    if E is not None:  # the objective is the expected one over the draws
        per = sum(e["draws"][:, k] for e, k in zip(enum, res["choice"], strict=True))
        obj = float(np.mean(per))
    if cvar is not None:
        risk = {"alpha": cvar[0], "draws": float(per.size), "cvar_floor": cvar[1]}
        risk["plan_cvar"] = _cvar(per, cvar[0])
    bound = obj - obj_big + bound_big + res["bound_excess"]
    gap = max(0.0, (bound - obj) / max(abs(obj), 1e-12))
    n_comb = int(sizes[small].sum())
    form, cert = _texts(prob, on, len(big), rounds, risk, n_grid, None if E is None else len(E))
    tight = _tight_links(prob, curve, p, links)
    labels = binding_labels(prob, p, parity_groups=resp.groups, tight_links=tight, milp=True)
    return CrossSolved(p, obj, gap, res["status"], form, cert, labels, len(blocks), n_comb, risk)


def _texts(
    prob: Problem,
    on: OnCandidates,
    n_big: int,
    rounds: int,
    risk: dict[str, float] | None,
    n_grid: int,
    draws: int | None,
) -> tuple[str, str]:
    """The plan's formulation and certificate: blocks, the MILP, the polish rounds, the
    objective over ``draws`` own-elasticity draws and the risk floor."""
    used_milp = on.res["milp"]
    form = (
        f"cross-price demand: {len(on.blocks)} block(s), {int(on.small.sum())} enumerated "
        f"({int(on.sizes[on.small].sum())} price combinations)"
        + (f", {n_big} by best-response search" if n_big else "")
        + ("; MILP over combinations (HiGHS)" if used_milp else "")
    )
    if risk is not None:
        form += (
            f"; expected {prob.objective} over {int(risk['draws'])} own-elasticity draws with "
            f"CVaR_{risk['alpha']:g} >= the current prices' (Rockafellar-Uryasev)"
        )
    elif draws is not None:
        form += f"; expected {prob.objective} over {draws} own-elasticity draws"
    if (~np.isnan(prob.ladder_spacing)).all():
        candidates = "ladder points"
    else:
        candidates = f"{n_grid}-point grids"
        if rounds:
            most = int(on.counts[np.isnan(prob.ladder_spacing)].max())
            candidates += (
                f", plus {rounds} round(s) of continuous-price polish: up to {most} prices a row"
            )
    cert = f"exact on the candidate prices ({candidates})" + ("; HiGHS gap" if used_milp else "")
    if n_big:
        cert += "; large blocks: concave relaxation bound in log-price space (secant of exp)"
    return form, cert


def _base_draws(prob: Problem, curve: CrossElasticity, E: np.ndarray) -> np.ndarray:
    """The current prices' total objective under each own-elasticity draw (S,)."""
    q = curve.quantity_draws(prob.p0, E)
    return (prob.horizon * (prob.p0 - prob.cost) * q / prob.fx).sum(axis=1)


def _cvar(values: np.ndarray, alpha: float) -> float:
    """Mean of the worst ceil(alpha S) of S values (the floor's and the plan's CVaR)."""
    k = max(1, int(np.ceil(alpha * values.size)))
    return float(np.sort(values)[:k].mean())


def _check_risk_size(combinations: float, draws: int) -> None:
    if combinations * draws > MAX_RISK_VALUES:
        raise UsageError(
            f"--risk/--expected: {combinations:.3g} price combinations x {draws} draws = "
            f"{combinations * draws:.3g} values to enumerate, above {MAX_RISK_VALUES:.0e}; "
            "use fewer --draws, a coarser ladder or tighter bounds"
        )


def _partition(
    prob: Problem,
    curve: CrossElasticity,
    counts: np.ndarray,
    links: list[Link],
    groups: np.ndarray,
    max_combos: int,
    risk: bool = False,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Blocks of substitutes, which are small enough to enumerate, and their sizes.

    A block too large to enumerate may not carry a linking constraint, nor any block an
    objective over draws (``risk``: ``--risk``'s CVaR floor links them all, and the search
    for large blocks knows point estimates only) (UsageError).
    """
    blocks = _blocks(curve)
    sizes = np.array([float(np.prod(counts[b].astype(float))) for b in blocks])
    small = sizes <= max_combos
    if sizes[small].sum() > MAX_TOTAL:
        small &= sizes <= max(1.0, MAX_TOTAL / max(1, small.sum()))
    linked = (groups >= 0) | risk
    for lk in links:
        linked[lk.rows] = True
    for lower, upper, _f, _name in prob.ordering:
        linked[lower] = linked[upper] = True
    for b, s, size in zip(blocks, small, sizes, strict=True):
        if not s and linked[b].any():
            raise UsageError(
                f"{prob.label(int(b[0]))}: its block of {b.size} substitutes has {size:.3g} "
                "price combinations, beyond the exact joint route; with parity, ordering, "
                "volume, stock or budget constraints on it, or --risk / --expected, use a coarser "
                "ladder, tighter bounds or a smaller category"
            )
    return blocks, small, sizes


def _blocks(curve: CrossElasticity) -> list[np.ndarray]:
    M = curve.matrix
    _, lab = connected_components(M + M.T, directed=False)
    order = np.argsort(lab, kind="stable")
    cuts = np.flatnonzero(np.diff(lab[order])) + 1
    return list(np.split(order, cuts))


def violations(
    prob: Problem,
    curve: CrossElasticity,
    p: np.ndarray,
    groups: np.ndarray,
    links: list[Link],
    tol: float = 1e-7,
) -> list[str]:
    """Every constraint the prices break, evaluated with the cross demand (empty: none)."""
    out = []
    for i in np.flatnonzero(p < prob.lo * (1 - tol)).tolist():
        out.append(f"{prob.label(i)} price {p[i]:.4f} below its floor {prob.lo[i]:.4f}")
    for i in np.flatnonzero(p > prob.hi * (1 + tol)).tolist():
        out.append(f"{prob.label(i)} price {p[i]:.4f} above its cap {prob.hi[i]:.4f}")
    marg = prob.sources["min_margin_pct"]
    for i in np.flatnonzero(~np.isnan(marg) & (p < marg * (1 - tol)) & ~prob.frozen).tolist():
        out.append(f"{prob.label(i)} breaks min_margin_pct")
    lad = ~np.isnan(prob.ladder_spacing) & ~prob.frozen
    k = (p - prob.ladder_offset) / np.where(lad, prob.ladder_spacing, 1.0)
    for i in np.flatnonzero(lad & (np.abs(k - np.round(k)) > 1e-6)).tolist():
        out.append(f"{prob.label(i)} price {p[i]:.4f} is off its ladder")
    for g in np.unique(groups[groups >= 0]):
        r = np.flatnonzero(groups == g)
        b = p[r] / prob.fx[r]
        if b.max() > (1 + float(prob.parity_gap[r[0]])) * b.min() * (1 + tol):
            out.append(f"parity of {prob.item[r[0]]}")
    for lower, upper, f, name in prob.ordering:
        if (p[upper] < f * p[lower] * (1 - tol)).any():
            out.append(f"ordering {name}")
    q = curve.quantity(p)
    for lk in links:
        # units links are judged on the cross demand's units, the others on the prices
        ok = (
            lk.units_hold(prob, q[lk.rows].sum(), tol)
            if isinstance(lk, UnitsLink)
            else lk.holds(prob, p, tol)
        )
        if not ok:
            out.append(lk.name)
    return out


def _tight_links(
    prob: Problem, curve: CrossElasticity, p: np.ndarray, links: list[Link]
) -> list[int]:
    """The problem's links that bind at ``p`` under the cross demand (units at their limit;
    a budget always counts, as in the candidate MILP)."""
    q = curve.quantity(p)
    return [
        j
        for j, lk in enumerate(prob.links)
        if not isinstance(lk, UnitsLink) or lk.at_limit(prob, q[lk.rows].sum())
    ]
