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
   set); the MILP's proven gap is reported. With ``risk`` the MILP maximises the expected
   objective over own-elasticity draws under a CVaR floor (Rockafellar-Uryasev rows), with
   ``expected`` the same objective without the floor. Rows
   with grid prices are then polished with continuous prices, which join the candidates
   (:mod:`~pricelab.optimize.cross_refine`). When nothing meets the constraints, the
   smallest conflicting set is named (:mod:`~pricelab.optimize.cross_diagnose`).
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

from pricelab.demand.curves import CrossElasticity
from pricelab.errors import DataError, PricelabError, UsageError
from pricelab.optimize import diagnose as dg
from pricelab.optimize.avg_change import implied_caps
from pricelab.optimize.binding import COUPLED, explain
from pricelab.optimize.conflicts import (
    MODES,
    freeze_group_conflicts,
    freeze_row_conflicts,
    with_status,
)
from pricelab.optimize.constraints import load_constraints
from pricelab.optimize.cross_search import block_objective
from pricelab.optimize.cross_solve import MAX_COMBOS, CrossSolved, solve_cross, violations
from pricelab.optimize.decompose import Responder
from pricelab.optimize.links import UnitsLink
from pricelab.optimize.plan import Plan, with_skipped_rows
from pricelab.optimize.plan_table import plan_table, with_intervals
from pricelab.optimize.problem import Problem, build_problem
from pricelab.optimize.router import check_bounded, optimize_own_price, parse_risk
from pricelab.optimize.routes import DEFAULT_RISK_DRAWS, elasticity_draws_of

__all__ = ["MAX_COMBOS", "optimize_cross", "violations"]


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
    risk: str | None = None,
    expected: bool = False,
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
    risk:
        ``cvar:ALPHA``: maximise the expected objective over the draws (``draws``, default
        200) subject to CVaR_ALPHA(objective) >= the current prices' CVaR, in the
        combination MILP (exact on the candidate prices); the plan's P5-P95 profit is
        reported, and ``extra["risk"]`` has the floor and the plan's CVaR.
    expected:
        Maximise the expected objective over the draws (``draws``, default 200) without a
        floor, in the same MILP (exact on the candidate prices); the plan's P5-P95 profit is
        reported. With ``risk`` as well, the CVaR floor applies.
    conflicts:
        ``keep``: a row whose own limits conflict stays at its current price with ``status``
        ``conflict`` (as on the own-price route), and so do the rows of a parity band, an
        ordering chain or an average-change budget that no prices within the rows' limits can
        meet; conflicts of volume floors, stock and the CVaR floor raise InfeasibleError
        naming the smallest set that conflicts, since units under cross demand depend on the
        siblings' prices. ``raise``: InfeasibleError.
    """
    cons = load_constraints(constraints)
    alpha = parse_risk(risk)
    prob, resp, reasons = _checked_problem(demand, cross, cons, strict, conflicts, draws)
    curve = CrossElasticity.from_tables(prob.frame, cross)
    opts: dict[str, Any] = {"n_grid": n_grid, "max_combos": max_combos, "time_limit": time_limit}
    if alpha is not None or expected:
        draws = draws or DEFAULT_RISK_DRAWS
        opts |= {"alpha": alpha, "E": elasticity_draws_of(prob, draws, seed)}
    sol = solve_cross(prob, resp, curve, **opts)
    p = sol.prices

    def resolve(q: Problem) -> np.ndarray:  # the same route without one constraint
        return solve_cross(q, Responder(q), curve, **opts).prices

    # the ladder keeps its label (on a ladder, not on a bound): without it the re-solve
    # enumerates grids of n_grid prices, 50x the ladder's combinations (84 s vs 1.6 s)
    keys = tuple(k for k in COUPLED if k != "ladder")
    labels = explain(prob, p, sol.labels, resp.groups, resolve, keys, reach=curve.matrix)
    base = float(block_objective(prob, curve, prob.p0).sum())
    table = with_status(_plan_table(prob, curve, p, labels), reasons)
    intervals: dict[str, float] = {}
    if draws:
        table, intervals = with_intervals(prob, table, p, draws, seed, _draws_objective(curve))
    return Plan(
        table=with_skipped_rows(table, demand, prob.skipped, prob.horizon),
        intervals=intervals,
        status=sol.status,
        formulation=sol.formulation,
        objective_name=prob.objective,
        objective=sol.objective,
        baseline_objective=base,
        gap=sol.gap,
        certificate=sol.certificate,
        skipped=prob.skipped,
        extra=_extra(demand, cons, prob, curve, sol, reasons),
    )


def _extra(
    demand: pl.DataFrame,
    cons: Any,
    prob: Problem,
    curve: CrossElasticity,
    sol: CrossSolved,
    reasons: dict[int, str],
) -> dict[str, Any]:
    """The plan's ``extra``: blocks, combinations, rows kept for conflicts, the risk floor,
    and the objective of pricing each item alone (under the cross demand) beside the joint."""
    extra: dict[str, Any] = {
        "path": "cross",
        "blocks": sol.blocks,
        "combinations": sol.combinations,
    }
    if reasons:
        extra["conflicts"] = [
            {"item_id": str(prob.item[i]), "market": str(prob.market[i]), "reason": why}
            for i, why in reasons.items()
        ]
    if sol.risk is not None:
        extra["risk"] = sol.risk
    single = _single_item_objective(demand, cons, prob, curve)
    if single is not None:
        extra["single_item_objective"] = single
        extra["single_item_share_of_joint"] = single / sol.objective if sol.objective else None
    return extra


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
    prob = build_problem(demand, cons, strict=strict, stock_floors=False)
    if prob.n == 0:
        raise DataError(f"demand table: no row can be optimised ({prob.skipped.height} skipped)")
    if draws is not None and draws < 2:
        raise UsageError(f"draws must be >= 2, got {draws}")
    implied_caps(prob)
    if conflicts not in MODES:
        raise UsageError(f"conflicts must be one of {', '.join(MODES)}, got {conflicts!r}")
    reasons = freeze_row_conflicts(prob) if conflicts == "keep" else {}
    if conflicts == "keep":  # parity, ordering and budgets: constraints on prices alone
        units = [lk for lk in prob.links if isinstance(lk, UnitsLink)]
        prob.links = [lk for lk in prob.links if not isinstance(lk, UnitsLink)]
        for i, why in freeze_group_conflicts(prob).items():
            reasons[i] = f"{reasons[i]}; {why}" if i in reasons else why
        prob.links += units  # units depend on the siblings' prices: their conflicts raise
    check_bounded(prob)
    resp = Responder(prob)
    msgs = dg.row_conflicts(prob) + dg.parity_conflicts(prob, resp.groups)
    msgs += dg.ordering_conflicts(prob)
    if msgs:
        dg.raise_infeasible(msgs)
    return prob, resp, reasons


def _draws_objective(curve: CrossElasticity) -> Any:
    """Per-draw, per-row objective (base currency) under the cross demand, own elasticities
    drawn: what :func:`~pricelab.optimize.plan_table.with_intervals` takes."""

    def objective(prob: Problem, price: np.ndarray, E: np.ndarray) -> np.ndarray:
        q = curve.quantity_draws(price, E)
        return prob.horizon * (price - prob.c) * q / prob.fx

    return objective


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


def _single_item_objective(
    demand: pl.DataFrame, cons: Any, prob: Problem, curve: CrossElasticity
) -> float | None:
    """The objective, under the cross demand, of the plan that prices each item alone."""
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
