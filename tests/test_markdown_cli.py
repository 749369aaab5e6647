"""``pricelab markdown`` file mode on hand-written files: real CLI invocations."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import write_csv

DEMAND = """
item_id,market,week,base_quantity,elasticity,full_price,unit_cost,fx_rate,category
A,US,1,10,-2,100,40,1.1,shoes
A,US,2,8,-2,100,40,1.1,shoes
A,US,3,6,-2,100,40,1.1,shoes
A,US,4,4,-2,100,40,1.1,shoes
A,DE,1,6,-2.5,90,36,1.0,shoes
A,DE,2,5,-2.5,90,36,1.0,shoes
A,DE,3,4,-2.5,90,36,1.0,shoes
A,DE,4,3,-2.5,90,36,1.0,shoes
B,US,1,3,-1.5,200,80,1.1,bags
B,US,2,3,-1.5,200,80,1.1,bags
B,US,3,2,-1.5,200,80,1.1,bags
B,US,4,2,-1.5,200,80,1.1,bags
"""
STOCK = """
item_id,stock,market,salvage_value
A,60,,
B,25,US,20
"""
YAML = """
ladder: [0, 10, 20, 30, 40, 50]
monotone: true
min_weeks_between_changes: 2
salvage: {pct_of_cost: 30}
"""


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    return {
        "demand": write_csv(tmp_path / "demand.csv", DEMAND),
        "stock": write_csv(tmp_path / "stock.csv", STOCK),
        "constraints": write_csv(tmp_path / "markdown.yaml", YAML),
    }


def _args(files: dict[str, Path], *extra: object) -> list[object]:
    return [
        "markdown",
        "--demand",
        files["demand"],
        "--stock",
        files["stock"],
        "--constraints",
        files["constraints"],
        *extra,
    ]


def test_file_mode_writes_the_plan(cli, files, tmp_path: Path) -> None:
    out = tmp_path / "plan.csv"
    res = cli(*_args(files, "--output", out))
    assert res.exit_code == 0, res.stderr
    assert "proven gap" in res.stdout and "over-stocked" in res.stdout
    plan = pl.read_csv(out)
    assert plan.columns == [
        "item_id",
        "market",
        "week",
        "price",
        "discount_pct",
        "expected_units",
        "expected_revenue",
        "stock_left",
        "binding",
    ]
    assert plan.height == 12
    assert set(plan["discount_pct"].to_list()) <= {0, 10, 20, 30, 40, 50}
    for _, g in plan.group_by("item_id", "market"):
        g = g.sort("week")
        assert (g["discount_pct"].diff().drop_nulls() >= 0).all()  # never back up
        assert g["price"].to_list() == pytest.approx(
            (
                g["price"][0] / (1 - g["discount_pct"][0] / 100) * (1 - g["discount_pct"] / 100)
            ).to_list(),
            abs=0.01,
        )
    a_units = plan.filter(pl.col("item_id") == "A")["expected_units"].sum()
    b_units = plan.filter(pl.col("item_id") == "B")["expected_units"].sum()
    assert a_units <= 60 + 1e-6 and b_units <= 25 + 1e-6
    # B's stock is dedicated to US: its stock_left runs down by its own sales
    b = plan.filter(pl.col("item_id") == "B").sort("week")
    assert b["stock_left"][-1] == pytest.approx(25 - b_units, abs=1e-6)


def test_json_has_gap_and_comparisons(cli, files) -> None:
    res = cli(*_args(files, "--json"))
    assert res.exit_code == 0, res.stderr
    d = json.loads(res.stdout)
    assert d["gap"] <= 1e-4 and d["upper_bound"] >= d["value"] - 1e-6
    assert d["value"] >= d["value_keep_full_price"] and d["value"] >= d["value_simple_rule"]
    assert d["simple_rule"] == "30% off from mid-season"
    assert d["run_id"] is None


def test_stored_when_db_named(cli, files, tmp_path: Path) -> None:
    db = tmp_path / "md.duckdb"
    res = cli(*_args(files, "--db", db, "--json"))
    assert res.exit_code == 0, res.stderr
    run_id = json.loads(res.stdout)["run_id"]
    from pricelab.store import Store

    with Store.open(db) as store:
        rows = store.query(f"SELECT count(*) AS n FROM markdown_plans WHERE run_id = '{run_id}'")
        assert rows["n"][0] == 12


def test_missing_column_exit_2_names_file_and_column(cli, files) -> None:
    text = files["demand"].read_text().replace("elasticity", "elast")
    files["demand"].write_text(text)
    res = cli(*_args(files))
    assert res.exit_code == 2
    assert "demand.csv" in res.stderr and "elasticity" in res.stderr


def test_bad_value_names_row(cli, files) -> None:
    lines = files["demand"].read_text().splitlines()
    lines[3] = lines[3].replace(",6,-2,", ",-6,-2,")  # row 3: negative base quantity
    files["demand"].write_text("\n".join(lines) + "\n")
    res = cli(*_args(files))
    assert res.exit_code == 2
    assert "row 3" in res.stderr and "base_quantity" in res.stderr


def test_missing_stock_names_item(cli, files) -> None:
    files["stock"].write_text("item_id,stock\nA,60\n")
    res = cli(*_args(files))
    assert res.exit_code == 2 and "item B" in res.stderr


def test_unknown_yaml_key_exit_2(cli, files) -> None:
    files["constraints"].write_text("ladder: [0, 10]\nmonotonic: true\n")
    res = cli(*_args(files))
    assert res.exit_code == 2 and "monotone" in res.stderr


def test_infeasible_target_exit_1_names_category(cli, files) -> None:
    files["constraints"].write_text(
        YAML
        + "overrides:\n  category:\n    bags: {sell_through_min_pct: 100, max_discount_pct: 10}\n"
    )
    res = cli(*_args(files))
    assert res.exit_code == 1
    assert "bags" in res.stderr


def test_market_target_met_and_infeasible_one_exits_1_naming_the_market(cli, files) -> None:
    """overrides.market: DE must sell 90% of its share of A's shared stock (JSON names the
    target and its units); a target DE cannot reach even at 50% off from week 1 exits 1."""
    files["constraints"].write_text(
        YAML + "overrides:\n  market:\n    DE: {sell_through_min_pct: 90}\n"
    )
    res = cli(*_args(files, "--json"))
    assert res.exit_code == 0, res.stderr
    d = json.loads(res.stdout)
    t = [x for x in d["targets"] if x["category"] == "market DE"][0]
    assert t["units"] >= t["min_units"] - 1e-6 and t["multiplier"] >= 0
    assert d["upper_bound"] >= d["value"] - 1e-6
    files["stock"].write_text(STOCK.replace("A,60,,", "A,600,,"))
    files["constraints"].write_text(
        YAML + "overrides:\n  market:\n    DE: {sell_through_min_pct: 100}\n"
    )
    res = cli(*_args(files))
    assert res.exit_code == 1
    assert "market 'DE'" in res.stderr
