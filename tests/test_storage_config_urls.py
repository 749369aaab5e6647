"""Config and report files as fsspec URLs through the real CLI (memory://, no server needed):
constraints, scenario, monitor and pipeline configs read from a URL, the HTML report written
to one, and messages that name the URL (never its query string or secrets)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from pricelab.store import Store
from tests.conftest import CliResult
from tests.test_simulate_cli import GOOD
from tests.test_simulate_projection import make_db, reference_baseline

fsspec = pytest.importorskip("fsspec", reason="needs fsspec (any storage extra)")

Cli = Callable[..., CliResult]
LAST_WEEK = dt.date(2024, 3, 4)  # loaded_db: 10 weeks from 2024-01-01


def put(fs: object, path: str, text: str) -> str:
    """Store ``text`` at ``memory://{path}`` and return the URL."""
    fs.pipe(path, text.encode())  # type: ignore[attr-defined]
    return f"memory://{path.lstrip('/')}"


def test_constraints_file_from_a_url(cli: Cli, memfs: object, tmp_path: Path) -> None:
    demand = tmp_path / "demand.csv"
    demand.write_text(
        "item_id,market,elasticity,base_price,base_quantity,unit_cost\n"
        "A,US,-2.0,100,10,40\nB,US,-3.0,50,20,30\n"
    )
    # the query string stands for a SAS token: it must reach no message and no lineage
    url = put(memfs, "/t/c.yaml?sig=SECRET123", "bounds: {max_decrease_pct: 10}\n")
    db = tmp_path / "plans.duckdb"
    res = cli(
        "optimize",
        "--demand",
        demand,
        "--constraints",
        url,
        "--db",
        db,
        "--output",
        tmp_path / "plan.json",
        "--json",
    )
    assert res.exit_code == 0, res.stderr
    rows = {r["item_id"]: r for r in json.loads((tmp_path / "plan.json").read_text())}
    # closed form p* = c e / (1 + e): A's 80 is below the 10% floor (90), B's 45 is not
    assert rows["A"]["recommended_price"] == pytest.approx(90.0, rel=1e-6)
    assert rows["B"]["recommended_price"] == pytest.approx(45.0, rel=1e-6)
    with Store.open(db, read_only=True) as store:
        params = json.loads(store.query("SELECT parameters FROM runs")["parameters"][0])
    assert params["constraints"] == "memory://t/c.yaml"
    assert params["constraints_content"] == {"bounds": {"max_decrease_pct": 10}}
    assert "SECRET123" not in json.dumps(params) + res.stdout + res.stderr

    res = cli("optimize", "--demand", demand, "--constraints", "memory://t/none.yaml?sig=SECRET123")
    assert res.exit_code == 2
    assert res.stderr.strip() == "error: memory://t/none.yaml: constraints file not found"
    bad = put(memfs, "/t/typo.yaml", "bounds:\n  max_increse_pct: 10\n")
    res = cli("optimize", "--demand", demand, "--constraints", bad)
    assert res.exit_code == 2
    assert res.stderr.startswith("error: memory://t/typo.yaml, line 2: bounds.max_increse_pct")


def test_scenario_file_from_a_url(cli: Cli, memfs: object, tmp_path: Path) -> None:
    db, est = make_db(tmp_path)
    url = put(memfs, "/t/scenarios/s.yaml", GOOD)
    res = cli(
        "simulate",
        "--scenario",
        url,
        "--db",
        db,
        "--draws",
        0,
        "--output",
        tmp_path / "out.csv",
        "--json",
    )
    assert res.exit_code == 0, res.stderr
    out = pl.read_csv(tmp_path / "out.csv")
    fixed = out.filter(
        (pl.col("scenario") == "gb-fixed")
        & (pl.col("item_id") == "I2")
        & (pl.col("market") == "GB")
    )
    ref = reference_baseline(4).filter((pl.col("item_id") == "I2") & (pl.col("market") == "GB"))
    assert fixed["scenario_quantity"][0] == pytest.approx(
        3 * ref["q"][0] * (700 / ref["p"][0]) ** ref["elasticity"][0], rel=1e-12
    )
    run_id = json.loads(res.stdout)["run_id"]
    with Store.open(db, read_only=True) as store:
        params = store.query("SELECT parameters FROM runs WHERE run_id = ?", [run_id])
    assert json.loads(params["parameters"][0])["source"] == "memory://t/scenarios/s.yaml"

    res = cli("simulate", "--scenario", "memory://t/none.yaml", "--db", db)
    assert res.exit_code == 2
    assert res.stderr.strip() == "error: memory://t/none.yaml: scenario file not found"
    bad = put(memfs, "/t/bad.yaml", GOOD.replace("horizon_weeks", "horizon_wekks"))
    res = cli("simulate", "--scenario", bad, "--db", db)
    assert res.exit_code == 2
    assert res.stderr.strip() == (
        "error: memory://t/bad.yaml, line 2: horizon_wekks: unknown "
        "key 'horizon_wekks'; did you mean 'horizon_weeks'?"
    )


