"""Category pricing under cross-price demand: the ``cross`` route of ``optimize``.

Demand ``q_i = q0_i prod_j (p_j / p0_j) ** e_ij`` (:class:`~pricelab.demand.curves.CrossElasticity`)
couples the items of a category within a market, and profit is not concave in prices, so
no convex formulation is exact. The route:

1. Blocks: the connected components of the cross matrix (the items that substitute, per
   market). Items without siblings are blocks of one.
2. Candidates per row: its ladder points, or a geometric grid plus its current price and
   own optimum (:func:`~pricelab.optimize.candidates.candidate_matrix`), inside the row's
   limits (bounds, margin floor, frozen).
3. A block with at most ``max_combos`` price combinations is enumerated: every combination's
   exact objective, units and prices. One MILP chooses a combination per block (HiGHS via
   ``scipy.optimize.milp``) under parity, ordering, volume floors, stock (pools and dedicated) and
   average-change budgets, all linear in the choice; without such constraints each block
   takes its best combination. **Exact on the candidate prices** (on the ladder when one is
   set); the MILP's proven gap is reported.
4. A larger block (refused when a linking constraint touches it) gets a best-response
   search over the candidates from two starts, and an upper bound from a concave relaxation
   in log-price space (each revenue term ``exp(a'u)`` replaced by its secant over the box,
   the cost terms ``-c q0 exp(b'u)`` kept: concave, solved by cvxpy). The relative gap to
   that bound is reported.

Every returned price is checked against every constraint with the cross demand
(:func:`violations`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from scipy.sparse.csgraph import connected_components

from pricelab.demand.curves import CrossElasticity
from pricelab.errors import DataError, SolverError, UsageError
from pricelab.optimize import diagnose as dg
from pricelab.optimize.avg_change import implied_caps
from pricelab.optimize.binding import binding_labels
from pricelab.optimize.candidates import candidate_matrix, with_ordering_points
from pricelab.optimize.conflicts import MODES, freeze_row_conflicts, with_status
from pricelab.optimize.constraints import load_constraints
from pricelab.optimize.cross_milp import choose_combinations, enumerate_block
from pricelab.optimize.cross_search import best_response, block_objective, relaxation_bound
from pricelab.optimize.decompose import Responder
from pricelab.optimize.links import Link, StockPool, UnitsLink
from pricelab.optimize.minor_unit import on_units
from pricelab.optimize.plan import Plan, with_skipped_rows
from pricelab.optimize.problem import Problem, build_problem
from pricelab.optimize.router import (
    check_bounded,
    optimize_own_price,
    plan_table,
    with_intervals,
)

MAX_COMBOS = 250_000  # per block: enumerated exactly up to this many price combinations
MAX_TOTAL = 2_000_000  # over all blocks


def optimize_cross(
    demand: pl.DataFrame,
    cross: pl.DataFrame,
    constraints: Any = None,
    *,
    strict: bool = False,
    n_grid: int = 15,
    max_combos: int = MAX_COMBOS,
    time_limit: float = 600.0,
    conflicts: str = "raise",
    draws: int | None = None,
    seed: int = 0,
) -> Plan:
    """Joint price plan for substitutes (see the module docstring).

    Parameters
    ----------
    demand:
        Contract demand table (own ``elasticity`` per row).
    cross:
        ``item_id, market, other_item_id, elasticity``: the effect of ``other_item_id``'s
        price on ``item_id``'s units; a null/empty market applies in every market.
    constraints:
        As :func:`pricelab.optimize.optimize` (``ordering`` included).
    n_grid:
        Grid prices per row without a ladder.
    max_combos:
        Blocks with more price combinations than this use the bounded search.
    draws, seed:
        Own-elasticity draws (from the demand table's ``std_error``; cross terms at their
        estimates) for the P5-P95 profit of plan and baseline, as on the own-price route.
    conflicts:
        ``keep``: a row whose own limits conflict stays at its current price with ``status``
        ``conflict`` (as on the own-price route); conflicts between rows still raise, since
        units under cross demand depend on the siblings' prices. ``raise``: InfeasibleError.
    """
    cons = load_constraints(constraints)
    prob, resp, reasons = _checked_problem(demand, cross, cons, strict, conflicts, draws)
    curve = CrossElasticity.from_tables(prob.frame, cross)
    P = on_units(prob, with_ordering_points(prob, candidate_matrix(prob, n_grid)))
    msgs = dg.ladder_conflicts(prob, P)
    if msgs:
        dg.raise_infeasible(msgs)
    counts = (~np.isnan(P)).sum(axis=1)
    links = _links(prob)
    blocks, small, sizes = _partition(prob, curve, counts, links, resp.groups, max_combos)
    p = prob.p0.copy()
    enum = [
        enumerate_block(prob, curve, P, counts, b) for b, s in zip(blocks, small, strict=True) if s
    ]
    res = choose_combinations(prob, enum, links, resp.groups, time_limit)
    for e, k in zip(enum, res["choice"], strict=True):
        p[e["rows"]] = e["prices"][k]
    big = [b for b, s in zip(blocks, small, strict=True) if not s]
    bound_big = obj_big = 0.0
    for b in big:
        p[b] = best_response(prob, curve, P, counts, b)
        obj_big += float(block_objective(prob, curve, p, b).sum())
        bound_big += relaxation_bound(
            prob, curve, b, incumbent=float(block_objective(prob, curve, p, b).sum())
        )
    obj = float(block_objective(prob, curve, p).sum())
    bad = violations(prob, curve, p, resp.groups, links)
    if bad:
        raise SolverError("cross-price plan violates: " + "; ".join(bad[:3]))
    bound = obj - obj_big + bound_big + res["bound_excess"]
    gap = max(0.0, (bound - obj) / max(abs(obj), 1e-12))
    n_comb = int(sizes[small].sum())
    form, cert = _describe(
        prob, len(blocks), int(small.sum()), n_comb, len(big), res["milp"], n_grid
    )
    tight = _tight_links(prob, curve, p, links)
    labels = binding_labels(prob, p, parity_groups=resp.groups, tight_links=tight, milp=True)
    base = float(block_objective(prob, curve, prob.p0).sum())
    extra: dict[str, Any] = {"path": "cross", "blocks": len(blocks), "combinations": n_comb}
    single = _single_itemblock_objective(demand, cons, prob, curve)
    if reasons:
        extra["conflicts"] = [
            {"item_id": str(prob.item[i]), "market": str(prob.market[i]), "reason": why}
            for i, why in reasons.items()
        ]
    if single is not None:
        extra["single_item_objective"] = single
        extra["single_item_share_of_joint"] = single / obj if obj else None
    table = with_status(_plan_table(prob, curve, p, labels), reasons)
    intervals: dict[str, float] = {}
    if draws:
        table, intervals = with_intervals(prob, table, p, draws, seed, _draws_objective(curve))
    return Plan(
        table=with_skipped_rows(table, demand, prob.skipped, prob.horizon),
        intervals=intervals,
        status=res["status"],
        formulation=form,
        objective_name=prob.objective,
        objective=obj,
        baseline_objective=base,
        gap=gap,
        certificate=cert,
        skipped=prob.skipped,
        extra=extra,
    )


def _checked_problem(
    demand: pl.DataFrame,
    cross: pl.DataFrame,
    cons: Any,
    strict: bool,
    conflicts: str,
    draws: int | None,
) -> tuple[Problem, Responder, dict[int, str]]:
    """The problem with its options checked, own-row conflicts frozen (``keep``) and every
    conflict that is not about to be frozen raised: ``(problem, responder, reasons)``."""
    for col in ("item_id", "market", "other_item_id", "elasticity"):
        if col not in cross.columns:
            raise DataError(f"cross table: missing column '{col}'")
    prob = build_problem(demand, cons, strict=strict)
    if prob.n == 0:
        raise DataError(f"demand table: no row can be optimised ({prob.skipped.height} skipped)")
    if draws is not None and draws < 2:
        raise UsageError(f"draws must be >= 2, got {draws}")
    implied_caps(prob)
    if conflicts not in MODES:
        raise UsageError(f"conflicts must be one of {', '.join(MODES)}, got {conflicts!r}")
    reasons = freeze_row_conflicts(prob) if conflicts == "keep" else {}
    check_bounded(prob)
    resp = Responder(prob)
    msgs = dg.row_conflicts(prob) + dg.parity_conflicts(prob, resp.groups)
    msgs += dg.ordering_conflicts(prob)
    if msgs:
        dg.raise_infeasible(msgs)
    return prob, resp, reasons


def _draws_objective(curve: CrossElasticity) -> Any:
    """Per-draw, per-row objective (base currency) under the cross demand, own elasticities
    drawn: what :func:`~pricelab.optimize.router.with_intervals` takes."""

    def objective(prob: Problem, price: np.ndarray, E: np.ndarray) -> np.ndarray:
        q = curve.quantity_draws(price, E)
        return prob.horizon * (price - prob.c) * q / prob.fx

    return objective


def _partition(
    prob: Problem,
    curve: CrossElasticity,
    counts: np.ndarray,
    links: list[Link],
    groups: np.ndarray,
    max_combos: int,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Blocks of substitutes, which are small enough to enumerate, and their sizes.

    A block too large to enumerate may not carry a linking constraint (UsageError).
    """
    blocks = _blocks(curve)
    sizes = np.array([float(np.prod(counts[b].astype(float))) for b in blocks])
    small = sizes <= max_combos
    if sizes[small].sum() > MAX_TOTAL:
        small &= sizes <= max(1.0, MAX_TOTAL / max(1, small.sum()))
    linked = groups >= 0
    for lk in links:
        linked[lk.rows] = True
    for lower, upper, _f, _name in prob.ordering:
        linked[lower] = linked[upper] = True
    for b, s, size in zip(blocks, small, sizes, strict=True):
        if not s and linked[b].any():
            raise UsageError(
                f"{prob.label(int(b[0]))}: its block of {b.size} substitutes has {size:.3g} "
                "price combinations, beyond the exact joint route; with parity, ordering, "
                "volume, stock or budget constraints on it use a coarser ladder, tighter bounds "
                "or a smaller category"
            )
    return blocks, small, sizes


