"""Partial plans: rows whose own constraints conflict stay at their current price."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from pricelab.errors import InfeasibleError
from pricelab.optimize import optimize
from tests.conftest import CliResult
from tests.test_pipeline_run import sample_run  # noqa: F401 - module fixture

DEMAND = pl.DataFrame(
    {
        "item_id": ["A", "B", "IT-7"],
        "market": ["US", "US", "JP"],
        "elasticity": [-2.0, -3.0, -2.0],
        "base_price": [100.0, 50.0, 180.0],
        "base_quantity": [10.0, 20.0, 5.0],
        "unit_cost": [40.0, 30.0, 126.0],
    }
)
CONS = {"bounds": {"max_increase_pct": 10, "max_decrease_pct": 50}, "min_margin_pct": 40}


def test_conflicting_row_kept_others_at_the_closed_form() -> None:
    with pytest.raises(InfeasibleError, match="IT-7/JP: min_margin_pct 40"):
        optimize(DEMAND, CONS)
    plan = optimize(DEMAND, CONS, conflicts="keep")
    t = {r["item_id"]: r for r in plan.table.iter_rows(named=True)}
    bad = t["IT-7"]
    assert bad["status"] == "conflict" and bad["binding"] == "conflict"
    assert bad["recommended_price"] == bad["current_price"] == 180.0
    assert (
        bad["reason"]
        == "min_margin_pct 40 needs price >= 210.00 but max_increase_pct 10 caps it at 198.00"
    )
    # the others: p* = c e / (1 + e) clipped to [lo, hi]; A: 80 within [66.67, 110];
    # B: 45 within [50 (margin 40%), 55] -> 50
    assert t["A"]["status"] == "optimized" and t["A"]["reason"] == ""
    assert t["A"]["recommended_price"] == pytest.approx(80.0, rel=1e-6)
    assert t["B"]["recommended_price"] == pytest.approx(50.0, rel=1e-6)
    assert plan.to_dict()["conflicts"] == [
        {"item_id": "IT-7", "market": "JP", "reason": bad["reason"]}
    ]
    assert "1 row(s) in conflict kept at current price: IT-7/JP" in plan.summary


def test_cli_exit_policy(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    demand = tmp_path / "d.csv"
    DEMAND.write_csv(demand)
    cons = tmp_path / "c.yaml"
    cons.write_text(yaml.safe_dump(CONS))
    out = tmp_path / "plan.csv"
    res = cli("optimize", "--demand", demand, "--constraints", cons, "--output", out, "--json")
    assert res.exit_code == 1
    doc = json.loads(res.stdout)  # one document: the plan, with its conflicts
    assert doc["rows"] == 3 and doc["conflicts"][0]["item_id"] == "IT-7"
    assert "plan written with 1 row(s) in conflict kept at their current price" in res.stderr
    assert "IT-7/JP: min_margin_pct 40 needs price >= 210.00" in res.stderr
    plan = pl.read_csv(out)
    assert plan["status"].to_list() == ["optimized", "optimized", "conflict"]
    ok = cli("optimize", "--demand", demand, "--constraints", cons, "--allow-conflicts")
    assert ok.exit_code == 0 and "1 row(s) in conflict kept at current price" in ok.stdout


def test_sample_with_the_old_configmap_constraints(
    cli: Callable[..., CliResult],
    tmp_path: Path,
    sample_run: tuple[Path, Path, Path, dict[str, Any]],  # noqa: F811
) -> None:
    """The constraints that made the container exit 1 on the sample (25% margin floor, 10%
    increase cap, stock limits): a plan for every row that can be priced, the rest named."""
    _, _, first, _ = sample_run
    db = tmp_path / "p.duckdb"
    shutil.copy(first, db)
    cons = tmp_path / "c.yaml"
    cons.write_text(
        "bounds: {max_increase_pct: 10, max_decrease_pct: 15}\nmin_margin_pct: 25\n"
        "inventory: true\n"
    )
    res = cli("optimize", "--db", db, "--constraints", cons, "--json", "--allow-conflicts")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert 10 <= len(doc["conflicts"]) < doc["rows"] / 10
    out = tmp_path / "plan.parquet"
    shown = cli("optimize", "--db", db, "--constraints", cons, "--output", out)
    assert shown.exit_code == 1 and "in conflict kept at their current price" in shown.stderr
    t = pl.read_parquet(out)
    conflict = t.filter(pl.col("status") == "conflict")
    assert conflict.height == len(doc["conflicts"])
    assert (conflict["recommended_price"] == conflict["current_price"]).all()
    assert conflict["reason"].str.contains("needs price >=").all()
    done = t.filter(pl.col("status") == "optimized")
    ratio = done["recommended_price"] / done["current_price"]
    assert ratio.max() <= 1.10 + 1e-6 and ratio.min() >= 0.85 - 1e-6


def test_pipeline_policy_is_a_config_key(
    cli: Callable[..., CliResult],
    tmp_path: Path,
    sample_run: tuple[Path, Path, Path, dict[str, Any]],  # noqa: F811
) -> None:
    folder, _, first, _ = sample_run
    db = tmp_path / "p.duckdb"
    shutil.copy(first, db)
    cons = tmp_path / "c.yaml"
    cons.write_text("bounds: {max_increase_pct: 10, max_decrease_pct: 15}\nmin_margin_pct: 25\n")

    def run(allow: bool) -> tuple[int, dict[str, Any]]:
        config = tmp_path / "p.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "inputs": {"folder": str(folder)},
                    "optimize": {"constraints": str(cons), "allow_conflicts": allow},
                    "monitor": {"as_of": "data"},
                }
            )
        )
        res = cli("pipeline", "run", "--config", config, "--db", db, "--json")
        return res.exit_code, json.loads(res.stdout)

    code, doc = run(False)
    step = next(s for s in doc["steps"] if s["step"] == "optimize")
    assert code == 1 and doc["failed_step"] == "optimize" and step["new_run"] is True
    assert "row(s) in conflict kept at their current price" in step["message"]
    assert "optimize.allow_conflicts" in step["message"]
    code, doc = run(False)  # the stored partial plan is reused and still reported
    assert code == 1 and "already uses production run" not in doc["message"]
    code, doc = run(True)
    assert code == 0 and doc["status"] == "ok", doc["message"]
