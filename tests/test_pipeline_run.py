"""``pricelab pipeline run``: end to end on the sample, idempotent reruns, failing steps."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from pricelab import api
from pricelab.pipeline import STEPS
from pricelab.store import Store
from tests.conftest import CliResult, assert_same, snapshot

STEP_KEYS = {"step", "status", "run_id", "new_run", "exit_code", "message", "details"}
TOP_KEYS = {
    "run_id",
    "db",
    "exit_code",
    "status",
    "changed",
    "failed_step",
    "production_run",
    "message",
    "steps",
}


def _config(folder: Path, path: Path, **sections: Any) -> Path:
    import yaml

    doc: dict[str, Any] = {
        "inputs": {"folder": str(folder)},
        "optimize": {"constraints": "@sample/constraints.yaml"},
        "monitor": {"as_of": "data"},
    }
    for key, value in sections.items():
        doc.setdefault(key, {}).update(value)
    path.write_text(yaml.safe_dump(doc))
    return path


def _run(cli: Callable[..., CliResult], config: Path, db: Path) -> tuple[int, dict[str, Any]]:
    res = cli("pipeline", "run", "--config", config, "--db", db, "--json")
    doc = json.loads(res.stdout)
    assert set(doc) == TOP_KEYS and [s["step"] for s in doc["steps"]] == list(STEPS)
    assert all(set(s) == STEP_KEYS for s in doc["steps"])
    assert doc["exit_code"] == res.exit_code
    return res.exit_code, doc


def _status(doc: dict[str, Any]) -> dict[str, str]:
    return {s["step"]: s["status"] for s in doc["steps"]}


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, dict[str, Any]]:
    """The sample copied to a folder and run once through the pipeline (in-process CLI)."""
    from typer.testing import CliRunner

    from pricelab.cli.app import app

    d = tmp_path_factory.mktemp("pipe")
    folder = d / "inputs"
    folder.mkdir()
    for path in api.sample_files().values():
        shutil.copy(path, folder / path.name)
    config = _config(folder, d / "pipeline.yaml")
    db = d / "first.duckdb"
    res = CliRunner().invoke(
        app,
        ["pipeline", "run", "--config", str(config), "--db", str(db), "--json"],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.stderr
    return folder, config, db, json.loads(res.stdout)


def test_end_to_end_on_sample(sample_run: tuple[Path, Path, Path, dict[str, Any]]) -> None:
    _, _, db, doc = sample_run
    assert doc["exit_code"] == 0 and doc["status"] == "ok" and doc["changed"] is True
    assert _status(doc) == dict.fromkeys(STEPS, "ok")
    ids = {s["step"]: s["run_id"] for s in doc["steps"]}
    pipe = api.run(db, doc["run_id"])
    assert pipe["command"] == "pipeline" and pipe["status"] == "ok"
    assert pipe["parents"] == [ids[s] for s in STEPS]
    commands = {s: api.run(db, ids[s])["command"] for s in STEPS}
    assert commands == {
        "ingest": "ingest",
        "validate": "validate",
        "estimate": "estimate",
        "backtest": "gate-backtest",
        "promote": "promote",
        "optimize": "optimize",
        "monitor": "monitor",
    }
    # the first promotion beat the naive forecast; the plan uses the production estimates
    assert doc["production_run"] == ids["estimate"]
    checks = doc["steps"][3]["details"]["checks"]
    assert [c["check"] for c in checks] == ["grain", "wape"] and all(c["passed"] for c in checks)
    assert api.run(db, ids["optimize"])["parents"] == [ids["estimate"]]
    assert api.run(db, ids["promote"])["parents"] == [ids["backtest"], ids["estimate"]]


def test_second_run_does_nothing_new(
    cli: Callable[..., CliResult],
    tmp_path: Path,
    sample_run: tuple[Path, Path, Path, dict[str, Any]],
) -> None:
    _, config, first, _ = sample_run
    db = tmp_path / "again.duckdb"
    shutil.copy(first, db)
    before = snapshot(db)
    code, doc = _run(cli, config, db)
    assert code == 0 and doc["changed"] is False and doc["run_id"] is None
    assert doc["message"] == "nothing new: inputs, estimates and plan are up to date"
    assert _status(doc) == {**dict.fromkeys(STEPS, "skipped"), "monitor": "ok"}
    assert "unchanged since ingest run" in doc["steps"][0]["message"]
    assert "already fits these inputs" in doc["steps"][2]["message"]
    assert_same(before, snapshot(db))
    text = cli("pipeline", "run", "--config", config, "--db", db)
    assert text.exit_code == 0 and "nothing new" in text.stdout
    out = tmp_path / "steps.csv"
    res = cli("pipeline", "run", "--config", config, "--db", db, "--output", out)
    assert res.exit_code == 0, res.stderr
    steps = pl.read_csv(out)
    assert steps.columns == ["step", "status", "run_id", "message"]
    assert steps["step"].to_list() == [s["step"] for s in doc["steps"]]


def test_bad_input_file_stops_with_exit_2_and_changes_nothing(
    cli: Callable[..., CliResult],
    tmp_path: Path,
    sample_run: tuple[Path, Path, Path, dict[str, Any]],
) -> None:
    folder, _, first, _ = sample_run
    bad = tmp_path / "inputs"
    shutil.copytree(folder, bad)
    with (bad / "sales.csv").open("a") as fh:
        fh.write("IT0001,US,2026-01-05,-5,3,0,400\n")
    config = _config(bad, tmp_path / "bad.yaml")
    db = tmp_path / "bad.duckdb"
    shutil.copy(first, db)
    before = snapshot(db)
    code, doc = _run(cli, config, db)
    assert code == 2 and doc["status"] == "failed" and doc["failed_step"] == "ingest"
    assert _status(doc) == {"ingest": "failed", **dict.fromkeys(STEPS[1:], "not-run")}
    assert "price" in doc["steps"][0]["message"] and doc["steps"][0]["exit_code"] == 2
    assert doc["run_id"] is None
    assert_same(before, snapshot(db))
    res = cli("pipeline", "run", "--config", config, "--db", db)
    assert res.exit_code == 2 and "error: pipeline stopped at ingest (exit 2)" in res.stderr


def test_new_data_reruns_the_chain(
    cli: Callable[..., CliResult],
    tmp_path: Path,
    sample_run: tuple[Path, Path, Path, dict[str, Any]],
) -> None:
    folder, _, first, doc1 = sample_run
    new = tmp_path / "inputs"
    shutil.copytree(folder, new)
    lines = (new / "sales.csv").read_text().splitlines()
    head, *rows = lines
    last = max(r.split(",")[2] for r in rows)

    i = next(i for i, r in enumerate(rows) if r.split(",")[2] == last)
    c = rows[i].split(",")
    rows[i] = ",".join([*c[:4], str(int(c[4]) + 1), *c[5:]])  # one late-reported unit
    (new / "sales.csv").write_text("\n".join([head, *rows]) + "\n")
    db = tmp_path / "new.duckdb"
    shutil.copy(first, db)
    code, doc = _run(cli, _config(new, tmp_path / "new.yaml"), db)
    st = _status(doc)
    assert code == 0 and doc["changed"] is True, doc["message"]
    assert st["ingest"] == "ok" and st["validate"] == "ok" and st["estimate"] == "ok"
    assert doc["steps"][0]["details"]["loaded"] == {"sales": len(rows)}  # only the changed file
    assert st["backtest"] == "ok" and st["promote"] in ("ok", "refused")
    assert doc["steps"][3]["details"]["production"] == doc1["production_run"]
    assert st["optimize"] == "ok" and st["monitor"] == "ok"
    assert api.run(db, doc["steps"][5]["run_id"])["parents"] == [doc["production_run"]]


def test_config_errors(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    cases = {
        "estimat: {model: ols}\n": "line 1: estimat: unknown key 'estimat'; did you mean 'estimate'?",
        "gate: {tolerance_flag: 3}\n": "line 1: gate.tolerance_flag: unknown key "
        "'tolerance_flag'; did you mean 'tolerance_flags'?",
        "gate: {cutoffs: 0}\n": "line 1: gate.cutoffs: expected a whole number >= 1, got 0",
        "estimate: {model: xgboost}\n": "line 1: estimate.model: expected one of ols, "
        "poisson, panel, hierarchical, iv, got 'xgboost'",
        "estimate: {model: cross}\n": "line 1: estimate.model: a cross-price model is not a "
        "per-group fitter: each item's regression needs its siblings' prices",
        "inputs: {files: {sale: a.csv}}\n": "line 1: inputs.files.sale: unknown key 'sale'; "
        "did you mean 'sales'?",
        "monitor: {thresholds: {drift: {max_shar: 1}}}\n": "line 1: monitor.thresholds.drift.max_shar: unknown key 'max_shar'; "
        "did you mean 'max_share'?",
        "estimate: [1\n": "line 2, column 1: YAML syntax error: the list opened on line 1 is "
        "not closed: expected ',' or ']'",
    }
    for text, message in cases.items():
        path = tmp_path / "c.yaml"
        path.write_text(text)
        res = cli("pipeline", "run", "--config", path, "--db", tmp_path / "x.duckdb")
        assert res.exit_code == 2, text
        assert res.stderr.startswith(f"error: {path}, {message}"), (text, res.stderr)
    assert not (tmp_path / "x.duckdb").exists()
    res = cli("pipeline", "run", "--config", tmp_path / "missing.yaml")
    assert res.exit_code == 2 and "pipeline config not found" in res.stderr


def test_example_config_is_valid(cli: Callable[..., CliResult]) -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "pipeline.yaml"
    res = cli("pipeline", "check", "--config", example, "--json")
    assert res.exit_code == 0, res.stderr
    doc = json.loads(res.stdout)
    assert set(doc["files"]) == {"sales", "items", "costs", "markets", "inventory"}
    assert doc["config"]["gate"]["min_improvement_wape"] == 1.0
    assert doc["config"]["estimate"]["model"] == "hierarchical"


def test_validate_and_monitor_runs_are_recorded(
    sample_run: tuple[Path, Path, Path, dict[str, Any]],
) -> None:
    db = sample_run[2]
    with Store.open(db, read_only=True) as store:
        rows = store.execute(
            "SELECT command, status FROM runs WHERE command IN "
            "('validate', 'monitor') ORDER BY command"
        )
    assert rows == [("monitor", "ok"), ("validate", "ok")]


def test_plan_exported_to_a_path_or_url(
    cli: Callable[..., CliResult],
    tmp_path: Path,
    sample_run: tuple[Path, Path, Path, dict[str, Any]],
) -> None:
    """optimize.output: the production plan is written every run (new or reused plan)."""
    import polars as pl

    fsspec = pytest.importorskip("fsspec")
    folder, _, first, doc1 = sample_run
    db = tmp_path / "export.duckdb"
    shutil.copy(first, db)
    for target in (tmp_path / "out" / "plan.parquet", "memory://exports/plan.csv"):
        if isinstance(target, Path):
            target.parent.mkdir()
        config = _config(folder, tmp_path / "e.yaml", optimize={"output": str(target)})
        code, doc = _run(cli, config, db)
        step = doc["steps"][5]
        assert code == 0 and step["status"] == "skipped"  # the plan on production is reused
        assert step["details"]["output"] == str(target) and "plan written to" in step["message"]
        if isinstance(target, Path):
            plan = pl.read_parquet(target)
        else:
            with fsspec.open(str(target), "rb") as fh:
                plan = pl.read_csv(fh.read())
        stored = api.run(db, doc1["steps"][5]["run_id"])
        assert plan.height == stored["summary"]["rows"] == step["details"]["exported_rows"]
        assert {"item_id", "market", "recommended_price", "status"} <= set(plan.columns)