def _describe(
    prob: Problem,
    n_blocks: int,
    n_small: int,
    n_comb: int,
    n_big: int,
    used_milp: bool,
    n_grid: int,
) -> tuple[str, str]:
    """The plan's formulation and certificate texts."""
    form = (
        f"cross-price demand: {n_blocks} block(s), {n_small} enumerated "
        f"({n_comb} price combinations)"
        + (f", {n_big} by best-response search" if n_big else "")
        + ("; MILP over combinations (HiGHS)" if used_milp else "")
    )
    cert = "exact on the candidate prices (" + (
        "ladder points" if (~np.isnan(prob.ladder_spacing)).all() else f"{n_grid}-point grids"
    )
    cert += ")" + ("; HiGHS gap" if used_milp else "")
    if n_big:
        cert += "; large blocks: concave relaxation bound in log-price space (secant of exp)"
    return form, cert


def _blocks(curve: CrossElasticity) -> list[np.ndarray]:
    M = curve.matrix
    n_comp, lab = connected_components(M + M.T, directed=False)
    order = np.argsort(lab, kind="stable")
    cuts = np.flatnonzero(np.diff(lab[order])) + 1
    return list(np.split(order, cuts))


def _links(prob: Problem) -> list[Link]:
    """The problem's linking constraints plus each row's dedicated stock as a one-row pool."""
    out: list[Link] = list(prob.links)
    stock = prob.sources["inventory"]
    for i in np.flatnonzero(~np.isnan(stock)):
        cap = float(prob.frame["stock"][int(i)])
        out.append(StockPool(f"inventory ({prob.label(int(i))})", np.array([i]), cap))
    return out


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


