"""The operations examples: nightly shell script, Airflow DAG helpers, Databricks job."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import typer

from pricelab.cli.app import app
from tests.conftest import write_csv

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
SAMPLE = REPO / "data" / "sample"
PIPELINE = ["ingest", "validate", "estimate", "optimize", "report", "monitor"]


def _nightly(tmp_path: Path, data_dir: Path | None, **env: str) -> subprocess.CompletedProcess[str]:
    full = {
        **os.environ,
        "PRICELAB": f"{sys.executable} -m pricelab",
        "PRICELAB_DB": str(tmp_path / "nightly.duckdb"),
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        **env,
    }
    full.pop("DATA_DIR", None)
    if data_dir is not None:
        full["DATA_DIR"] = str(data_dir)
    return subprocess.run(
        ["bash", str(EXAMPLES / "nightly.sh")],
        capture_output=True,
        text=True,
        env=full,
        cwd=tmp_path,
        timeout=600,
    )


def _started(stderr: str) -> list[str]:
    return re.findall(r"\] start (\w+)", stderr)


def test_nightly_script_is_strict_bash() -> None:
    text = (EXAMPLES / "nightly.sh").read_text()
    assert "set -euo pipefail" in text
    assert subprocess.run(["bash", "-n", str(EXAMPLES / "nightly.sh")]).returncode == 0
    if shutil.which("shellcheck"):
        assert subprocess.run(["shellcheck", str(EXAMPLES / "nightly.sh")]).returncode == 0


def test_nightly_stops_at_ingest_on_bad_input(tmp_path: Path) -> None:
    data = tmp_path / "in"
    data.mkdir()
    write_csv(
        data / "sales.csv",
        """
        item_id,market,date,price,quantity
        A,US,2024-01-01,-5,1""",
    )
    res = _nightly(tmp_path, data)
    assert res.returncode == 2
    assert _started(res.stderr) == ["ingest"]
    assert "FAILED ingest (exit 2); later steps not run" in res.stderr
    assert "column 'price': must be > 0" in res.stderr


def test_nightly_without_data_dir_is_exit_2(tmp_path: Path) -> None:
    res = _nightly(tmp_path, None)
    assert res.returncode == 2 and "set DATA_DIR" in res.stderr and _started(res.stderr) == []


@pytest.mark.slow
def test_nightly_full_pipeline_then_monitoring_alert(tmp_path: Path) -> None:
    cons = tmp_path / "c.yaml"
    cons.write_text(
        "objective: profit\nhorizon_weeks: 4\n"
        "bounds: {max_increase_pct: 15, max_decrease_pct: 20}\n"
    )
    report = tmp_path / "nightly.html"
    ok = _nightly(tmp_path, SAMPLE, CONSTRAINTS=str(cons), AS_OF="2025-12-29", REPORT=str(report))
    assert ok.returncode == 0, ok.stderr
    assert _started(ok.stderr) == PIPELINE and "nightly run complete" in ok.stderr
    html = report.read_text(encoding="utf-8")
    assert len(html) > 100_000 and html.count('<img src="data:image/png;base64,') == 5
    for sid in ("overview", "quality", "elasticities", "curves", "plan", "scenarios"):
        assert f'<section id="{sid}">' in html
    assert "No simulate run" in html  # the nightly job does not simulate
    late = _nightly(tmp_path, SAMPLE, CONSTRAINTS=str(cons), AS_OF="2026-02-01")
    assert late.returncode == 1
    assert _started(late.stderr) == [s for s in PIPELINE if s != "report"]
    assert "FAILED monitor (exit 1)" in late.stderr
    assert "monitoring alert: freshness" in late.stderr


# -- Airflow --------------------------------------------------------------------------------
def _load_dag() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "pricelab_airflow_dag", EXAMPLES / "airflow_dag.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while the file runs
    spec.loader.exec_module(mod)
    return mod


def _parses(args: list[str]) -> None:
    """The pricelab CLI accepts ``args`` (options and arguments parse; nothing runs)."""
    group = typer.main.get_command(app)
    # typer >= 0.29 ships its own click; use the command's own context class
    ctx = group.context_class(group)
    name, cmd, rest = group.resolve_command(ctx, args)
    while hasattr(cmd, "resolve_command"):
        sub = cmd.context_class(cmd, parent=ctx)
        name, cmd, rest = cmd.resolve_command(sub, rest)
    assert cmd is not None, args
    cmd.make_context(name, list(rest))


def test_airflow_dag_imports_without_airflow_and_its_steps_parse() -> None:
    dag = _load_dag()
    if not dag.AIRFLOW_AVAILABLE:
        assert dag.dag is None
    steps = dag.steps(as_of="2025-12-29")
    assert [s for s, _ in steps] == ["pipeline", "report"]
    for _, args in steps:
        _parses(args)


def test_airflow_exit_code_classification() -> None:
    dag = _load_dag()
    assert dag.classify(0).ok
    assert not dag.classify(1).retry and not dag.classify(2, "error: bad file").retry
    assert dag.classify(2, "error: x.duckdb: database is locked by another process").retry
    assert dag.classify(75, "error: s3://b/sales.csv: storage unavailable (read)").retry
    assert dag.classify(3).retry and dag.classify(137).retry


def test_airflow_run_step_on_the_real_cli(loaded_db: Path) -> None:
    dag = _load_dag()
    cmd = f"{sys.executable} -m pricelab"
    out = dag.run_step(
        ["monitor", "--db", str(loaded_db), "--as-of", "2024-03-10", "--json"], command=cmd
    )
    assert json.loads(out)["status"] == "ok"
    with pytest.raises(
        dag.AirflowFailException,
        match="monitor exit 1: a check failed.*monitoring alert: freshness",
    ):
        dag.run_step(["monitor", "--db", str(loaded_db), "--as-of", "2024-06-01"], command=cmd)
    with pytest.raises(dag.AirflowFailException, match="validate exit 2: bad usage or input"):
        dag.run_step(["validate", "--db", str(loaded_db.parent / "none.duckdb")], command=cmd)


# -- Databricks -----------------------------------------------------------------------------
def test_databricks_job_runs_the_pipeline_in_order_with_valid_arguments() -> None:
    job = json.loads((EXAMPLES / "databricks" / "job.json").read_text())
    tasks = {t["task_key"]: t for t in job["tasks"]}
    order, done = [], set()
    while len(order) < len(tasks):  # topological order from depends_on
        ready = [
            k
            for k, t in tasks.items()
            if k not in done and {d["task_key"] for d in t.get("depends_on", [])} <= done
        ]
        assert len(ready) == 1, ready  # a single chain
        order.append(ready[0])
        done.add(ready[0])
    assert order == PIPELINE
    params = {p["name"]: p["default"] for p in job["parameters"]}
    cluster_keys = {c["job_cluster_key"] for c in job["job_clusters"]}
    for t in job["tasks"]:
        wheel = t["python_wheel_task"]
        assert wheel["package_name"] == "pricelab" and wheel["entry_point"] == "pricelab"
        assert t["job_cluster_key"] in cluster_keys
        args = [
            re.sub(r"\{\{job\.parameters\.(\w+)\}\}", lambda m: params[m.group(1)], a).replace(
                "{{job.start_time.iso_date}}", "2025-12-29"
            )
            for a in wheel["parameters"]
        ]
        assert "{{" not in " ".join(args)
        assert args[0] == t["task_key"]
        _parses(args)
    assert job["max_concurrent_runs"] == 1


def test_databricks_job_tasks_run_on_the_sample(tmp_path: Path, cli) -> None:
    """Every task of examples/databricks/job.json, in order, with its own arguments, on a
    12-item cut of the sample written as the Parquet files the job reads."""
    import polars as pl

    job = json.loads((EXAMPLES / "databricks" / "job.json").read_text())
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    keep = sorted(pl.read_csv(SAMPLE / "sales.csv")["item_id"].unique())[:12]
    for kind in ("sales", "items", "costs", "inventory"):
        df = pl.read_csv(SAMPLE / f"{kind}.csv", try_parse_dates=True)
        df.filter(pl.col("item_id").is_in(keep)).write_parquet(incoming / f"{kind}.parquet")
    pl.read_csv(SAMPLE / "markets.csv").write_parquet(incoming / "markets.parquet")
    (tmp_path / "monitor.yaml").write_text("monitor:\n  freshness: {max_age_days: 14}\n")
    params = {
        "db": str(tmp_path / "pricelab.duckdb"),
        "data_dir": str(incoming),
        "constraints": str(SAMPLE / "constraints.yaml"),
        "monitor_config": str(tmp_path / "monitor.yaml"),
        "report": str(tmp_path / "pricelab-latest.html"),
    }
    assert set(params) == {p["name"] for p in job["parameters"]}
    outputs = {}
    for t in job["tasks"]:
        args = [
            re.sub(r"\{\{job\.parameters\.(\w+)\}\}", lambda m: params[m.group(1)], a).replace(
                "{{job.start_time.iso_date}}", "2025-12-29"
            )
            for a in t["python_wheel_task"]["parameters"]
        ]
        res = cli(*args)
        assert res.exit_code == 0, (t["task_key"], res.stdout[-2000:], res.stderr)
        outputs[t["task_key"]] = res.stdout
    assert list(outputs) == PIPELINE
    plan = json.loads(outputs["optimize"])
    assert plan["status"] in ("optimal", "optimal_inaccurate") and plan["rows"] > 0
    assert json.loads(outputs["monitor"])["status"] == "ok"
    assert (tmp_path / "pricelab-latest.html").stat().st_size > 50_000
