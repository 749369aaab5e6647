"""Joint pricing under cross-price demand: brute force, constraints, the single-item gap."""

from __future__ import annotations

import itertools
import json

import duckdb
import numpy as np
import polars as pl
import pytest

from pricelab.demand.curves import CrossElasticity
from pricelab.errors import InfeasibleError, UsageError
from pricelab.optimize import optimize
from pricelab.optimize.cross import optimize_cross
from tests._cross_cases import (
    LADDER,
    TWO_MARKETS,
    brute,
    category,
    meets_two_markets,
    two_markets,
)


def test_joint_plan_matches_brute_force_on_a_ladder():
    demand, cross = category()
    cons = LADDER
    plan = optimize_cross(demand, cross, cons)
    best, arg = brute(demand, cross, cons, lambda p, q: True)
    assert plan.objective == pytest.approx(best, rel=1e-12)
    assert plan.table["recommended_price"].to_numpy() == pytest.approx(arg)
    assert plan.gap == 0.0 and "exact on the candidate prices (ladder points)" in plan.certificate


def test_parity_volume_and_budget_match_brute_force():
    demand, cross = two_markets()
    plan = optimize_cross(demand, cross, TWO_MARKETS)
    feasible = meets_two_markets(demand, cross)
    best, arg = brute(demand, cross, TWO_MARKETS, feasible)
    assert plan.objective == pytest.approx(best, rel=1e-6)
    p = plan.table["recommended_price"].to_numpy()
    assert feasible(p)
    assert "MILP" in plan.formulation


@pytest.mark.parametrize("items", [["A", "B"], ["B", "C"], ["C", "B", "A"]])
def test_ordering_matches_brute_force_on_a_ladder(items):
    demand, cross = category()
    cons = {**LADDER, "ordering": [{"items": items, "min_step_pct": 10}]}
    plan = optimize_cross(demand, cross, cons)
    pos = [ord(i) - ord("A") for i in items]

    def ordered(p, q):
        return all(p[u] >= 1.1 * p[lo] - 1e-9 for lo, u in itertools.pairwise(pos))

    best, arg = brute(demand, cross, cons, ordered)
    assert plan.objective == pytest.approx(best, rel=1e-12)
    assert plan.table["recommended_price"].to_numpy() == pytest.approx(arg)
    unordered = optimize_cross(demand, cross, LADDER)
    assert plan.objective < unordered.objective  # each of these orderings binds


def test_single_item_plan_earns_about_three_quarters_of_the_joint_plan():
    demand, cross = category(own=(-3.0, -3.0, -3.0), cross=0.8)
    cons = {"horizon_weeks": 4, "bounds": {"max_increase_pct": 30, "max_decrease_pct": 30}}
    joint = optimize_cross(demand, cross, cons)
    single = optimize(demand, cons)  # each item on its own elasticity
    curve = CrossElasticity.from_tables(demand, cross)
    p = single.table["recommended_price"].to_numpy()
    earned = float((4 * (p - 55.0) * curve.quantity(p)).sum())
    assert earned == pytest.approx(joint.extra["single_item_objective"], rel=1e-12)
    share = earned / joint.objective
    assert 0.65 < share < 0.8  # 0.725: the single-item plan cuts prices and cannibalises
    assert (p < 100).all() and (joint.table["recommended_price"] > 100).all()
    # what single-item pricing promised vs what the cross demand delivers
    assert single.objective > 1.3 * earned
    # cutting every price sends no units to siblings: all see negative cannibalisation
    t = joint.table
    assert (t["cannibalised_quantity"] > 0).all()  # siblings got dearer: units come over


def test_cross_plan_has_the_own_price_plan_columns_and_flags_extrapolation():
    demand, cross = category(own=(-3.0, -3.0, -3.0), cross=0.8)
    # A's history saw 90-110, B's 95-125, C has no observed range: joint prices are ~>100
    demand = demand.with_columns(
        min_price=pl.Series([90.0, 95.0, None]), max_price=pl.Series([110.0, 125.0, None])
    )
    cons = {"horizon_weeks": 4, "bounds": {"max_increase_pct": 30, "max_decrease_pct": 30}}
    joint = optimize_cross(demand, cross, cons)
    own = optimize(demand, cons)
    t = joint.table
    assert [c for c in t.columns if c != "cannibalised_quantity"] == own.table.columns
    p = t["recommended_price"].to_numpy()
    assert t["extrapolated"].to_list() == [p[0] > 110, p[1] > 125, False]
    assert t["extrapolated"].any() and not t["extrapolated"].all()


def test_large_block_search_reports_a_valid_gap():
    demand, cross = category(seed=5)
    cons = {"horizon_weeks": 4, "bounds": {"max_increase_pct": 30, "max_decrease_pct": 30}}
    cons["ladder"] = {"step": 5}
    exact = optimize_cross(demand, cross, cons)
    search = optimize_cross(demand, cross, cons, max_combos=10)
    assert "best-response" in search.formulation and "relaxation bound" in search.certificate
    assert search.objective <= exact.objective * (1 + 1e-12)
    # the bound is an upper bound on the true (continuous) optimum, so on the exact ladder one
    assert exact.objective <= search.objective * (1 + search.gap) * (1 + 1e-9)
    assert search.gap < 0.02