def _plan_table(
    prob: Problem, curve: CrossElasticity, p: np.ndarray, labels: list[str]
) -> pl.DataFrame:
    """The own-price route's plan columns with the cross demand's units, plus
    ``cannibalised_quantity`` (over the horizon): the part of a row's change in units that
    comes from its siblings' new prices, positive when siblings got dearer and sent buyers
    over, negative when a sibling's cut took buyers away."""
    table = plan_table(prob, p, labels, weekly_quantity=curve.quantity(p))
    return table.with_columns(
        pl.Series("cannibalised_quantity", prob.horizon * curve.cannibalised(p))
    )


def _single_itemblock_objective(
    demand: pl.DataFrame, cons: Any, prob: Problem, curve: CrossElasticity
) -> float | None:
    """The objective, under the cross demand, of the plan that prices each item alone."""
    from pricelab.errors import PricelabError

    try:
        plan = optimize_own_price(demand, cons, conflicts="keep")
    except PricelabError:
        return None
    got = plan.table.select("item_id", "market", "recommended_price")
    keys = pl.DataFrame({"item_id": prob.item.astype(str), "market": prob.market.astype(str)})
    joined = keys.join(got, on=["item_id", "market"], how="left", maintain_order="left")
    p = joined["recommended_price"].to_numpy().astype(float)
    p = np.where(np.isnan(p), prob.p0, p)
    return float(block_objective(prob, curve, p).sum())
