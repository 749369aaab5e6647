"""examples/airflow_dag.py loaded by Airflow's own DagBag and RUN with ``airflow dags test``.

Airflow is heavy (about 300 MB), so it lives in its own environment: the test runs DagBag in
a subprocess of $PRICELAB_AIRFLOW_PYTHON (``nox -s airflow`` sets it), or of this interpreter
when Airflow is importable here; otherwise it skips.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
DAG_FILE = REPO / "examples" / "airflow_dag.py"
CHAIN = ["pipeline", "report"]

LOAD = """
import inspect, json, sys
try:
    from airflow.dag_processing.dagbag import DagBag   # Airflow 3
except ImportError:
    from airflow.models.dagbag import DagBag           # Airflow 2
kw = {"include_examples": False} if "include_examples" in inspect.signature(DagBag.__init__).parameters else {}
bag = DagBag(dag_folder=sys.argv[1], **kw)
print(json.dumps({
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "dags": {d: {"upstream": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks}}
             for d, dag in bag.dags.items()},
}))
"""


def _airflow_python() -> str:
    given = os.environ.get("PRICELAB_AIRFLOW_PYTHON")
    if given:
        return given
    if importlib.util.find_spec("airflow") is not None:
        return sys.executable
    pytest.skip("Airflow not installed (nox -s airflow, or set $PRICELAB_AIRFLOW_PYTHON)")


def _dagbag(path: Path, tmp_path: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(path.parent),
    }
    done = subprocess.run(
        [_airflow_python(), "-c", LOAD, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_dagbag_loads_the_dag_without_import_errors(tmp_path: Path) -> None:
    bag = _dagbag(DAG_FILE, tmp_path)
    assert bag["errors"] == {}
    (dag,) = bag["dags"].values()
    upstream = dag["upstream"]
    assert set(upstream) == set(CHAIN)
    for before, after in zip(CHAIN, CHAIN[1:], strict=False):
        assert upstream[after] == [before]
    assert upstream[CHAIN[0]] == []


def test_dagbag_reports_a_broken_dag(tmp_path: Path) -> None:
    """The same loader sees an error in a broken copy (so the test above can fail)."""
    broken = tmp_path / "dags" / "airflow_dag.py"
    broken.parent.mkdir()
    broken.write_text(DAG_FILE.read_text() + "\nraise RuntimeError('broken on purpose')\n")
    bag = _dagbag(broken, tmp_path)
    assert bag["dags"] == {}
    assert "broken on purpose" in " ".join(bag["errors"].values())


def test_airflow_dags_test_runs_the_dag_on_the_sample(tmp_path: Path) -> None:
    """``airflow dags test`` runs both tasks for real: the shipped pipeline config
    (examples/pipeline.yaml, the bundled sample) through the pricelab CLI, then the report."""
    python = _airflow_python()
    airflow = str(Path(python).parent / "airflow")
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "airflow_dag.py").write_text(DAG_FILE.read_text())
    db, reports = tmp_path / "state" / "pricelab.duckdb", tmp_path / "reports"
    db.parent.mkdir()
    reports.mkdir()
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "PRICELAB_DB": str(db),
        "PRICELAB_PIPELINE_CONFIG": str(REPO / "examples" / "pipeline.yaml"),
        "PRICELAB_REPORT_DIR": str(reports),
    }
    if "PRICELAB_AIRFLOW_PYTHON" not in os.environ:  # pricelab from this checkout
        env["PYTHONPATH"] = str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")
    for args in (["db", "migrate"], ["dags", "test", "pricelab_nightly", "2025-12-29"]):
        done = subprocess.run(
            [airflow, *args], capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    log = done.stdout + done.stderr
    finished = next(line for line in log.splitlines() if "DagRun Finished" in line)
    assert "dag_id=pricelab_nightly" in finished and "state=success" in finished, finished
    assert (reports / "pricelab-2025-12-29.html").stat().st_size > 100_000
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        pipe = con.execute("SELECT status, summary FROM runs WHERE command = 'pipeline'").fetchall()
        plans = con.execute("SELECT count(*) FROM plans").fetchone()
    assert len(pipe) == 1 and pipe[0][0] == "ok"
    steps = {s["step"]: s["status"] for s in json.loads(pipe[0][1])["steps"]}
    assert steps == dict.fromkeys(
        ["ingest", "validate", "estimate", "backtest", "promote", "optimize", "monitor"], "ok"
    )
    assert plans is not None and plans[0] > 500  # every table ingested: a plan for the sample
