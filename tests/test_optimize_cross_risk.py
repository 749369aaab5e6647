"""``--risk cvar:ALPHA`` on the cross route: expected profit over own-elasticity draws with a
CVaR floor at the current prices' CVaR, in the combination MILP. Checked against brute force
over every plan on the ladder, with expected profit and CVaR computed here from the draws."""

from __future__ import annotations

import itertools
import json

import numpy as np
import polars as pl
import pytest

from pricelab.demand.curves import CrossElasticity
from pricelab.demand.draws import elasticity_draws
from pricelab.errors import InfeasibleError, UsageError
from pricelab.optimize import optimize
from pricelab.optimize.cross import optimize_cross
from tests._cross_cases import (
    LADDER,
    TWO_MARKETS,
    category,
    ladder,
    meets_two_markets,
    two_markets,
)

DRAWS, SEED = 40, 1


def per_draw_profit(demand: pl.DataFrame, cross: pl.DataFrame, P: np.ndarray) -> np.ndarray:
    """Total profit (base currency, 4 weeks) of every plan in ``P`` (plans, n) under every
    draw (draws, plans): one cross demand per draw with its own elasticities drawn."""
    base = CrossElasticity.from_tables(demand, cross)
    M = base.matrix.toarray()
    E = elasticity_draws(
        demand["elasticity"].to_numpy(), demand["std_error"].to_numpy(), DRAWS, seed=SEED
    )
    c, fx = demand["unit_cost"].to_numpy(), demand["fx_rate"].to_numpy()
    out = []
    for e in E:
        np.fill_diagonal(M, e)
        q = CrossElasticity(base.base_price, base.base_quantity, M.copy()).quantity(P)
        out.append((4 * (P - c) * q / fx).sum(axis=1))
    return np.array(out)


def cvar(values: np.ndarray, alpha: float) -> np.ndarray:
    """Mean of the worst alpha share of the draws (alpha x draws is whole here)."""
    k = round(alpha * values.shape[0])
    assert k == alpha * values.shape[0]
    return np.sort(values, axis=0)[:k].mean(axis=0)


def brute_risk(demand, cross, grids, alpha, feasible=None):
    """Best expected profit over every plan whose CVaR is at least the current prices'."""
    P = np.array(list(itertools.product(*grids)))
    if feasible is not None:
        P = P[[feasible(p) for p in P]]
    D = per_draw_profit(demand, cross, P)
    floor = cvar(per_draw_profit(demand, cross, demand["base_price"].to_numpy()[None]), alpha)
    ok = cvar(D, alpha) >= floor[0] * (1 - 1e-12)
    mean = np.where(ok, D.mean(axis=0), -np.inf)
    k = int(np.argmax(mean))
    return mean[k], P[k], cvar(D[:, [k]], alpha)[0], floor[0], float(D.mean(axis=0).max())


def ladder_grids(demand: pl.DataFrame, cons: dict) -> list[np.ndarray]:
    b = cons["bounds"]
    floor = demand["unit_cost"].to_numpy() / (1 - cons.get("min_margin_pct", 0) / 100)
    return [
        ladder(
            max(p * (1 - b["max_decrease_pct"] / 100), f), p * (1 + b["max_increase_pct"] / 100), 5
        )
        for p, f in zip(demand["base_price"].to_numpy(), floor, strict=True)
    ]


@pytest.mark.parametrize("alpha", [0.05, 0.1, 0.25])
def test_risk_plan_matches_brute_force_over_every_ladder_plan(alpha: float) -> None:
    demand, cross = category()
    demand = demand.with_columns(std_error=pl.Series([0.8, 1.0, 0.6]))
    plan = optimize_cross(demand, cross, LADDER, draws=DRAWS, seed=SEED, risk=f"cvar:{alpha}")
    best, arg, best_cvar, floor, unconstrained = brute_risk(
        demand, cross, ladder_grids(demand, LADDER), alpha
    )
    p = plan.table["recommended_price"].to_numpy()
    assert plan.objective == pytest.approx(best, rel=1e-9)
    assert p == pytest.approx(arg)
    assert plan.extra["risk"]["cvar_floor"] == pytest.approx(floor, rel=1e-12)
    assert plan.extra["risk"]["plan_cvar"] == pytest.approx(best_cvar, rel=1e-9)
    assert best_cvar >= floor * (1 - 1e-12)
    if alpha == 0.05:  # the floor binds: the expected-profit plan alone has a lower CVaR
        assert best < unconstrained * (1 - 1e-3)
    # the plan's interval is reported over the same draws
    D = per_draw_profit(demand, cross, p[None])[:, 0]
    assert plan.intervals["plan_p5"] == pytest.approx(np.percentile(D, 5), rel=1e-9)
    assert plan.intervals["plan_p95"] == pytest.approx(np.percentile(D, 95), rel=1e-9)


