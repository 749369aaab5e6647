import numpy as np
import polars as pl
import pytest

from pricelab.errors import DataError, SolverError
from pricelab.optimize import PLAN_COLUMNS, optimize
from pricelab.optimize.closed_form import clipped_optimum
from pricelab.optimize.constraints import load_constraints
from pricelab.optimize.formulations import solve_conic
from pricelab.optimize.problem import build_problem
from tests._optimize_data import demand, profit

BOUNDS = {"bounds": {"max_increase_pct": 15, "max_decrease_pct": 20}, "min_margin_pct": 30}


def test_closed_form_agrees_with_textbook_formula():
    df = demand(50, seed=1)
    plan = optimize(df, BOUNDS)
    t = plan.table
    p0, c, e = (df[x].to_numpy() for x in ("base_price", "unit_cost", "elasticity"))
    lo = np.maximum(p0 * 0.8, c / 0.7)
    expected = clipped_optimum(c, e, lo, p0 * 1.15)
    assert np.allclose(t["recommended_price"].to_numpy(), expected, rtol=1e-12)
    assert plan.formulation == "closed form" and plan.gap == 0.0
    assert set(PLAN_COLUMNS) <= set(t.columns)
    assert np.isclose(plan.objective, profit(df, expected))
    assert plan.objective >= plan.baseline_objective
    hi = t.filter(pl.col("binding") == "max_increase_pct")
    assert np.allclose(hi["recommended_price"], hi["current_price"] * 1.15)


def test_volume_floor_decomposition_matches_power_cone_program():
    df = demand(40, seed=2)
    cons = {**BOUNDS, "min_volume_pct": 172, "horizon_weeks": 4}
    plan = optimize(df, cons)
    prob = build_problem(df, load_constraints(cons))
    ref = solve_conic(prob)
    obj_ref = profit(df, ref, 4)
    assert plan.objective >= obj_ref * (1 - 1e-6)
    assert abs(plan.objective - obj_ref) <= 1e-5 * abs(obj_ref)
    assert plan.table["expected_quantity"].sum() >= 1.72 * plan.table["baseline_quantity"].sum() * (
        1 - 1e-9
    )
    assert plan.gap < 1e-6
    assert "min_volume_pct" in plan.binding_counts()


def test_shared_stock_pool_matches_power_cone_program():
    df = demand(6, seed=3).with_columns(
        pl.col("item_id").alias("stock_pool"),
        (pl.col("base_quantity").sum().over("item_id") * 4 * 0.9).alias("stock"),
    )
    cons = {**BOUNDS, "inventory": True, "horizon_weeks": 4}
    plan = optimize(df, cons)
    ref = solve_conic(build_problem(df, load_constraints(cons)))
    assert abs(plan.objective - profit(df, ref, 4)) <= 1e-5 * abs(plan.objective)
    used = (
        plan.table.with_columns(df["stock_pool"], df["stock"])
        .group_by("stock_pool")
        .agg(pl.col("expected_quantity").sum(), pl.col("stock").first())
    )
    assert (used["expected_quantity"] <= used["stock"] * (1 + 1e-9)).all()
    assert "inventory" in plan.binding_counts()


def test_inelastic_rows_flagged_and_pushed_to_cap():
    df = demand(4, seed=4).with_columns(pl.lit(-0.6).alias("elasticity"))
    plan = optimize(df, BOUNDS)
    t = plan.table
    assert t["inelastic"].all()
    assert np.allclose(t["recommended_price"], t["current_price"] * 1.15)
    assert "inelastic" in plan.summary


def test_bad_rows_skipped_with_reason_or_strict_error():
    df = demand(3, seed=5)
    bad = df.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(float("nan"))
        .when(pl.int_range(pl.len()) == 1)
        .then(0.4)
        .otherwise(pl.col("elasticity"))
        .alias("elasticity"),
        pl.when(pl.int_range(pl.len()) == 2)
        .then(None)
        .otherwise(pl.col("unit_cost"))
        .alias("unit_cost"),
        pl.when(pl.int_range(pl.len()) == 3).then(-1.0).otherwise(None).alias("stock"),
    )
    plan = optimize(bad, BOUNDS)
    reasons = dict(zip(plan.skipped["market"], plan.skipped["reason"], strict=True))
    assert plan.table.height == df.height and len(reasons) == 4
    kept = plan.table.filter(pl.col("status") == "skipped")
    assert dict(zip(kept["market"], kept["reason"], strict=True)) == reasons
    assert (kept["recommended_price"] == kept["current_price"]).all()
    assert (plan.table.filter(pl.col("status") == "optimized")["reason"] == "").all()
    assert "NaN" in reasons["US"] and ">= 0" in reasons["GB"] and "unit_cost" in reasons["DE"]
    assert "stock < 0" in reasons["CH"] and "skipped 4 row(s)" in plan.summary
    with pytest.raises(DataError, match="4 row\\(s\\) cannot be optimised, first IT-0/US"):
        optimize(bad, BOUNDS, strict=True)


def test_unbounded_names_row():
    df = demand(2, seed=6).with_columns(pl.lit(-0.5).alias("elasticity"))
    with pytest.raises(SolverError, match="unbounded: IT-0/US is inelastic"):
        optimize(df, {"min_margin_pct": 10})


def test_draws_give_intervals_and_revenue_objective():
    df = demand(5, seed=7)
    plan = optimize(df, BOUNDS, draws=200, seed=1)
    iv = plan.intervals
    assert iv["plan_p5"] < plan.objective < iv["plan_p95"]
    assert {"profit_p5", "profit_p95"} <= set(plan.table.columns)
    d = plan.to_dict()
    assert d["intervals"]["draws"] == 200 and d["status"] == "optimal"
    rev = optimize(df, {**BOUNDS, "objective": "revenue"})
    assert rev.objective_name == "revenue" and rev.objective >= rev.baseline_objective
