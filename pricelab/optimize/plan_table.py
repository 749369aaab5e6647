"""The plan's table at given prices, shared by the own-price and cross routes: expected and
baseline quantity, revenue and profit over the horizon, binding labels, flags, and the profit
intervals over elasticity draws."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from pricelab.optimize.problem import Problem
from pricelab.optimize.routes import elasticity_draws_of, profit_draws
from pricelab.optimize.uncertain import interval_columns


def with_intervals(
    prob: Problem,
    table: pl.DataFrame,
    p: np.ndarray,
    draws: int,
    seed: int,
    objective: Callable[[Problem, np.ndarray, np.ndarray], np.ndarray] = profit_draws,
) -> tuple[pl.DataFrame, dict[str, float]]:
    """P5-P95 profit of plan and baseline per row and in total, over elasticity draws.

    ``objective(prob, prices, E)`` is the per-draw, per-row objective under the demand
    (default: own-price; the cross route passes its cross demand's).
    """
    E = elasticity_draws_of(prob, draws, seed)
    plan_d, base_d = objective(prob, p, E), objective(prob, prob.p0, E)
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
    return table, intervals


def _outside_observed(prob: Problem, p: np.ndarray) -> np.ndarray:
    """True where the price lies outside the row's observed price range (when known)."""
    f = prob.frame
    if not {"min_price", "max_price"} <= set(f.columns):
        return np.zeros(prob.n, dtype=bool)
    lo = f["min_price"].cast(pl.Float64).to_numpy()
    hi = f["max_price"].cast(pl.Float64).to_numpy()
    with np.errstate(invalid="ignore"):
        return (p < lo * (1 - 1e-9)) | (p > hi * (1 + 1e-9))


def plan_table(
    prob: Problem, p: np.ndarray, labels: list[str], weekly_quantity: np.ndarray | None = None
) -> pl.DataFrame:
    """The plan's columns at prices ``p`` (money in market currency, over the horizon).

    ``weekly_quantity`` is the demand's units per week at ``p``; by default the own-price
    curve's (the cross route passes its cross demand's).
    """
    h = prob.horizon
    weekly = prob.quantity(p) if weekly_quantity is None else weekly_quantity
    q, q0 = h * weekly, h * prob.q0
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
            "extrapolated": _outside_observed(prob, p),
            **interval_columns(prob, p),
        }
    )