def _monitor(cli: Cli, db: Path, days: int, *args: object) -> tuple[int, dict]:
    res = cli(
        "monitor", "--db", db, "--json", "--as-of", LAST_WEEK + dt.timedelta(days=days), *args
    )
    return res.exit_code, json.loads(res.stdout)


def _freshness(doc: dict) -> dict:
    return next(c for c in doc["checks"] if c["name"] == "freshness")


def test_monitor_config_from_a_url(cli: Cli, memfs: object, loaded_db: Path) -> None:
    url = put(
        memfs, "/t/pricelab.yaml", "other: {x: 1}\nmonitor:\n  freshness:\n    max_age_days: 30\n"
    )
    code, doc = _monitor(cli, loaded_db, 30)
    assert code == 1 and _freshness(doc)["threshold"] == 14  # the default alerts at 30 days
    code, doc = _monitor(cli, loaded_db, 30, "--config", url)
    assert code == 0 and _freshness(doc)["threshold"] == 30
    code, doc = _monitor(cli, loaded_db, 31, "--config", url)
    assert code == 1 and _freshness(doc)["status"] == "alert"

    res = cli("monitor", "--db", loaded_db, "--config", "memory://t/none.yaml")
    assert res.exit_code == 2
    assert res.stderr.strip() == "error: memory://t/none.yaml: config file not found"
    bad = put(memfs, "/t/bad.yaml", "monitor:\n  freshness:\n    max_age: 3\n")
    res = cli("monitor", "--db", loaded_db, "--config", bad)
    assert res.exit_code == 2
    assert res.stderr.strip() == (
        "error: memory://t/bad.yaml, line 3: monitor.freshness.max_age: "
        "unknown key 'max_age'; did you mean 'max_age_days'?"
    )


def _undated(html: str) -> str:
    return re.sub(r"generated \d{4}-\d\d-\d\d \d\d:\d\d UTC", "generated (time)", html)


def test_report_written_to_a_url(cli: Cli, memfs: object, loaded_db: Path, tmp_path: Path) -> None:
    res = cli("report", "--db", loaded_db, "--output", tmp_path / "local.html")
    assert res.exit_code == 0, res.stderr
    url = "memory://t/out/report.html"
    res = cli("report", "--db", loaded_db, "--output", url)
    assert res.exit_code == 0, res.stderr
    assert f"wrote {url} (" in res.stdout
    written = memfs.cat("/t/out/report.html").decode()  # type: ignore[attr-defined]
    assert written.startswith("<!DOCTYPE html>")
    assert _undated(written) == _undated((tmp_path / "local.html").read_text())

    res = cli("report", "--db", loaded_db, "--output", url + "?sig=SECRET123", "--json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["output"] == url and doc["bytes"] == len(written.encode())
    assert "SECRET123" not in res.stdout + res.stderr
    res = cli("report", "--db", loaded_db, "--output", "memory://t/out/report.txt")
    assert res.exit_code == 2
    assert res.stderr.strip() == (
        "error: --output memory://t/out/report.txt: the report is HTML; use a .html file name"
    )


def test_pipeline_config_from_a_url(
    cli: Cli, memfs: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    put(memfs, "/t/p/data/sales.csv", "item_id,market,date,price,quantity\nA,US,2024-01-01,1,2\n")
    url = put(
        memfs,
        "/t/p/pipeline.yaml",
        "db: local.duckdb\ninputs: {folder: data}\noptimize: {constraints: c.yaml}\n",
    )
    res = cli("pipeline", "check", "--config", url, "--json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["files"] == {"sales": "memory://t/p/data/sales.csv"}
    assert doc["config"]["optimize"]["constraints"] == "memory://t/p/c.yaml"
    assert doc["db"] == str(tmp_path / "local.duckdb")  # the database stays a local file

    res = cli("pipeline", "check", "--config", "memory://t/p/none.yaml")
    assert res.exit_code == 2
    assert res.stderr.strip() == "error: memory://t/p/none.yaml: pipeline config not found"
    bad = put(memfs, "/t/p/bad.yaml", "estimate: [1\n")
    res = cli("pipeline", "check", "--config", bad)
    assert res.exit_code == 2
    assert res.stderr.strip() == (
        "error: memory://t/p/bad.yaml, line 2, column 1: YAML syntax error: the list opened on "
        "line 1 is not closed: expected ',' or ']'"
    )
