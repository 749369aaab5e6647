"""Partial plans for conflicts between rows: parity, volume floors, stock pools, budgets and
ordering. The conflicting group stays at its current price with the constraint named; the
rest of the plan is the plan the same constraints give without that group."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml

from pricelab.errors import InfeasibleError
from pricelab.optimize import optimize
from tests.conftest import CliResult

BOUNDS = {"max_increase_pct": 10, "max_decrease_pct": 10}


def demand(rows: list[tuple[str, str, float, float, float, float, float, str]]) -> pl.DataFrame:
    """(item, market, price, quantity, elasticity, cost, fx, category) rows."""
    cols = ["item_id", "market", "base_price", "base_quantity", "elasticity", "unit_cost"]
    return pl.DataFrame([dict(zip([*cols, "fx_rate", "category"], r, strict=True)) for r in rows])


def split(plan_table: pl.DataFrame, bad: pl.Expr) -> tuple[pl.DataFrame, pl.DataFrame]:
    return plan_table.filter(bad), plan_table.filter(~bad)


def same_prices(rest: pl.DataFrame, reference: pl.DataFrame) -> None:
    keys = ["item_id", "market"]
    joined = rest.select(*keys, "recommended_price", "status").join(
        reference.select(*keys, pl.col("recommended_price").alias("ref")), on=keys, how="full"
    )
    assert joined.height == rest.height == reference.height
    assert (joined["status"] == "optimized").all()
    np.testing.assert_allclose(joined["recommended_price"], joined["ref"], rtol=1e-6)


def kept(conflict: pl.DataFrame, words: str) -> None:
    assert conflict.height and (conflict["status"] == "conflict").all()
    assert (conflict["binding"] == "conflict").all()
    assert (conflict["recommended_price"] == conflict["current_price"]).all()
    assert conflict["reason"].str.contains(words, literal=True).all(), conflict["reason"]


PARITY = demand(
    [
        ("A", "US", 100, 10, -2.5, 40, 1.0, "x"),
        ("A", "GB", 80, 8, -3.0, 32, 0.8, "x"),
        ("B", "US", 50, 20, -2.0, 30, 1.0, "x"),
        ("B", "GB", 42, 15, -4.0, 24, 0.8, "x"),
        # C's base prices 100 (US) and 200 (GB): no +-10% moves bring them within 5%
        ("C", "US", 100, 5, -2.0, 45, 1.0, "x"),
        ("C", "GB", 160, 5, -2.0, 72, 0.8, "x"),
    ]
)


def test_parity_conflict_keeps_the_item_and_prices_the_rest() -> None:
    cons = {"bounds": BOUNDS, "parity": {"max_gap_pct": 5}}
    with pytest.raises(InfeasibleError, match="C: parity max_gap_pct 5"):
        optimize(PARITY, cons)
    plan = optimize(PARITY, cons, conflicts="keep")
    conflict, rest = split(plan.table, pl.col("item_id") == "C")
    kept(
        conflict,
        "C: parity max_gap_pct 5: GB needs base price >= 180.00 (max_decrease_pct) but US is "
        "capped at 110.00 (max_increase_pct); gap needed 63.6%",
    )
    same_prices(rest, optimize(PARITY.filter(pl.col("item_id") != "C"), cons).table)
    base = rest.with_columns(b=pl.col("recommended_price") / pl.col("fx_rate"))
    gaps = base.group_by("item_id").agg((pl.col("b").max() / pl.col("b").min()).alias("g"))
    assert gaps["g"].max() <= 1.05 + 1e-7  # parity holds for the rest
    assert "parity" in ",".join(rest["binding"].to_list())  # and binds there
    assert {c["item_id"] for c in plan.to_dict()["conflicts"]} == {"C"}


FLOORS = demand(
    [
        ("S1", "US", 100, 10, -3.0, 80, 1.0, "shoes"),
        ("S2", "US", 80, 12, -2.5, 60, 1.0, "shoes"),
        ("G1", "US", 200, 4, -2.0, 80, 1.0, "bags"),
        ("G2", "US", 150, 6, -3.0, 60, 1.0, "bags"),
    ]
)
FLOOR_CONS = {
    "bounds": BOUNDS,
    "overrides": [
        # bags: a 10% cut sells at most 1.1**3 = 1.33x the units, not 1.5x
        {"where": {"category": "bags"}, "min_volume_pct": 150},
        {"where": {"category": "shoes"}, "min_volume_pct": 100},
    ],
}


def test_volume_floor_conflict_keeps_its_rows_and_prices_the_rest() -> None:
    with pytest.raises(InfeasibleError, match="min_volume_pct 150"):
        optimize(FLOORS, FLOOR_CONS)
    plan = optimize(FLOORS, FLOOR_CONS, conflicts="keep")
    conflict, rest = split(plan.table, pl.col("category") == "bags")
    kept(conflict, "min_volume_pct 150 (category=bags) needs >= ")
    reference = optimize(FLOORS.filter(pl.col("category") != "bags"), FLOOR_CONS).table
    same_prices(rest, reference)
    # the shoes floor binds on the rest: units at least the baseline's, within 1e-6
    assert rest["expected_quantity"].sum() >= rest["baseline_quantity"].sum() * (1 - 1e-6)
    assert "min_volume_pct" in ",".join(rest["binding"].to_list())


def test_budget_and_stock_pool_conflicts() -> None:
    d = demand(
        [
            ("S1", "US", 100, 10, -3.0, 50, 1.0, "shoes"),
            ("S2", "US", 80, 12, -2.5, 34, 1.0, "shoes"),
            ("G1", "US", 200, 4, -2.0, 80, 1.0, "bags"),
            ("G2", "US", 150, 6, -3.0, 60, 1.0, "bags"),
        ]
    ).with_columns(
        stock=pl.Series([None, None, 5.0, 5.0]),
        stock_pool=pl.Series([None, None, "P", "P"]),
    )
    cons = {
        "bounds": BOUNDS,
        "inventory": True,
        "overrides": [{"where": {"category": "shoes"}, "max_avg_change_pct": 2}],
        "min_margin_pct": 60,  # S1 needs >= 125 (cap 110), S2 >= 85 (+6.25%)
    }
    with pytest.raises(InfeasibleError):
        optimize(d, cons)
    plan = optimize(d, cons, conflicts="keep")
    t = {r["item_id"]: r for r in plan.table.iter_rows(named=True)}
    assert "min_margin_pct 60 needs price >= 125.00" in t["S1"]["reason"]
    # S2 can meet its own floor, but not the shoes budget with S1 kept at 100 (+3.06% at
    # least): the budget's rows
    assert "max_avg_change_pct 2 (category=shoes): achievable average change" in t["S2"]["reason"]
    # the pool of 5 units over 4 weeks: the bags sell more even at +10%
    for g in ("G1", "G2"):
        assert "inventory pool P (stock 5): even the highest allowed prices sell" in t[g]["reason"]
    assert all(r["status"] == "conflict" for r in t.values())


ORDERED = demand(
    [
        ("A", "US", 100, 10, -2.5, 40, 1.0, "x"),
        ("B", "US", 80, 10, -2.5, 40, 1.0, "x"),  # must be >= 1.1 x A >= 99, capped at 88
        ("A", "GB", 100, 10, -2.5, 40, 1.0, "x"),
        ("B", "GB", 130, 10, -2.0, 50, 1.0, "x"),
        ("Z", "US", 60, 10, -3.0, 30, 1.0, "x"),
    ]
)
ORDER_CONS = {"bounds": BOUNDS, "ordering": [{"items": ["A", "B"], "min_step_pct": 10}]}


def test_ordering_conflict_keeps_the_chain_in_its_market_only() -> None:
    with pytest.raises(InfeasibleError, match="B/US needs price >= 99.00"):
        optimize(ORDERED, ORDER_CONS)
    plan = optimize(ORDERED, ORDER_CONS, conflicts="keep")
    us_chain = pl.col("item_id").is_in(["A", "B"]) & (pl.col("market") == "US")
    conflict, rest = split(plan.table, us_chain)
    kept(conflict, "ordering A < B (min_step_pct 10): B/US needs price >= 99.00")
    same_prices(rest, optimize(ORDERED.filter(~us_chain), ORDER_CONS).table)
    gb = {r["item_id"]: r["recommended_price"] for r in rest.iter_rows(named=True)}
    assert gb["B"] >= 1.1 * gb["A"] * (1 - 1e-9)


def test_a_frozen_group_can_make_the_next_one_conflict() -> None:
    """Before freezing, ordering C < D in the US holds (C >= 90, D >= 99, D <= 104.50). C/US
    is then kept for parity at 100, so D needs >= 110: the check repeats and keeps D/US too,
    naming the ordering."""
    d = pl.concat([PARITY, demand([("D", "US", 95, 10, -2.5, 40, 1.0, "x")])])
    cons = {
        "bounds": BOUNDS,
        "parity": {"max_gap_pct": 5},
        "ordering": [{"items": ["C", "D"], "min_step_pct": 10}],
    }
    plan = optimize(d, cons, conflicts="keep")
    t = {(r["item_id"], r["market"]): r for r in plan.table.iter_rows(named=True)}
    assert t[("C", "US")]["reason"].startswith("C: parity max_gap_pct 5")
    with pytest.raises(InfeasibleError) as err:
        optimize(d, cons)
    assert "parity" in str(err.value) and "ordering" not in str(err.value)
    assert t[("D", "US")]["reason"] == (
        "ordering C < D (min_step_pct 10): D/US needs price >= 110.00 (1.1 x C/US at >= "
        "100.00) but max_increase_pct caps it at 104.50"
    )
    assert {k for k, r in t.items() if r["status"] == "conflict"} == {
        ("C", "US"),
        ("C", "GB"),
        ("D", "US"),
    }


def test_cli_lists_group_conflicts_and_exits_by_policy(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    path = tmp_path / "d.csv"
    PARITY.write_csv(path)
    cons = tmp_path / "c.yaml"
    cons.write_text(yaml.safe_dump({"bounds": BOUNDS, "parity": {"max_gap_pct": 5}}))
    out = tmp_path / "plan.csv"
    res = cli("optimize", "--demand", path, "--constraints", cons, "--output", out, "--json")
    assert res.exit_code == 1, res.stderr
    doc: dict[str, Any] = json.loads(res.stdout)
    assert [c["market"] for c in doc["conflicts"]] == ["US", "GB"]
    assert "plan written with 2 row(s) in conflict kept at their current price" in res.stderr
    assert "C/US: C: parity max_gap_pct 5" in res.stderr
    assert pl.read_csv(out)["status"].to_list().count("conflict") == 2
    ok = cli("optimize", "--demand", path, "--constraints", cons, "--allow-conflicts")
    assert ok.exit_code == 0, ok.stderr


LADDER = pl.DataFrame(
    {
        "item_id": ["A", "B", "IT-7", "L"],
        "market": ["US", "US", "JP", "US"],
        "elasticity": [-2.0, -3.0, -2.0, -2.5],
        "base_price": [100.0, 50.0, 181.0, 102.0],
        "base_quantity": [10.0, 20.0, 5.0, 8.0],
        "unit_cost": [40.0, 30.0, 126.0, 50.0],
    }
)
LADDER_CONS = {
    "bounds": {"max_increase_pct": 10, "max_decrease_pct": 50},
    "min_margin_pct": 40,
    "ladder": {"step": 5},
    "overrides": [
        {"where": {"item_id": "L"}, "bounds": {"max_increase_pct": 1, "max_decrease_pct": 1}}
    ],
}


def test_ladder_rows_in_conflict_are_kept_off_the_ladder() -> None:
    """IT-7's margin floor conflicts with its cap and its current price 181 is no ladder point;
    L's +-1% leaves no multiple of 5 between 100.98 and 103.02. Both stay at their current
    price; A and B are the ladder plan without them."""
    with pytest.raises(InfeasibleError, match="L/US: ladder"):
        optimize(LADDER.filter(pl.col("item_id") != "IT-7"), LADDER_CONS)
    plan = optimize(LADDER, LADDER_CONS, conflicts="keep")
    t = {r["item_id"]: r for r in plan.table.iter_rows(named=True)}
    assert t["L"]["reason"] == (
        "ladder (points every 5) has no price between 100.98 (max_decrease_pct) and "
        "103.02 (max_increase_pct)"
    )
    assert t["IT-7"]["reason"].startswith("min_margin_pct 40 needs price >= 210.00")
    conflict, rest = split(plan.table, pl.col("item_id").is_in(["L", "IT-7"]))
    kept(conflict, "")
    reference = optimize(LADDER.filter(pl.col("item_id").is_in(["A", "B"])), LADDER_CONS).table
    same_prices(rest, reference)
    assert (rest["recommended_price"] % 5 == 0).all()
