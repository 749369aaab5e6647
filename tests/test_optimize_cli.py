"""``pricelab optimize`` through the CLI: sample database, demand files, errors."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from pricelab._resources import sample_dir
from pricelab.store import Store
from tests.conftest import copy_db

TOL = 1e-6


@pytest.fixture(scope="module")
def est_db(tmp_path_factory: pytest.TempPathFactory, estimated_template: Path) -> Path:
    return copy_db(estimated_template, tmp_path_factory.mktemp("opt") / "sample.duckdb")


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_plan_on_sample_satisfies_every_constraint(cli, est_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "plan.csv"
    res = cli(
        "optimize",
        "--db",
        est_db,
        "--constraints",
        sample_dir() / "constraints.yaml",
        "--json",
        "--output",
        out,
    )
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["status"] == "optimal"
    everything = pl.read_csv(out)
    assert everything.height > 500
    # skipped rows stay in the plan at their current price, with the reason
    skipped = everything.filter(pl.col("status") == "skipped")
    assert (skipped["recommended_price"] == skipped["current_price"]).all()
    assert skipped.height == 0 or (skipped["reason"].str.len_chars() > 0).all()
    assert skipped.height == len(doc["skipped"])
    with Store.open(est_db, read_only=True) as store:  # stored once: in the plan
        assert not store.has_table("plan_skipped")
        stored = store.query("SELECT item_id FROM plans WHERE status = 'skipped'")
    assert stored.height == skipped.height
    plan = everything.filter(pl.col("status") == "optimized")  # the constraints hold here
    p, p0 = plan["recommended_price"], plan["current_price"]
    # bounds (15% up, 20% down) and margin floor 15%
    assert ((p <= p0 * 1.15 * (1 + TOL)) & (p >= p0 * 0.80 * (1 - TOL))).all()
    with Store.open(est_db, read_only=True) as s:
        demand = s.read_result("plans", doc["run_id"])
    assert demand.height == everything.height
    # parity: within each item, base-currency prices within 70% of each other
    base = plan.with_columns((pl.col("recommended_price") / pl.col("fx_rate")).alias("b"))
    spread = base.group_by("item_id").agg((pl.col("b").max() / pl.col("b").min()).alias("r"))
    assert (spread["r"] <= 1.70 * (1 + TOL)).all()
    # volume floor: total units >= 90% of baseline units
    assert plan["expected_quantity"].sum() >= 0.9 * plan["baseline_quantity"].sum() * (1 - TOL)
    # profit never below baseline at the optimum when the current prices are feasible-ish
    assert plan["expected_profit"].sum() >= plan["baseline_profit"].sum()
    assert doc["estimates_run"] is not None


def test_demand_file_from_outside_repo(cli, tmp_path: Path) -> None:
    demand = _write(
        tmp_path / "demand.csv",
        (
            "item_id,market,elasticity,base_price,base_quantity,unit_cost\n"
            "A,US,-2.0,100,10,40\n"
            "B,US,-3.0,50,20,30\n"
        ),
    )
    out = tmp_path / "plan.json"
    res = cli("optimize", "--demand", demand, "--output", out, "--json")
    assert res.exit_code == 0, res.stderr
    rows = {r["item_id"]: r for r in json.loads(out.read_text())}
    # unconstrained closed form p* = c e / (1 + e)
    assert rows["A"]["recommended_price"] == pytest.approx(40 * -2 / (1 - 2), rel=1e-6)
    assert rows["B"]["recommended_price"] == pytest.approx(30 * -3 / (1 - 3), rel=1e-6)
    assert not (tmp_path / "pricelab.duckdb").exists()


def test_infeasible_exits_1_naming_the_conflict(cli, tmp_path: Path) -> None:
    demand = _write(
        tmp_path / "d.csv",
        ("item_id,market,elasticity,base_price,base_quantity,unit_cost\nIT-7,JP,-2.0,180,5,126\n"),
    )
    cons = _write(tmp_path / "c.yaml", "bounds: {max_increase_pct: 10}\nmin_margin_pct: 40\n")
    res = cli("optimize", "--demand", demand, "--constraints", cons)
    assert res.exit_code == 1
    assert (
        "IT-7/JP: min_margin_pct 40 needs price >= 210.00 but max_increase_pct 10 caps it "
        "at 198.00" in res.stderr
    )


def test_bad_constraints_file(cli, tmp_path: Path) -> None:
    demand = _write(
        tmp_path / "d.csv",
        ("item_id,market,elasticity,base_price,base_quantity,unit_cost\nA,US,-2,100,10,40\n"),
    )
    typo = _write(tmp_path / "typo.yaml", "bounds:\n  max_increse_pct: 10\n")
    res = cli("optimize", "--demand", demand, "--constraints", typo)
    assert res.exit_code == 2
    assert "max_increse_pct" in res.stderr and "max_increase_pct" in res.stderr
    broken = _write(tmp_path / "broken.yaml", "bounds: [1, 2\n")
    res = cli("optimize", "--demand", demand, "--constraints", broken)
    assert res.exit_code == 2
    assert "broken.yaml" in res.stderr and "Traceback" not in res.stderr


def test_optimize_without_estimates(cli, tmp_path: Path, sample_template: Path) -> None:
    db = copy_db(sample_template, tmp_path / "x.duckdb")
    res = cli("optimize", "--db", db)
    assert res.exit_code == 2
    assert "no estimate run yet" in res.stderr
    res = cli("optimize", "--db", db, "--estimates", "nope")
    assert res.exit_code == 2
    assert "estimate run 'nope' not found" in res.stderr


def test_seasonality_option_reaches_the_plan(est_db: Path, cli) -> None:
    """--seasonality was parsed and dropped: 'bogus' passed and 'off' planned like 'auto'."""
    bad = cli("optimize", "--db", est_db, "--seasonality", "bogus", "--json")
    assert bad.exit_code == 2
    assert json.loads(bad.stdout)["error"].startswith("--seasonality must be one of")
    docs = {}
    for mode in ("auto", "off"):
        res = cli(
            "optimize",
            "--db",
            est_db,
            "--constraints",
            sample_dir() / "constraints.yaml",
            "--seasonality",
            mode,
            "--json",
        )
        assert res.exit_code == 0, res.stderr
        docs[mode] = json.loads(res.stdout)
    with Store.open(est_db, read_only=True) as store:
        params = {
            r[0]: json.loads(r[1])
            for r in store.execute(
                "SELECT run_id, parameters FROM runs WHERE command = 'optimize' ORDER BY started_at"
            )
        }
    assert params[docs["off"]["run_id"]]["seasonality"]["applied"] is False
    assert params[docs["auto"]["run_id"]]["seasonality"]["applied"] is True
