"""The solving routes of :func:`pricelab.optimize.optimize`, each returning a :class:`Solved`.

- :func:`solve_decomposition`: nothing links rows (closed form, optimization.md 1, 2),
  parity (band search, 5b), disjoint volume floors and stock pools (multipliers by
  bisection, dual bound as certificate);
- :func:`solve_budgets_route`: average-change budgets on continuous prices, one
  multiplier per budget on top of those (avg_change.py);
- :func:`solve_ladder`: ladders without linking constraints (exact enumeration);
- :func:`solve_lagrangian_ladder`: ladders under disjoint volume floors / stock pools
  (Lagrangian relaxation, exact ladder solve per row);
- :func:`solve_candidates`: the candidate-price MILP (5, 6), also with ``risk``.

The router in :mod:`pricelab.optimize.solve` picks one; a route that cannot certify its
plan says why and the router falls through to the MILP.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pricelab.demand.curves import ConstantElasticity
from pricelab.demand.draws import elasticity_draws
from pricelab.errors import DataError, SolverError
from pricelab.optimize import diagnose as dg
from pricelab.optimize.avg_change import BudgetSolve, solve_budgets
from pricelab.optimize.binding import binding_labels
from pricelab.optimize.candidates import (
    STRICT_MARGIN,
    MilpResult,
    candidate_matrix,
    solve_milp,
    with_ordering_points,
)
from pricelab.optimize.decompose import Responder, decompose
from pricelab.optimize.joint_dual import GAP_TOL, rel_gap
from pricelab.optimize.ladder import ladder_prices
from pricelab.optimize.ladder_lagrangian import ladder_dual
from pricelab.optimize.links import links_hold
from pricelab.optimize.minor_unit import neighbours, on_units
from pricelab.optimize.problem import Problem

DEFAULT_RISK_DRAWS = 200
LAGRANGIAN_GAP_TOL = 1e-3  # above this proven gap a linked ladder goes to the MILP
BUDGET_GAP_TOL = GAP_TOL  # above this a continuous budget plan is compared with the MILP's
# a budget plan whose proven gap stays below this is kept without the grid MILP beside it
# when the gap comes from non-concave rows on a binding lower side: a grid of n_grid prices
# loses more than that to its spacing, and its bound holds on the grid only (the 40-item
# parity + volume + budget case: gap 2.3e-4, the 25-point MILP's plan 0.15% worse, 60 s)
LOWER_SIDE_GAP_TOL = LAGRANGIAN_GAP_TOL
BUDGET_MILP_SECONDS = 60.0  # the MILP run beside a feasible budget plan stops after this


@dataclass
class Solved:
    """What a route found: prices, objective, proven gap and how it was proven."""

    prices: np.ndarray
    objective: float
    gap: float
    formulation: str
    certificate: str
    labels: list[str]
    multipliers: dict[str, float] = field(default_factory=dict)
    status: str = "optimal"


def _total(prob: Problem, p: np.ndarray) -> float:
    return float(prob.objective_value(p).sum())


def _joined(parts: list[str]) -> str:
    return ", ".join(filter(None, parts))


def solve_decomposition(prob: Problem, resp: Responder, labelled: bool = True) -> Solved:
    """Closed form, parity band search and disjoint volume floors / stock pools
    (``labelled`` False: no binding labels, for re-solves that only need prices)."""
    dec = decompose(prob, resp)
    p = dec.prices
    obj = _total(prob, p)
    links, parity = prob.links, resp.blocks is not None
    if not links and not parity:
        form, cert = "closed form", "closed form, exact"
    else:
        form = "decomposition: " + _joined(
            [
                "parity band search" if parity else "",
                f"{len(links)} multiplier(s) by bisection" if links else "",
            ]
        )
        cert = "Lagrangian dual bound" + (" (band search numerical)" if parity else "")
    labels = (
        binding_labels(prob, p, parity_groups=resp.groups, row_shift=dec.row_multiplier)
        if labelled
        else []
    )
    if not links_hold(prob, p):
        dg.raise_infeasible(
            dg.link_conflicts(prob)
            or [f"{lk.name} cannot be met together with parity" for lk in links]
        )
    return Solved(p, obj, rel_gap(dec.dual_bound, obj), form, cert, labels, dec.multipliers)


def solve_budgets_route(
    prob: Problem, resp: Responder, extra: dict, labelled: bool = True
) -> tuple[Solved | None, BudgetSolve | None, str]:
    """Average-change budgets priced out by multipliers (``labelled`` as in
    :func:`solve_decomposition`).

    Returns the plan, or None with the feasible plan to compare with the MILP's (when its
    proven gap is above ``BUDGET_GAP_TOL``) and why the MILP runs instead.
    """
    bs = solve_budgets(prob, resp)
    if bs.prices is None:
        return None, None, f"max_avg_change_pct: {bs.reason}"
    p = bs.prices
    obj = _total(prob, p)
    gap = extra["lagrangian_gap"] = rel_gap(bs.dual_bound, obj)
    lower = any(v < 0 for k, v in bs.multipliers.items() if k in _budget_names(prob))
    if gap > (LOWER_SIDE_GAP_TOL if lower else BUDGET_GAP_TOL):
        return (
            None,
            bs,
            f"max_avg_change_pct: Lagrangian gap {gap:.2e} above "
            f"{BUDGET_GAP_TOL:g} (non-concave rows on the lower side)",
        )
    parity = resp.blocks is not None
    form = (
        "decomposition: max_avg_change_pct priced out ("
        + _joined(
            [
                "parity band search" if parity else "",
                f"{len(bs.multipliers)} multiplier(s)",
                f"{bs.steps} dual steps ({bs.method})",
                "non-concave rows on the binding lower side" if gap > BUDGET_GAP_TOL else "",
            ]
        )
        + ")"
    )
    cert = "Lagrangian dual bound" + (" (band search numerical)" if parity else "")
    extra["path"] = "decomposition"
    labels = (
        binding_labels(
            prob, p, parity_groups=resp.groups, row_shift=bs.row_shift, tight_links=bs.tight_links
        )
        if labelled
        else []
    )
    if not links_hold(prob, p, 1e-7):
        dg.raise_infeasible(
            dg.link_conflicts(prob)
            or [f"{lk.name} cannot be met together with the other constraints" for lk in prob.links]
        )
    return Solved(p, obj, gap, form, cert, labels, bs.multipliers), None, ""


def _budget_names(prob: Problem) -> set[str]:
    return {lk.name for lk in prob.links if lk.key == "max_avg_change_pct"}


def solve_ladder(prob: Problem, resp: Responder) -> Solved:
    """Ladders without linking constraints: the best point next to each clipped optimum."""
    p, msgs = ladder_prices(prob, resp.groups, resp.blocks, resp(prob.cost))
    if msgs:
        dg.raise_infeasible(msgs)
    form = "ladder: best point next to each clipped optimum" + (
        "; parity band enumerated at every breakpoint" if resp.blocks is not None else ""
    )
    cert = "exhaustive enumeration, exact on the ladder"
    labels = binding_labels(prob, p, parity_groups=resp.groups, milp=True)
    return Solved(p, _total(prob, p), 0.0, form, cert, labels)


def solve_lagrangian_ladder(
    prob: Problem, resp: Responder, extra: dict
) -> tuple[Solved | None, str]:
    """Ladders under disjoint volume floors / stock pools; None with why when not certified."""
    lag = ladder_dual(prob, resp)
    if lag.prices is None:
        return None, f"; Lagrangian path not used: {lag.reason}"
    p = lag.prices
    obj = _total(prob, p)
    gap = extra["lagrangian_gap"] = rel_gap(lag.dual_bound, obj)
    if gap > LAGRANGIAN_GAP_TOL:
        return None, f"; Lagrangian gap {gap:.2e} above {LAGRANGIAN_GAP_TOL:g}"
    form = (
        f"ladder + Lagrangian relaxation ({len(lag.multipliers)} multiplier(s), "
        f"{lag.steps} dual steps; exact ladder solve per row"
        + (" / parity block" if resp.blocks is not None else "")
        + ")"
    )
    cert = "Lagrangian dual bound on the ladder (min over multipliers)"
    extra["path"] = "lagrangian"
    labels = binding_labels(
        prob, p, parity_groups=resp.groups, tight_links=lag.tight_links, milp=True
    )
    return Solved(p, obj, gap, form, cert, labels, lag.multipliers), ""


def elasticity_draws_of(prob: Problem, n: int, seed: int) -> np.ndarray:
    """``n`` elasticity draws per row from the demand table's ``std_error``."""
    se = prob.frame["std_error"].to_numpy().astype(float)
    if np.all(np.isnan(se)):
        raise DataError("demand table: --draws/--risk need a std_error column with values")
    return elasticity_draws(prob.e, se, n, seed=seed)


