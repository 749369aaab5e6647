"""``optimize``: pick the exact formulation for the problem at hand and build the Plan.

- nothing links rows: vectorised closed form (optimization.md 1, 2);
- parity without ladders: band search (5b); volume floors (disjoint groups) and shared
  stock pools: multipliers by bisection, dual bound as certificate (decompose.py);
- average-change budgets on continuous prices: one multiplier per budget on top of those
  (avg_change.py), dual bound as certificate; the MILP when budgets are linked to each
  other, when the lower side binds on uncapped rows or parity items, or when the proven
  gap exceeds ``LAGRANGIAN_GAP_TOL``;
- ladders (with budgets too), overlapping volume floors, or ``risk``: the
  candidate-price MILP (5, 6) with the LP-relaxation bound reported.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pricelab.demand.draws import elasticity_draws
from pricelab.errors import DataError, SolverError, UsageError
from pricelab.optimize import diagnose as dg
from pricelab.optimize.avg_change import BudgetSolve, implied_caps, links_hold, solve_budgets
from pricelab.optimize.avg_change import structure as budget_structure
from pricelab.optimize.binding import binding_labels
from pricelab.optimize.candidates import candidate_matrix, solve_milp, with_ordering_points
from pricelab.optimize.constraints import Constraints, load_constraints
from pricelab.optimize.decompose import Responder, decompose
from pricelab.optimize.ladder import ladder_prices, mixed_blocks
from pricelab.optimize.ladder_dual import ladder_dual
from pricelab.optimize.plan import Plan
from pricelab.optimize.problem import Problem, build_problem

DEFAULT_RISK_DRAWS = 200
LAGRANGIAN_GAP_TOL = 1e-3  # above this proven gap a linked ladder goes to the MILP
BUDGET_GAP_TOL = 1e-5  # above this a continuous budget plan is compared with the MILP's


def _parse_risk(risk: str | None) -> float | None:
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


def _unbounded(prob: Problem) -> None:
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
        return "ladder with " + ", ".join(dict.fromkeys(lk.kind for lk in prob.links))
    if ladder and mixed_blocks(prob, resp.blocks):
        return "ladder with parity across laddered and free markets"
    vol = [lk.rows for lk in prob.links if lk.kind == "min_volume_pct"]
    if vol and np.unique(np.concatenate(vol)).size < sum(r.size for r in vol):
        return "overlapping min_volume_pct groups"
    why = budget_structure(prob, resp)
    return f"max_avg_change_pct: {why}" if why else None


def _budgets(prob: Problem, resp: Responder, extra: dict) -> tuple[BudgetSolve | None, str]:
    """The multiplier path for average-change budgets, or why the MILP runs instead.

    A plan whose proven gap is above the tolerance is returned with the reason: the MILP
    runs and the better of the two feasible plans is kept.
    """
    bs = solve_budgets(prob, resp)
    if bs.prices is None:
        return None, f"max_avg_change_pct: {bs.reason}"
    obj = float(prob.objective_value(bs.prices).sum())
    gap = max(0.0, (bs.dual_bound - obj) / max(abs(obj), 1e-12))
    extra["lagrangian_gap"] = gap
    if gap > BUDGET_GAP_TOL:
        return bs, (
            f"max_avg_change_pct: Lagrangian gap {gap:.2e} above "
            f"{BUDGET_GAP_TOL:g} (non-concave rows on the lower side)"
        )
    return bs, ""


def _solve_milp(
    prob: Problem,
    resp: Responder,
    *,
    risk: float | None,
    draws: int | None,
    seed: int,
    n_grid: int,
    time_limit: float,
):
    P = with_ordering_points(prob, candidate_matrix(prob, n_grid))
    msgs = dg.ladder_conflicts(prob, P)
    if msgs:
        dg.raise_infeasible(msgs)
    valid = ~np.isnan(P)
    value = np.where(valid, prob.objective_value(np.where(valid, P, 1.0)), 0.0)
    cvar, dprof = None, None
    if risk is not None:
        E = _draws(prob, draws or DEFAULT_RISK_DRAWS, seed)
        Pc = np.where(valid, P, 1.0)
        dprof = (
            prob.horizon
            * (Pc - prob.c[:, None])[None]
            * prob.q0[None, :, None]
            * (Pc / prob.p0[:, None])[None] ** E[:, :, None]
            / prob.fx[None, :, None]
        )
        dprof = np.where(valid[None], dprof, 0.0)
        value = dprof.mean(axis=0)
        base = _profit_draws(prob, prob.p0, E).sum(axis=1)
        k = max(1, int(np.ceil(risk * base.size)))
        cvar = (risk, float(np.sort(base)[:k].mean()))
    res = solve_milp(
        prob,
        P,
        value,
        parity_groups=resp.groups,
        parity_gap=np.nan_to_num(prob.parity_gap),
        draws_profit=dprof,
        cvar=cvar,
        time_limit=time_limit,
    )
    if res.status == "infeasible":
        msgs = []
        if prob.links:
            sl = solve_milp(
                prob,
                P,
                value,
                parity_groups=resp.groups,
                parity_gap=np.nan_to_num(prob.parity_gap),
                slack=True,
                time_limit=time_limit,
            )
            msgs = dg.joint_conflicts(prob, sl.prices) if sl.status == "slack" else []
        if not msgs and (resp.groups >= 0).any():
            msgs = [
                "parity with the ladder: for some item no combination of ladder prices "
                "within the row limits fits one parity band (widen max_gap_pct or the "
                "bounds, or use a finer step)"
            ]
        if not msgs and prob.ordering:
            msgs = [
                f"{od[3]} cannot be met on the candidate prices together with the other constraints"
                for od in prob.ordering
            ]
        if cvar is not None:
            msgs.append(f"risk cvar:{risk:g} floor {cvar[1]:,.2f} (baseline CVaR) cannot be met")
        dg.raise_infeasible(msgs or ["the candidate MILP is infeasible"])
    tight = []
    for j, lk in enumerate(prob.links):
        r = lk.rows
        q = prob.quantity(res.prices[r], r)
        if lk.kind == "min_volume_pct":
            tight.append(j) if q.sum() <= lk.value / 100 * prob.q0[r].sum() * (1 + 1e-6) else None
        elif lk.kind == "inventory":
            tight.append(j) if prob.horizon * q.sum() >= lk.value * (1 - 1e-6) else None
        else:
            tight.append(j)
    return res, tight


def _draws(prob: Problem, n: int, seed: int) -> np.ndarray:
    se = prob.frame["std_error"].to_numpy().astype(float)
    if np.all(np.isnan(se)):
        raise DataError("demand table: --draws/--risk need a std_error column with values")
    return elasticity_draws(prob.e, se, n, seed=seed)


def _profit_draws(prob: Problem, p: np.ndarray, E: np.ndarray) -> np.ndarray:
    return prob.horizon * (p - prob.c) * prob.q0 * (p / prob.p0) ** E / prob.fx


def optimize(
    demand: pl.DataFrame,
    constraints: str | dict | Constraints | None = None,
    *,
    draws: int | None = None,
    risk: str | None = None,
    seed: int = 0,
    strict: bool = False,
    n_grid: int = 25,
    time_limit: float = 600.0,
) -> Plan:
    """Recommend a price per item x market.

    Parameters
    ----------
    demand : polars.DataFrame
        Contract demand table: item_id, market, elasticity, base_price, base_quantity,
        unit_cost, optional stock, stock_pool, fx_rate, category, std_error.
    constraints : path, dict, Constraints or None
        Contract constraints file (see :func:`load_constraints`).
    draws : int, optional
        Number of elasticity draws for the profit interval (P5-P95) of plan and baseline.
    risk : str, optional
        ``cvar:ALPHA``: maximise expected profit subject to CVaR_ALPHA(profit) >= the
        baseline's (candidate MILP over draws).
    seed : int
        Seed for the draws.
    strict : bool
        Raise :class:`DataError` on rows that would be skipped.
    n_grid : int
        Candidates per row when the MILP runs on rows without a ladder.
    time_limit : float
        MILP time limit in seconds (status ``time_limit`` with its gap when hit).

    Returns
    -------
    Plan

    Raises
    ------
    DataError, ConfigError, UsageError
        Bad input; InfeasibleError when no plan satisfies the constraints (message names
        rows and constraints); SolverError when the problem is unbounded or solvers fail.
    """
    cons = load_constraints(constraints)
    alpha = _parse_risk(risk)
    if draws is not None and draws < 2:
        raise UsageError(f"draws must be >= 2, got {draws}")
    prob = build_problem(demand, cons, strict=strict)
    if prob.n == 0:
        raise DataError(f"demand table: no row can be optimised ({prob.skipped.height} skipped)")
    implied_caps(prob)
    _unbounded(prob)
    resp = Responder(prob)
    _check_feasible(prob, resp)
    why = _needs_milp(prob, resp, alpha)
    extra: dict = {}
    lag = None
    if why is not None and why.startswith("ladder with") and not mixed_blocks(prob, resp.blocks):
        lag = ladder_dual(prob, resp)
        if lag.prices is not None:
            lobj = float(prob.objective_value(lag.prices).sum())
            extra["lagrangian_gap"] = max(0.0, (lag.dual_bound - lobj) / max(abs(lobj), 1e-12))
            if extra["lagrangian_gap"] > LAGRANGIAN_GAP_TOL:
                why += (
                    f"; Lagrangian gap {extra['lagrangian_gap']:.2e} above {LAGRANGIAN_GAP_TOL:g}"
                )
                lag = None
        else:
            why += f"; Lagrangian path not used: {lag.reason}"
            lag = None
    bsol = kept = None
    if why is None and any(lk.kind == "max_avg_change_pct" for lk in prob.links):
        bsol, reason = _budgets(prob, resp, extra)
        if reason:
            why, kept, bsol = reason, bsol, None
    if bsol is not None and bsol.prices is not None:
        p = bsol.prices
        obj = float(prob.objective_value(p).sum())
        gap, mult, status = extra["lagrangian_gap"], bsol.multipliers, "optimal"
        nb = len(bsol.multipliers)
        form = (
            "decomposition: max_avg_change_pct priced out ("
            + ", ".join(
                filter(
                    None,
                    [
                        "parity band search" if resp.blocks is not None else "",
                        f"{nb} multiplier(s)",
                        f"{bsol.steps} dual steps",
                    ],
                )
            )
            + ")"
        )
        cert = "Lagrangian dual bound" + (
            " (band search numerical)" if resp.blocks is not None else ""
        )
        extra["path"] = "decomposition"
        labels = binding_labels(
            prob,
            p,
            parity_groups=resp.groups,
            row_shift=bsol.row_shift,
            tight_links=bsol.tight_links,
        )
        if not links_hold(prob, p, 1e-7):
            dg.raise_infeasible(
                dg.link_conflicts(prob)
                or [
                    f"{lk.name} cannot be met together with the other constraints"
                    for lk in prob.links
                ]
            )
    elif lag is not None and lag.prices is not None:
        p = lag.prices
        obj = float(prob.objective_value(p).sum())
        gap, mult, status = extra["lagrangian_gap"], lag.multipliers, "optimal"
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
    elif why is None and (~np.isnan(prob.ladder_spacing)).any():
        p, msgs = ladder_prices(prob, resp.groups, resp.blocks, resp(prob.cost))
        if msgs:
            dg.raise_infeasible(msgs)
        obj = float(prob.objective_value(p).sum())
        gap, mult, status = 0.0, {}, "optimal"
        form = "ladder: best point next to each clipped optimum" + (
            "; parity band enumerated at every breakpoint" if resp.blocks is not None else ""
        )
        cert = "exhaustive enumeration, exact on the ladder"
        labels = binding_labels(prob, p, parity_groups=resp.groups, milp=True)
    elif why is None:
        dec = decompose(prob, resp)
        p = dec.prices
        obj = float(prob.objective_value(p).sum())
        gap = max(0.0, (dec.dual_bound - obj) / max(abs(obj), 1e-12))
        links = [lk for lk in prob.links]
        parity = resp.blocks is not None
        form = (
            "closed form"
            if not links and not parity
            else "decomposition: "
            + ", ".join(
                filter(
                    None,
                    [
                        "parity band search" if parity else "",
                        f"{len(links)} multiplier(s) by bisection" if links else "",
                    ],
                )
            )
        )
        cert = (
            "closed form, exact"
            if not links and not parity
            else "Lagrangian dual bound" + (" (band search numerical)" if parity else "")
        )
        mult = dec.multipliers
        labels = binding_labels(prob, p, parity_groups=resp.groups, row_shift=dec.row_multiplier)
        status = "optimal"
        if not _links_ok(prob, p):
            msgs = dg.link_conflicts(prob) or [
                f"{lk.name} cannot be met together with parity" for lk in prob.links
            ]
            dg.raise_infeasible(msgs)
    else:
        res, tight = _solve_milp(
            prob, resp, risk=alpha, draws=draws, seed=seed, n_grid=n_grid, time_limit=time_limit
        )
        p = res.prices
        obj = float(res.objective)
        gap = max(0.0, (res.dual_bound - obj) / max(abs(obj), 1e-12))
        lp_gap = max(0.0, (res.lp_bound - obj) / max(abs(obj), 1e-12))
        form = f"candidate MILP ({why}; HiGHS)"
        extra["path"] = "milp"
        cert = f"HiGHS dual bound; LP-relaxation gap {lp_gap:.2e}"
        extra["lp_gap"] = lp_gap
        mult, status = {}, res.status
        labels = binding_labels(prob, p, parity_groups=resp.groups, tight_links=tight, milp=True)
        if alpha is None:
            obj = float(prob.objective_value(p).sum())
        if kept is not None and kept.prices is not None:
            # both plans are feasible; the gap stays the MILP's (on its candidate grid, as
            # on every MILP path) and the Lagrangian bound for continuous prices is reported
            kobj = float(prob.objective_value(kept.prices).sum())
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
                gap = max(0.0, (res.dual_bound - obj) / max(abs(obj), 1e-12))
            extra["lagrangian_gap"] = max(0.0, (kept.dual_bound - obj) / max(abs(obj), 1e-12))
            cert += (
                f"; Lagrangian dual bound for continuous prices: gap {extra['lagrangian_gap']:.2e}"
            )
    base_obj = float(prob.objective_value(prob.p0).sum())
    table = _table(prob, p, labels)
    intervals: dict[str, float] = {}
    if draws:
        E = _draws(prob, draws, seed)
        plan_d, base_d = _profit_draws(prob, p, E), _profit_draws(prob, prob.p0, E)
        fx = prob.fx
        table = table.with_columns(
            pl.Series("profit_p5", np.percentile(plan_d, 5, axis=0) * fx),
            pl.Series("profit_p95", np.percentile(plan_d, 95, axis=0) * fx),
            pl.Series("baseline_profit_p5", np.percentile(base_d, 5, axis=0) * fx),
            pl.Series("baseline_profit_p95", np.percentile(base_d, 95, axis=0) * fx),
        )
        tot_p, tot_b = plan_d.sum(axis=1), base_d.sum(axis=1)
        intervals = {
            "plan_p5": float(np.percentile(tot_p, 5)),
            "plan_p95": float(np.percentile(tot_p, 95)),
            "baseline_p5": float(np.percentile(tot_b, 5)),
            "baseline_p95": float(np.percentile(tot_b, 95)),
            "draws": float(draws),
        }
    return Plan(
        table=table,
        status=status,
        formulation=form,
        objective_name=prob.objective,
        objective=obj,
        baseline_objective=base_obj,
        gap=gap,
        certificate=cert,
        skipped=prob.skipped,
        multipliers=mult,
        intervals=intervals,
        extra=extra,
    )


def _links_ok(prob: Problem, p: np.ndarray) -> bool:
    for lk in prob.links:
        q = prob.quantity(p[lk.rows], lk.rows).sum()
        if lk.kind == "min_volume_pct" and q < lk.value / 100 * prob.q0[lk.rows].sum() * (1 - 1e-9):
            return False
        if lk.kind == "inventory" and prob.horizon * q > lk.value * (1 + 1e-9):
            return False
    return True


def _table(prob: Problem, p: np.ndarray, labels: list[str]) -> pl.DataFrame:
    h = prob.horizon
    q, q0 = h * prob.quantity(p), h * prob.q0
    return pl.DataFrame(
        {
            "item_id": prob.item.astype(str),
            "market": prob.market.astype(str),
            "category": prob.frame["category"],
            "fx_rate": prob.fx,
            "current_price": prob.p0,
            "recommended_price": p,
            "price_change_pct": 100 * (p / prob.p0 - 1),
            "expected_quantity": q,
            "expected_revenue": p * q,
            "expected_profit": (p - prob.c) * q,
            "baseline_quantity": q0,
            "baseline_revenue": prob.p0 * q0,
            "baseline_profit": (prob.p0 - prob.c) * q0,
            "binding": labels,
            "inelastic": prob.inelastic,
            "elasticity": prob.e,
        }
    )
