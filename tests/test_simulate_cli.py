"""simulate: scenario files (errors name key and line), the CLI, and applying stored plans."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from test_simulate_projection import make_db, reference_baseline, synthetic_sales

from pricelab import api
from pricelab.errors import ConfigError
from pricelab.simulate import load_scenario, simulate
from pricelab.store import Store, record_run

GOOD = """\
baseline_weeks: 4
horizon_weeks: 3
scenarios:
  - name: us-shoes-plus-5
    changes:
      - where: {market: US, category: shoes}
        price_change_pct: 5
  - name: gb-fixed
    changes:
      - where: {market: [GB], item_id: I2}
        price: 700
"""


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


#: (text in GOOD, replaced by, the error after the file name): exact messages
EDITS = [
    (
        "horizon_weeks",
        "horizon_week",
        ", line 2: horizon_week: unknown key 'horizon_week'; did you mean 'horizon_weeks'?",
    ),
    (
        "price_change_pct: 5",
        "price_chnge_pct: 5",
        ", line 7: scenarios.0.changes.0.price_chnge_pct: unknown key 'price_chnge_pct'; "
        "did you mean 'price_change_pct'?",
    ),
    (
        "{market: US, category: shoes}",
        "{markt: US}",
        ", line 6: scenarios.0.changes.0.where.markt: unknown key 'markt'; did you mean 'market'?",
    ),
    (
        "price_change_pct: 5",
        "price_change_pct: lots",
        ", line 7: scenarios.0.changes.0.price_change_pct: expected a number, got 'lots'",
    ),
    (
        "baseline_weeks: 4",
        "baseline_weeks: 2.5",
        ", line 1: baseline_weeks: expected a whole number of weeks from 1 to 520, got 2.5",
    ),
    (
        "        price: 700\n",
        "",
        ", line 10: scenarios.1.changes.0: each change needs exactly one of price_change_pct, "
        "price, plan_run (got none)",
    ),
    (
        "price: 700",
        "price: 700\n        price_change_pct: 3",
        ", line 10: scenarios.1.changes.0: each change needs exactly one of price_change_pct, "
        "price, plan_run (got price_change_pct, price)",
    ),
    (
        "gb-fixed",
        "us-shoes-plus-5",
        ", line 8: scenarios.1.name: duplicate scenario name 'us-shoes-plus-5'",
    ),
    (
        "price: 700",
        "price: -3",
        ", line 11: scenarios.1.changes.0.price: must be > 0, got -3",
    ),
    (
        "  - name: gb-fixed",
        "  - name: [gb",
        ", line 9, column 12: YAML syntax error: the list opened on line 8 is not closed: "
        "expected ',' or ']'",
    ),
]


@pytest.mark.parametrize("old, new, message", EDITS)
def test_bad_scenario_files_name_key_and_line(tmp_path, old, new, message):
    path = write(tmp_path, GOOD.replace(old, new))
    with pytest.raises(ConfigError) as err:
        load_scenario(path)
    assert str(err.value) == f"{path}{message}"


def test_good_file_parses_and_plan_shorthand(tmp_path):
    spec = load_scenario(write(tmp_path, GOOD + "  - name: plan\n    plan_run: latest\n"))
    assert (spec.baseline_weeks, spec.horizon_weeks) == (4, 3)
    assert [s.name for s in spec.scenarios] == ["us-shoes-plus-5", "gb-fixed", "plan"]
    c = spec.scenarios[1].changes[0]
    assert c.where == {"market": ("GB",), "item_id": ("I2",)} and c.value == 700.0
    assert spec.scenarios[2].changes[0].action == "plan_run"
    assert spec.plan_refs == ("latest",)


def test_cli_simulate_table_json_output(tmp_path, cli):
    db, est = make_db(tmp_path)
    path = write(tmp_path, GOOD)
    res = cli("simulate", "--scenario", path, "--db", db, "--output", tmp_path / "out.csv")
    assert res.exit_code == 0, res.stderr
    assert "us-shoes-plus-5" in res.stdout and "gb-fixed" in res.stdout
    assert "Change vs baseline by market and category" in res.stdout
    out = pl.read_csv(tmp_path / "out.csv")
    assert out.columns[:13] == [
        "scenario",
        "item_id",
        "market",
        "baseline_price",
        "scenario_price",
        "baseline_quantity",
        "scenario_quantity",
        "quantity_low",
        "quantity_high",
        "baseline_revenue",
        "scenario_revenue",
        "baseline_profit",
        "scenario_profit",
    ]
    assert out.height == 2 * 9
    fixed = out.filter(
        (pl.col("scenario") == "gb-fixed")
        & (pl.col("item_id") == "I2")
        & (pl.col("market") == "GB")
    )
    ref = reference_baseline(4).filter((pl.col("item_id") == "I2") & (pl.col("market") == "GB"))
    assert fixed["scenario_quantity"][0] == pytest.approx(
        3 * ref["q"][0] * (700 / ref["p"][0]) ** ref["elasticity"][0], rel=1e-12
    )
    js = cli("simulate", "--scenario", path, "--db", db, "--json", "--draws", 200)
    assert js.exit_code == 0, js.stderr
    doc = json.loads(js.stdout)
    assert doc["estimates_run"] == est and doc["draws"] == 200
    assert [t["scenario"] for t in doc["totals"]] == ["us-shoes-plus-5", "gb-fixed"]
    # --draws 0: the point path; same point totals, intervals null (valid JSON), no draws
    js0 = cli("simulate", "--scenario", path, "--db", db, "--json", "--draws", 0)
    assert js0.exit_code == 0, js0.stderr
    doc0 = json.loads(js0.stdout)
    assert doc0["draws"] == 0 and doc0["seasonality"]["applied"] is False
    for t0, t in zip(doc0["totals"], doc["totals"], strict=True):
        assert t0["scenario_revenue"] == t["scenario_revenue"]
        assert t0["revenue_low"] is None and t["revenue_low"] is not None
    txt = cli("simulate", "--scenario", path, "--db", db, "--draws", 0)
    assert txt.exit_code == 0 and "no intervals: --draws 0" in txt.stdout
    assert cli("simulate", "--scenario", path, "--db", db, "--draws", -1).exit_code == 2


def test_cli_bad_scenario_and_unknown_market_exit_2(tmp_path, cli):
    db, _ = make_db(tmp_path)
    before = api.runs(db).height
    bad = write(tmp_path, GOOD.replace("horizon_weeks", "horizon_wekks"), "bad.yaml")
    res = cli("simulate", "--scenario", bad, "--db", db)
    assert res.exit_code == 2
    assert res.stderr.strip() == (
        f"error: {bad}, line 2: horizon_wekks: unknown key "
        "'horizon_wekks'; did you mean 'horizon_weeks'?"
    )
    uk = write(tmp_path, GOOD.replace("market: [GB]", "market: [UK]"), "uk.yaml")
    res = cli("simulate", "--scenario", uk, "--db", db)
    assert res.exit_code == 2
    assert "unknown market 'UK'; known markets: DE, GB, US" in res.stderr
    assert "Traceback" not in res.stderr
    assert api.runs(db).height == before  # nothing recorded
    nomatch = write(tmp_path, GOOD.replace("category: shoes", "category: hats"), "nm.yaml")
    res = cli("simulate", "--scenario", nomatch, "--db", db)
    assert res.exit_code == 0
    assert (
        "warning: scenario 'us-shoes-plus-5' change 1, line 6 (where market=US, "
        "category=hats) matches no item × market" in " ".join(res.stderr.split())
    )


def _store_plan(db: Path, est: str, plan: pl.DataFrame) -> str:
    with Store.open(db) as store:
        run = record_run(store, "optimize", {"fixture": True}, parents=[est])
        with store.transaction():
            store.write_result("plans", plan, run.run_id)
            run.finish({})
    return run.run_id


def test_plan_application_reproduces_plan_quantities(tmp_path):
    """A plan made on the optimizer's baseline (last price, units moved to it) reproduces."""
    db, est = make_db(tmp_path)
    s = synthetic_sales()
    win = s.filter(pl.col("date") > s["date"].max() - pl.duration(weeks=4)).join(
        reference_baseline(4).select("item_id", "market", "elasticity"), on=["item_id", "market"]
    )
    cur = win.sort("date").group_by("item_id", "market").agg(pl.col("price").last().alias("p0"))
    base = (
        win.join(cur, on=["item_id", "market"])
        .group_by("item_id", "market")
        .agg(
            (pl.col("quantity") * (pl.col("p0") / pl.col("price")) ** pl.col("elasticity"))
            .mean()
            .alias("q0"),
            pl.col("p0").first(),
            pl.col("elasticity").first(),
        )
    )
    base = base.sort("item_id", "market").head(6)  # the plan covers 6 of the 9 rows
    rec = base["p0"] * (1 + 0.03 * (np.arange(6) - 2))
    plan = base.select("item_id", "market").with_columns(
        current_price=base["p0"],
        recommended_price=rec,
        expected_quantity=3 * base["q0"] * (rec / base["p0"]) ** base["elasticity"],
        baseline_quantity=3 * base["q0"],
        binding=pl.lit(""),
    )
    plan_run = _store_plan(db, est, plan)
    spec = {
        "baseline_weeks": 4,
        "horizon_weeks": 3,
        "baseline_price": "current",
        "scenarios": [
            {"name": "plan", "plan_run": "latest"},
            {
                "name": "plan-but-us",
                "changes": [
                    {"plan_run": plan_run},
                    {"where": {"market": "US"}, "price_change_pct": 0},
                ],
            },
        ],
    }
    with Store.open(db) as store:
        res = simulate(store, spec)
    got = res.table.filter(pl.col("scenario") == "plan").join(
        plan, on=["item_id", "market"], how="left"
    )
    inplan = got.filter(pl.col("expected_quantity").is_not_null())
    assert inplan.height == 6
    assert np.allclose(inplan["scenario_quantity"], inplan["expected_quantity"], rtol=1e-12, atol=0)
    assert np.allclose(inplan["baseline_quantity"], inplan["baseline_quantity_right"], rtol=1e-12)
    assert np.allclose(inplan["scenario_price"], inplan["recommended_price"], rtol=1e-14)
    rest = got.filter(pl.col("expected_quantity").is_null())
    assert (rest["scenario_price"] == rest["baseline_price"]).all()
    over = res.table.filter((pl.col("scenario") == "plan-but-us") & (pl.col("market") == "US"))
    assert (over["scenario_price"] == over["baseline_price"]).all()
    assert api.run(db, res.run_id)["parents"] == [est, plan_run]
    assert res.warnings == []