@pytest.mark.parametrize("seed", [1, 2, 5, 6])
def test_every_price_satisfies_every_constraint(seed):
    demand, cross = category(markets=("US", "GB"), seed=seed)
    cons = {
        "horizon_weeks": 4,
        "bounds": {"max_increase_pct": 20, "max_decrease_pct": 15},
        "min_margin_pct": 35,
        "ladder": {"step": 5},
        "parity": {"max_gap_pct": 10},
        "min_volume_pct": 92,
        "max_avg_change_pct": 5,
    }
    try:
        plan = optimize_cross(demand, cross, cons)
    except InfeasibleError:
        pytest.skip("this draw has no feasible plan")
    p = plan.table["recommended_price"].to_numpy()
    p0 = demand["base_price"].to_numpy()
    c = demand["unit_cost"].to_numpy()
    fx = demand["fx_rate"].to_numpy()
    q0 = demand["base_quantity"].to_numpy()
    assert (p <= p0 * 1.2 + 1e-9).all() and (p >= p0 * 0.85 - 1e-9).all()
    assert ((p - c) / p >= 0.35 - 1e-12).all()
    assert np.allclose(p / 5, np.round(p / 5))
    for it in ("A", "B", "C"):
        b = (p / fx)[demand["item_id"].to_numpy() == it]
        assert b.max() <= 1.1 * b.min() * (1 + 1e-12)
    q = CrossElasticity.from_tables(demand, cross).quantity(p)
    assert q.sum() >= 0.92 * q0.sum() * (1 - 1e-12)
    w = p0 * q0 / fx
    assert abs((w / w.sum()) @ (p / p0) - 1) <= 0.05 + 1e-12
    assert plan.table["expected_quantity"].to_numpy() == pytest.approx(4 * q)


def test_refusals():
    demand, cross = category()
    cons = {"bounds": {"max_increase_pct": 30, "max_decrease_pct": 30}, "min_volume_pct": 90}
    with pytest.raises(UsageError, match="beyond the exact joint route"):
        optimize_cross(demand, cross, cons, max_combos=10)
    with pytest.raises(Exception, match="other_item_id"):
        optimize_cross(demand, cross.drop("other_item_id"), cons)


def test_own_row_conflicts_stay_at_current_price_like_the_single_item_route():
    demand, cross = category()
    # A's margin floor (cost 95 / (1 - 0.4) = 158.3) is above its cap (+30%: 130)
    demand = demand.with_columns(
        unit_cost=pl.when(pl.col("item_id") == "A").then(95.0).otherwise(pl.col("unit_cost"))
    )
    cons = {"bounds": {"max_increase_pct": 30, "max_decrease_pct": 30}, "min_margin_pct": 40}
    with pytest.raises(InfeasibleError, match="min_margin_pct"):
        optimize_cross(demand, cross, cons)
    plan = optimize_cross(demand, cross, cons, conflicts="keep")
    t = plan.table
    assert t["status"].to_list() == ["conflict", "optimized", "optimized"]
    assert t["recommended_price"][0] == 100.0 and "min_margin_pct" in t["reason"][0]
    assert plan.extra["conflicts"][0]["item_id"] == "A"
    # the others are priced jointly around A held at its current price
    held = optimize_cross(demand, cross, {**cons, "frozen": ["A"]})
    assert t["recommended_price"].to_list() == held.table["recommended_price"].to_list()
    same = optimize(demand, cons, cross=cross, conflicts="keep")
    assert same.table.equals(t)


def test_draws_give_the_joint_plans_profit_interval():
    from pricelab.demand.draws import elasticity_draws

    demand, cross = category(markets=("US", "GB"), seed=2)
    demand = demand.with_columns(std_error=pl.Series([0.1, 0.2, 0.3, 0.15, 0.25, 0.05]))
    cons = {"horizon_weeks": 4, "bounds": {"max_increase_pct": 30, "max_decrease_pct": 30}}
    plan = optimize(demand, cons, cross=cross, draws=300, seed=4)
    point = optimize(demand, cons, cross=cross)
    t = plan.table
    assert t["recommended_price"].equals(point.table["recommended_price"])  # same plan
    # reference: one cross demand per draw, own elasticities drawn, cross terms as estimated
    base = CrossElasticity.from_tables(demand, cross)
    M = base.matrix.toarray()
    E = elasticity_draws(
        demand["elasticity"].to_numpy(), demand["std_error"].to_numpy(), 300, seed=4
    )
    p, c = t["recommended_price"].to_numpy(), demand["unit_cost"].to_numpy()
    prof = []
    for e in E:
        np.fill_diagonal(M, e)
        prof.append(
            4 * (p - c) * CrossElasticity(base.base_price, base.base_quantity, M).quantity(p)
        )
    prof = np.array(prof)
    assert t["profit_p5"].to_numpy() == pytest.approx(np.percentile(prof, 5, axis=0), rel=1e-9)
    assert t["profit_p95"].to_numpy() == pytest.approx(np.percentile(prof, 95, axis=0), rel=1e-9)
    total = (prof / demand["fx_rate"].to_numpy()).sum(axis=1)
    assert plan.intervals["plan_p5"] == pytest.approx(np.percentile(total, 5), rel=1e-9)
    assert plan.intervals["plan_p5"] < plan.objective < plan.intervals["plan_p95"]


