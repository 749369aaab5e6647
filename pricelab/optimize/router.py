"""The own-price router: pick the exact solving route and build the Plan.

The routes live in :mod:`pricelab.optimize.routes` (closed form / band search /
decomposition, average-change multipliers, ladder, Lagrangian ladder, candidate MILP);
each returns a :class:`~pricelab.optimize.routes.Solved`. The MILP runs for ``risk``,
ordering, ladders with links the Lagrangian path cannot certify, overlapping volume
floors and budgets the multiplier path cannot take (linked budgets, a lower side binding
on uncapped rows or parity items, or a proven gap above ``BUDGET_GAP_TOL``).
:func:`pricelab.optimize.optimize` calls :func:`optimize_own_price`, or the cross route
(:mod:`pricelab.optimize.cross`) for cross-price demand.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl

from pricelab.errors import DataError, InfeasibleError, SolverError, UsageError
from pricelab.optimize import diagnose as dg
from pricelab.optimize.avg_change import implied_caps
from pricelab.optimize.avg_change import structure as budget_structure
from pricelab.optimize.binding import explain
from pricelab.optimize.conflicts import (
    MODES,
    freeze_group_conflicts,
    freeze_ladder_conflicts,
    freeze_row_conflicts,
    joint_link_conflicts,
    with_status,
)
from pricelab.optimize.constraints import Constraints, load_constraints
from pricelab.optimize.decompose import Responder
from pricelab.optimize.ladder import mixed_blocks
from pricelab.optimize.links import AverageChangeBudget, VolumeFloor
from pricelab.optimize.minor_unit import no_unit_inside, off_grid, round_prices
from pricelab.optimize.plan import Plan, nothing_to_optimise, with_skipped_rows
from pricelab.optimize.plan_table import plan_table, with_intervals
from pricelab.optimize.problem import Problem, build_problem
from pricelab.optimize.routes import (
    DEFAULT_RISK_DRAWS,
    Solved,
    rel_gap,
    solve_budgets_route,
    solve_candidates,
    solve_decomposition,
    solve_ladder,
    solve_lagrangian_ladder,
)


def parse_risk(risk: str | None) -> float | None:
    """``cvar:ALPHA`` -> ALPHA (None without a risk option); UsageError otherwise."""
    if risk is None:
        return None
    kind, _, val = risk.partition(":")
    try:
        alpha = float(val)
    except ValueError:
        alpha = float("nan")
    if kind.strip().lower() != "cvar" or not 0 < alpha < 1:
        raise UsageError(f"risk {risk!r}: expected cvar:ALPHA with 0 < ALPHA < 1, e.g. cvar:0.05")
    return alpha


def check_bounded(prob: Problem) -> None:
    """Raise :class:`SolverError` naming a row whose objective grows without limit."""
    open_top = ~np.isfinite(prob.hi) & (prob.e >= -1) & ~prob.frozen
    open_bottom = (prob.lo <= 0) & (prob.objective == "revenue") & (prob.e < -1)
    for mask, why in (
        (
            open_top,
            "is inelastic (elasticity {e:g} >= -1) and has no "
            "max_increase_pct: profit grows without limit as price rises",
        ),
        (
            open_bottom,
            "has no price floor and elasticity {e:g} < -1: revenue "
            "grows without limit as price falls",
        ),
    ):
        bad = np.flatnonzero(mask)
        if bad.size:
            i = bad[0]
            more = f" (and {bad.size - 1} more rows)" if bad.size > 1 else ""
            raise SolverError(
                f"unbounded: {prob.label(i)} {why.format(e=prob.e[i])}{more}",
                hint="add bounds: max_increase_pct / max_decrease_pct",
            )


def _check_feasible(prob: Problem, resp: Responder) -> None:
    msgs = dg.row_conflicts(prob) + dg.parity_conflicts(prob, resp.groups)
    msgs += dg.link_conflicts(prob) + dg.ordering_conflicts(prob)
    if msgs:
        dg.raise_infeasible(msgs)


def _needs_milp(prob: Problem, resp: Responder, risk: float | None) -> str | None:
    if risk is not None:
        return "risk"
    if prob.ordering:
        return "ordering"
    ladder = (~np.isnan(prob.ladder_spacing)).any()
    if ladder and prob.links:
        return "ladder with " + ", ".join(dict.fromkeys(lk.key for lk in prob.links))
    if ladder and mixed_blocks(prob, resp.blocks):
        return "ladder with parity across laddered and free markets"
    vol = [lk.rows for lk in prob.links_of(VolumeFloor)]
    if vol and np.unique(np.concatenate(vol)).size < sum(r.size for r in vol):
        return "overlapping min_volume_pct groups"
    why = budget_structure(prob, resp)
    return f"max_avg_change_pct: {why}" if why else None


def optimize_own_price(
    demand: pl.DataFrame,
    constraints: str | dict | Constraints | None = None,
    *,
    draws: int | None = None,
    risk: str | None = None,
    seed: int = 0,
    strict: bool = False,
    n_grid: int = 25,
    time_limit: float = 600.0,
    conflicts: str = "raise",
    expected: bool = False,
) -> Plan:
    """:func:`pricelab.optimize.optimize` for own-price demand (same parameters, no cross)."""
    cons = load_constraints(constraints)
    alpha = parse_risk(risk)
    if draws is not None and draws < 2:
        raise UsageError(f"draws must be >= 2, got {draws}")
    prob = build_problem(demand, cons, strict=strict)
    if prob.n == 0:
        raise DataError(nothing_to_optimise(prob.skipped))
    implied_caps(prob)
    if conflicts not in MODES:
        raise UsageError(f"conflicts must be one of {', '.join(MODES)}, got {conflicts!r}")
    reasons = freeze_row_conflicts(prob) if conflicts == "keep" else {}
    if conflicts == "keep":
        reasons |= freeze_ladder_conflicts(prob)
        for i, why in freeze_group_conflicts(prob).items():
            reasons[i] = f"{reasons[i]}; {why}" if i in reasons else why
    check_bounded(prob)
    resp = Responder(prob)
    _check_feasible(prob, resp)
    extra: dict = {}
    for _ in range(len(prob.links) + 1):  # joint-only conflicts: drop, keep rows, re-solve
        try:
            solved = _solve(prob, resp, extra, alpha, draws, seed, n_grid, time_limit, expected)
            break
        except InfeasibleError:
            found = joint_link_conflicts(prob, resp.groups, n_grid) if conflicts == "keep" else {}
            if not found:
                raise
            for i, why in found.items():
                reasons[i] = f"{reasons[i]}; {why}" if i in reasons else why
            resp = Responder(prob)
    labels = _explained(prob, resp, solved, extra, alpha, draws, seed, n_grid, time_limit, expected)
    if alpha is None and not expected:  # point-profit plans: rounding keeps their objective
        solved = _on_minor_units(prob, resp, solved, extra)
    else:  # chosen among prices on the minor unit: rows off it had none inside their limits
        _unrounded(prob, no_unit_inside(prob, off_grid(prob, solved.prices)), extra)
    table = with_status(plan_table(prob, solved.prices, labels), reasons)
    if reasons:
        extra["conflicts"] = [
            {"item_id": str(prob.item[i]), "market": str(prob.market[i]), "reason": why}
            for i, why in reasons.items()
        ]
    intervals: dict[str, float] = {}
    if draws:
        table, intervals = with_intervals(prob, table, solved.prices, draws, seed)
    table = with_skipped_rows(table, demand, prob.skipped, prob.horizon)
    return Plan(
        table=table,
        status=solved.status,
        formulation=solved.formulation,
        objective_name=prob.objective,
        objective=solved.objective,
        baseline_objective=float(prob.objective_value(prob.p0).sum()),
        gap=solved.gap,
        certificate=solved.certificate,
        skipped=prob.skipped,
        multipliers=solved.multipliers,
        intervals=intervals,
        extra=extra,
    )


def _solve(
    prob: Problem,
    resp: Responder,
    extra: dict,
    alpha: float | None,
    draws: int | None,
    seed: int,
    n_grid: int,
    time_limit: float,
    expected: bool,
) -> Solved:
    """The plan on the route the options ask for (expected profit: the candidate MILP)."""
    if expected:  # every row's value is its mean profit over the draws: the candidate MILP
        n = draws or DEFAULT_RISK_DRAWS
        return solve_candidates(
            prob,
            resp,
            f"expected profit over {n} elasticity draws",
            extra,
            kept=None,
            risk=alpha,
            draws=n,
            seed=seed,
            n_grid=n_grid,
            time_limit=time_limit,
            expected=True,
        )
    return _route(
        prob, resp, extra, risk=alpha, draws=draws, seed=seed, n_grid=n_grid, time_limit=time_limit
    )


def _on_minor_units(prob: Problem, resp: Responder, solved: Solved, extra: dict) -> Solved:
    """The plan on each currency's minor unit (:mod:`pricelab.optimize.minor_unit`); the
    objective is re-evaluated and the gap measured against the route's proven bound."""
    p, why = round_prices(prob, solved.prices, resp.groups, solved.gap)
    _unrounded(prob, why, extra)
    obj = float(prob.objective_value(p).sum())
    bound = solved.objective + solved.gap * abs(solved.objective)
    return replace(solved, prices=p, objective=obj, gap=rel_gap(bound, obj))