def profit_draws(prob: Problem, p: np.ndarray, E: np.ndarray) -> np.ndarray:
    """Per-draw, per-row objective over the horizon (base currency) at prices ``p``."""
    curve = ConstantElasticity(prob.p0, prob.q0, E)
    return prob.horizon * curve.margin_term(p, prob.c) / prob.fx


def candidate_milp(
    prob: Problem,
    resp: Responder,
    *,
    risk: float | None,
    draws: int | None,
    seed: int,
    n_grid: int,
    time_limit: float,
    expected: bool = False,
) -> tuple[MilpResult, list[int]]:
    """Solve the candidate-price MILP; the result and the indices of its binding links.

    With ``risk`` or ``expected`` every candidate is valued by its mean profit over
    elasticity draws (the expected profit under the estimates' sampling distribution).

    A grid can miss a narrow feasible region (a tight parity band together with a tight
    average-change budget): when the MILP is infeasible on the grid, the LP relaxation's
    mixture price of every continuous row is added as a candidate and the MILP solved
    again, so "infeasible" is only said when the relaxation is infeasible too.
    """
    sampled = risk is not None or expected
    P = with_ordering_points(prob, candidate_matrix(prob, n_grid))
    if sampled:  # not rounded afterwards: choose among prices on the minor unit
        P = on_units(prob, P)
    msgs = dg.ladder_conflicts(prob, P)
    if msgs:
        dg.raise_infeasible(msgs)
    E = elasticity_draws_of(prob, draws or DEFAULT_RISK_DRAWS, seed) if sampled else None
    cvar = None
    if risk is not None and E is not None:
        base = profit_draws(prob, prob.p0, E).sum(axis=1)
        k = max(1, int(np.ceil(risk * base.size)))
        cvar = (risk, float(np.sort(base)[:k].mean()))

    def solve(
        P: np.ndarray, relax: bool = False, margin: float = 0.0
    ) -> tuple[MilpResult, np.ndarray]:
        value, dprof = _candidate_values(prob, P, E)
        res = solve_milp(
            prob,
            P,
            value,
            parity_groups=resp.groups,
            parity_gap=np.nan_to_num(prob.parity_gap),
            draws_profit=dprof,
            cvar=cvar,
            time_limit=time_limit,
            relax=relax,
            margin=margin,
        )
        return res, value

    res, value = solve(P)
    if res.status == "infeasible":
        free = np.isnan(prob.ladder_spacing) & (prob.lo < prob.hi) & ~prob.frozen
        mix, _ = solve(P, relax=True) if free.any() else (None, None)
        if mix is not None and mix.status == "relaxed":
            add = np.where(free, np.clip(mix.prices, prob.lo, prob.hi), np.nan)[:, None]
            if sampled:  # the units either side of the mixture, then all on the grid
                add = np.where(free[:, None], neighbours(prob, add[:, 0]), np.nan)
            P = np.sort(np.concatenate([P, add], axis=1), axis=1)
            P = on_units(prob, P) if sampled else P
            res, value = solve(P[:, ~np.all(np.isnan(P), axis=0)])
    if res.status == "infeasible":
        dg.infeasible_milp(prob, resp.groups, P, value, risk, cvar, time_limit)
    if not links_hold(prob, res.prices):  # met only to HiGHS' tolerance: narrow the rows
        strict, strict_value = solve(P, margin=STRICT_MARGIN)
        if strict.status != "infeasible":
            res, value = strict, strict_value
    return res, [j for j, lk in enumerate(prob.links) if lk.binds(prob, res.prices)]