def test_cli_file_mode_and_cross_estimate_run(tmp_path, cli):
    from tests.test_elasticity_cross import synthetic

    demand, cross = category(own=(-3.0, -3.0, -3.0), cross=0.8)
    demand.write_csv(tmp_path / "demand.csv")
    cross.write_csv(tmp_path / "cross.csv")
    cons = tmp_path / "c.yaml"
    cons.write_text("horizon_weeks: 4\nbounds: {max_increase_pct: 30, max_decrease_pct: 30}\n")
    out = tmp_path / "plan.csv"
    r = cli(
        "optimize", "--demand", tmp_path / "demand.csv", "--cross", tmp_path / "cross.csv",
        "--constraints", cons, "--output", out,
    )  # fmt: skip
    assert r.exit_code == 0, r.stdout + r.stderr
    assert "pricing each item on its own elasticity would earn" in r.stdout
    written = pl.read_csv(out)
    assert "cannibalised_quantity" in written.columns
    assert (written["status"] == "optimized").all()
    r = cli("optimize", "--cross", tmp_path / "cross.csv", "--constraints", cons)
    assert r.exit_code == 2 and "--demand" in r.stdout + r.stderr
    # database mode: a cross estimate run is priced jointly
    sales, items = synthetic(markets=2, weeks=60)
    sales.with_columns(unit_cost=pl.lit(55.0)).write_csv(tmp_path / "sales.csv")
    items.write_csv(tmp_path / "items.csv")
    db = tmp_path / "x.duckdb"
    r = cli(
        "ingest", "--db", db, "--sales", tmp_path / "sales.csv", "--items", tmp_path / "items.csv"
    )
    assert r.exit_code == 0, r.stdout + r.stderr
    assert cli("estimate", "--db", db, "--model", "cross").exit_code == 0
    r = cli("optimize", "--db", db, "--constraints", cons, "--json")
    assert r.exit_code == 0, r.stdout + r.stderr

    d = json.loads(r.stdout)
    assert d["path"] == "cross" and d["rows"] == 6 and d["single_item_objective"] < d["objective"]
    # a pooled cross run (--by item_id: one row per item, no market) drives database mode
    # too: each item's own and cross elasticities apply in every market it sells in
    r = cli("estimate", "--db", db, "--model", "cross", "--by", "item_id", "--json")
    assert r.exit_code == 0, r.stdout + r.stderr
    pooled = json.loads(r.stdout)["run_id"]
    r = cli("optimize", "--db", db, "--constraints", cons, "--estimates", pooled, "--json")
    assert r.exit_code == 0, r.stdout + r.stderr
    d = json.loads(r.stdout)
    assert d["path"] == "cross" and d["rows"] == 6 and d["single_item_objective"] < d["objective"]
    with duckdb.connect(str(db), read_only=True) as con:
        own = con.sql(f"SELECT item_id, elasticity FROM elasticities WHERE run_id = '{pooled}'")
        plan = con.sql(
            f"SELECT item_id, market, elasticity FROM plans WHERE run_id = '{d['run_id']}'"
        )
        got = plan.pl().join(own.pl(), on="item_id", suffix="_pooled")
    assert got.height == 6 and got["market"].n_unique() == 2
    assert (got["elasticity"] == got["elasticity_pooled"]).all()


def test_cannibalised_units_have_one_definition_in_optimize_and_simulate():
    """The plan's ``cannibalised_quantity`` and simulate's (``with_cross``) are the cross
    demand's units minus the units at the own price alone (closed form), for the same prices."""
    from pricelab.simulate.cross import SCALED, with_cross

    demand, cross = category(seed=1)
    plan = optimize_cross(demand, cross, LADDER)
    p = plan.table["recommended_price"].to_numpy()
    p0, q0 = demand["base_price"].to_numpy(), demand["base_quantity"].to_numpy()
    own = q0 * (p / p0) ** demand["elasticity"].to_numpy()
    total = CrossElasticity.from_tables(demand, cross).quantity(p)
    assert not np.allclose(total, own)  # siblings' prices moved these units
    got = plan.table["cannibalised_quantity"].to_numpy()
    assert got == pytest.approx(4 * (total - own), rel=1e-12)
    proj = demand.select("item_id", "market", pl.col("base_price").alias("baseline_price"))
    proj = proj.with_columns(scenario_price=pl.Series(p), **{c: pl.Series(own) for c in SCALED})
    sim = with_cross(proj, cross)
    assert sim["cannibalised_quantity"].to_numpy() == pytest.approx(total - own, rel=1e-12)
    assert sim["scenario_quantity"].to_numpy() == pytest.approx(total, rel=1e-12)