def test_risk_with_parity_volume_and_budget_matches_brute_force() -> None:
    demand, cross = two_markets(std_error=[0.9, 0.5, 0.9, 0.5])
    feasible = meets_two_markets(demand, cross)
    cons = TWO_MARKETS
    plan = optimize(demand, cons, cross=cross, draws=DRAWS, seed=SEED, risk="cvar:0.05")
    best, arg, _, floor, _ = brute_risk(demand, cross, ladder_grids(demand, cons), 0.05, feasible)
    p, p0 = plan.table["recommended_price"].to_numpy(), demand["base_price"].to_numpy()
    assert plan.objective == pytest.approx(best, rel=1e-6)
    assert feasible(p) and np.allclose(p / 5, np.round(p / 5))
    assert (p <= 1.25 * p0 + 1e-9).all() and (p >= 0.75 * p0 - 1e-9).all()
    assert plan.extra["risk"]["plan_cvar"] >= floor * (1 - 1e-9)


def test_expected_plan_matches_brute_force_over_every_ladder_plan() -> None:
    """``--expected`` on the cross route: the best mean profit over the draws of every plan on
    the ladder (no floor), computed here from the draws; here it prices C at 85, the point
    estimates at 90."""
    demand, cross = category()
    demand = demand.with_columns(std_error=pl.Series([0.8, 1.0, 0.6]))
    cons = {k: v for k, v in LADDER.items() if k != "min_margin_pct"}  # an inner optimum
    plan = optimize_cross(demand, cross, cons, draws=DRAWS, seed=SEED, expected=True)
    P = np.array(list(itertools.product(*ladder_grids(demand, cons))))
    mean = per_draw_profit(demand, cross, P).mean(axis=0)
    k = int(np.argmax(mean))
    p = plan.table["recommended_price"].to_numpy()
    assert plan.objective == pytest.approx(mean[k], rel=1e-9)
    assert p == pytest.approx(P[k])
    assert plan.gap <= 1e-5 and "risk" not in plan.extra
    assert f"expected profit over {DRAWS} own-elasticity draws" in plan.formulation
    point = optimize_cross(demand, cross, cons).table["recommended_price"].to_numpy()
    assert not np.allclose(point, p)  # the draws move the plan
    D = per_draw_profit(demand, cross, p[None])[:, 0]
    assert plan.intervals["plan_p5"] == pytest.approx(np.percentile(D, 5), rel=1e-9)
    # with a CVaR floor as well, the floor applies: the --risk plan
    both = optimize_cross(
        demand, cross, cons, draws=DRAWS, seed=SEED, expected=True, risk="cvar:0.05"
    )
    risk = optimize_cross(demand, cross, cons, draws=DRAWS, seed=SEED, risk="cvar:0.05")
    assert both.objective == risk.objective and both.extra["risk"] == risk.extra["risk"]


def test_expected_with_parity_volume_and_budget_matches_brute_force() -> None:
    demand, cross = two_markets(std_error=[0.9, 0.5, 0.9, 0.5])
    feasible = meets_two_markets(demand, cross)
    plan = optimize(demand, TWO_MARKETS, cross=cross, draws=DRAWS, seed=SEED, expected=True)
    P = np.array(list(itertools.product(*ladder_grids(demand, TWO_MARKETS))))
    P = P[[feasible(p) for p in P]]
    mean = per_draw_profit(demand, cross, P).mean(axis=0)
    p = plan.table["recommended_price"].to_numpy()
    assert plan.objective == pytest.approx(mean.max(), rel=1e-6)
    assert feasible(p) and np.allclose(p / 5, np.round(p / 5))