def _candidate_values(
    prob: Problem, P: np.ndarray, E: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Objective per candidate (mean over draws ``E`` when given) and per-draw profits."""
    valid = ~np.isnan(P)
    if E is None:
        return np.where(valid, prob.objective_value(np.where(valid, P, 1.0)), 0.0), None
    Pc = np.where(valid, P, 1.0)
    curve = ConstantElasticity(prob.p0[None, :, None], prob.q0[None, :, None], E[:, :, None])
    dprof = prob.horizon * curve.margin_term(Pc[None], prob.c[None, :, None])
    dprof = np.where(valid[None], dprof / prob.fx[None, :, None], 0.0)
    return dprof.mean(axis=0), dprof


def _kept_only(prob: Problem, resp: Responder, why: str, extra: dict, kept: BudgetSolve) -> Solved:
    """The budget plan with its Lagrangian gap when the MILP found no plan in its time."""
    assert kept.prices is not None
    p, obj = kept.prices, _total(prob, kept.prices)
    gap = extra["lagrangian_gap"] = rel_gap(kept.dual_bound, obj)
    extra["path"] = "decomposition"
    labels = binding_labels(
        prob, p, parity_groups=resp.groups, row_shift=kept.row_shift, tight_links=kept.tight_links
    )
    form = f"candidate MILP ({why}; HiGHS: no plan within its time limit); the Lagrangian plan"
    cert = f"Lagrangian dual bound for continuous prices: gap {gap:.2e}"
    return Solved(p, obj, gap, form, cert, labels, kept.multipliers, "time_limit")


def solve_candidates(
    prob: Problem,
    resp: Responder,
    why: str,
    extra: dict,
    *,
    kept: BudgetSolve | None,
    risk: float | None,
    draws: int | None,
    seed: int,
    n_grid: int,
    time_limit: float,
    expected: bool = False,
) -> Solved:
    """The candidate MILP (``why`` it runs goes into the formulation).

    ``kept``: a feasible budget plan from the multiplier route; the better of the two is
    returned (the gap stays the MILP's, on its candidate grid). Beside it the MILP stops
    after ``BUDGET_MILP_SECONDS`` (its dual bound then gives the reported gap), and if it
    found no plan by then the budget plan is returned with its Lagrangian gap.
    """
    has_kept = kept is not None and kept.prices is not None
    try:
        res, tight = candidate_milp(
            prob,
            resp,
            risk=risk,
            draws=draws,
            seed=seed,
            n_grid=n_grid,
            time_limit=min(time_limit, BUDGET_MILP_SECONDS) if has_kept else time_limit,
            expected=expected,
        )
    except SolverError:  # no MILP plan within its time: the feasible budget plan stands
        if kept is None or not has_kept:
            raise
        return _kept_only(prob, resp, why, extra, kept)
    p = res.prices
    gap = rel_gap(res.dual_bound, float(res.objective))
    lp_gap = rel_gap(res.lp_bound, float(res.objective))
    obj = float(res.objective) if risk is not None or expected else _total(prob, p)
    form = f"candidate MILP ({why}; HiGHS)"
    extra["path"] = "milp"
    cert = f"HiGHS dual bound; LP-relaxation gap {lp_gap:.2e}"
    extra["lp_gap"] = lp_gap
    labels = binding_labels(prob, p, parity_groups=resp.groups, tight_links=tight, milp=True)
    mult: dict[str, float] = {}
    if kept is not None and kept.prices is not None:
        kobj = _total(prob, kept.prices)
        if kobj > obj:
            p, obj, mult = kept.prices, kobj, kept.multipliers
            labels = binding_labels(
                prob,
                p,
                parity_groups=resp.groups,
                row_shift=kept.row_shift,
                tight_links=kept.tight_links,
            )
            form += "; the Lagrangian plan is better and kept"
            extra["path"] = "decomposition"
            gap = rel_gap(res.dual_bound, obj)
        extra["lagrangian_gap"] = rel_gap(kept.dual_bound, obj)
        cert += f"; Lagrangian dual bound for continuous prices: gap {extra['lagrangian_gap']:.2e}"
    return Solved(p, obj, gap, form, cert, labels, mult, res.status)