def _unrounded(prob: Problem, why: dict[int, str], extra: dict) -> None:
    """Rows left off their currency's minor unit: how many, and which and why."""
    if why:
        extra["unrounded_rows"] = len(why)
        extra["unrounded"] = [
            {"item_id": str(prob.item[i]), "market": str(prob.market[i]), "reason": r}
            for i, r in sorted(why.items())
        ]


def _explained(
    prob: Problem,
    resp: Responder,
    solved: Solved,
    extra: dict,
    risk: float | None,
    draws: int | None,
    seed: int,
    n_grid: int,
    time_limit: float,
    expected: bool = False,
) -> list[str]:
    """The plan's ``binding`` column, coupling constraints tested by re-solves without them
    (:func:`pricelab.optimize.binding.explain`), on the route that made the plan."""
    milp = extra.get("path") == "milp"

    def resolve(q: Problem) -> np.ndarray:
        r = Responder(q)
        if milp or expected:
            return solve_candidates(
                q,
                r,
                "re-solve",
                {},
                kept=None,
                risk=risk,
                draws=(draws or DEFAULT_RISK_DRAWS) if expected else draws,
                seed=seed,
                n_grid=n_grid,
                time_limit=time_limit,
                expected=expected,
            ).prices
        return _route(
            q,
            r,
            {},
            risk=risk,
            draws=draws,
            seed=seed,
            n_grid=n_grid,
            time_limit=time_limit,
            labelled=False,
        ).prices

    return explain(prob, solved.prices, solved.labels, resp.groups, resolve)


def _route(
    prob: Problem,
    resp: Responder,
    extra: dict,
    *,
    risk: float | None,
    draws: int | None,
    seed: int,
    n_grid: int,
    time_limit: float,
    labelled: bool = True,
) -> Solved:
    """Pick the solving route; a route that cannot certify its plan falls through to the MILP.

    ``labelled`` False skips the binding labels where a route can (re-solves)."""
    why = _needs_milp(prob, resp, risk)
    if why is not None and why.startswith("ladder with") and not mixed_blocks(prob, resp.blocks):
        solved, more = solve_lagrangian_ladder(prob, resp, extra)
        if solved is not None:
            return solved
        why += more
    kept = None
    if why is None and prob.links_of(AverageChangeBudget):
        solved, kept, reason = solve_budgets_route(prob, resp, extra, labelled)
        if solved is not None:
            return solved
        why = reason
    if why is None and (~np.isnan(prob.ladder_spacing)).any():
        return solve_ladder(prob, resp)
    if why is None:
        return solve_decomposition(prob, resp, labelled)
    return solve_candidates(
        prob,
        resp,
        why,
        extra,
        kept=kept,
        risk=risk,
        draws=draws,
        seed=seed,
        n_grid=n_grid,
        time_limit=time_limit,
    )