def test_risk_refusals_name_the_limit() -> None:
    demand, cross = category(seed=5)
    demand = demand.with_columns(std_error=pl.lit(0.5))
    cons = {"horizon_weeks": 4, "bounds": {"max_increase_pct": 30, "max_decrease_pct": 30}}
    with pytest.raises(UsageError, match="its block of 3 substitutes .* or --risk"):
        optimize_cross(
            demand, cross, {**cons, "ladder": {"step": 5}}, max_combos=10, risk="cvar:0.1"
        )
    with pytest.raises(UsageError, match="its block of 3 substitutes .* --expected"):
        # the search for blocks too large to enumerate knows point estimates only
        optimize_cross(demand, cross, {**cons, "ladder": {"step": 5}}, max_combos=10, expected=True)
    with pytest.raises(UsageError, match="draws = .* values to enumerate"):
        optimize_cross(demand, cross, cons, n_grid=40, draws=2000, risk="cvar:0.1")
    with pytest.raises(UsageError, match="draws = .* values to enumerate"):
        optimize_cross(demand, cross, cons, n_grid=40, draws=2000, expected=True)
    with pytest.raises(UsageError, match="expected cvar:ALPHA"):
        optimize_cross(demand, cross, cons, risk="var:0.1")


def test_an_unreachable_floor_is_diagnosed() -> None:
    # a 60% margin floor puts every price at least 37.5% above today's: no such plan keeps
    # the worst 5% of draws at the current prices' profit with elasticities this uncertain
    demand, cross = category()
    demand = demand.with_columns(std_error=pl.lit(2.5))
    cons = {"horizon_weeks": 4, "bounds": {"max_increase_pct": 60}, "min_margin_pct": 60}
    with pytest.raises(InfeasibleError, match=r"risk cvar:0.05 floor 54,000.00"):
        optimize_cross(demand, cross, cons, n_grid=5, draws=DRAWS, risk="cvar:0.05")


def test_cli_risk_on_the_cross_route(tmp_path, cli) -> None:
    demand, cross = category()
    demand.with_columns(std_error=pl.Series([0.8, 1.0, 0.6])).write_csv(tmp_path / "d.csv")
    cross.write_csv(tmp_path / "x.csv")
    (tmp_path / "c.yaml").write_text(
        "horizon_weeks: 4\nbounds: {max_increase_pct: 30, max_decrease_pct: 30}\n"
        "min_margin_pct: 40\nladder: {step: 5}\n"
    )
    r = cli(
        "optimize", "--demand", tmp_path / "d.csv", "--cross", tmp_path / "x.csv",
        "--constraints", tmp_path / "c.yaml", "--risk", "cvar:0.05", "--draws", DRAWS,
        "--seed", SEED, "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stdout + r.stderr
    d = json.loads(r.stdout)
    assert d["path"] == "cross" and d["risk"]["plan_cvar"] >= d["risk"]["cvar_floor"]
    plan = optimize_cross(
        demand.with_columns(std_error=pl.Series([0.8, 1.0, 0.6])),
        cross,
        LADDER,
        draws=DRAWS,
        seed=SEED,
        risk="cvar:0.05",
    )
    assert d["objective"] == pytest.approx(plan.objective, rel=1e-12)
    assert "CVaR_0.05" in d["formulation"]


def test_cli_expected_on_the_cross_route(tmp_path, cli) -> None:
    demand, cross = category()
    demand = demand.with_columns(std_error=pl.Series([0.8, 1.0, 0.6]))
    demand.write_csv(tmp_path / "d.csv")
    cross.write_csv(tmp_path / "x.csv")
    (tmp_path / "c.yaml").write_text(
        "horizon_weeks: 4\nbounds: {max_increase_pct: 30, max_decrease_pct: 30}\n"
        "ladder: {step: 5}\n"
    )
    r = cli(
        "optimize", "--demand", tmp_path / "d.csv", "--cross", tmp_path / "x.csv",
        "--constraints", tmp_path / "c.yaml", "--expected", "--draws", DRAWS,
        "--seed", SEED, "--json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stdout + r.stderr
    d = json.loads(r.stdout)
    cons = {k: v for k, v in LADDER.items() if k != "min_margin_pct"}
    plan = optimize_cross(demand, cross, cons, draws=DRAWS, seed=SEED, expected=True)
    assert d["path"] == "cross" and "risk" not in d
    assert d["objective"] == pytest.approx(plan.objective, rel=1e-12)
    assert f"expected profit over {DRAWS}" in d["formulation"]
