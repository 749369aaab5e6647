"""Airflow DAG: the nightly pricelab pipeline, then the HTML report.

``pipeline`` runs ``pricelab pipeline run --config CONFIG --json`` (ingest every input table the
config names -> validate -> estimate -> backtest -> promote if better -> optimize -> monitor; a
step with nothing new is skipped), then ``report`` writes the day's HTML report. Exit codes
(the pricelab contract) become Airflow outcomes:

====  ===============================================  =======================================
code  meaning                                          Airflow outcome
====  ===============================================  =======================================
0     success                                          task succeeds
1     a check failed (validation errors, infeasible    task fails, no retry
      plan, monitoring alert)                          (``AirflowFailException``)
2     bad usage or input (unreadable file, bad data)   task fails, no retry -- except "database
                                                       is locked", which is retried
3     internal error (rerun with --debug, report it)   task fails and is retried
75    storage temporarily unavailable (object storage  task fails and is retried (the DAG's
      unreachable or timing out, database locked)      ``retries`` with exponential backoff)
      anything else (killed, out of memory)            task fails and is retried
====  ===============================================  =======================================

The file imports without Airflow (the DAG is then ``None``), so its helpers can be tested and
reused by other schedulers. Settings come from the environment of the Airflow workers:
``PRICELAB_DB``, ``PRICELAB_PIPELINE_CONFIG`` (the pipeline YAML: inputs, model, gate,
constraints, monitor thresholds; see ``examples/pipeline.yaml``), ``PRICELAB_REPORT_DIR``.
Tested with ``airflow dags test pricelab_nightly`` on the bundled sample (``nox -s airflow``).
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass

try:  # Airflow is optional: without it this module still imports (dag = None)
    from airflow import DAG
    from airflow.exceptions import AirflowException, AirflowFailException

    try:
        from airflow.providers.standard.operators.python import PythonOperator  # Airflow 3
    except ImportError:
        from airflow.operators.python import PythonOperator  # Airflow 2
    AIRFLOW_AVAILABLE = True
except ImportError:
    AIRFLOW_AVAILABLE = False

    class AirflowException(Exception):  # type: ignore[no-redef]
        """Stand-in when Airflow is not installed: a failure that may be retried."""

    class AirflowFailException(AirflowException):  # type: ignore[no-redef]
        """Stand-in when Airflow is not installed: a failure that must not be retried."""


PRICELAB = os.environ.get("PRICELAB_COMMAND", f"{shlex.quote(sys.executable)} -m pricelab")
DB = os.environ.get("PRICELAB_DB", "/data/pricelab/pricelab.duckdb")
CONFIG = os.environ.get("PRICELAB_PIPELINE_CONFIG", "/data/pricelab/pipeline.yaml")
REPORT_DIR = os.environ.get("PRICELAB_REPORT_DIR", "/data/pricelab/reports")


@dataclass(frozen=True)
class Outcome:
    """What a pricelab exit code means for the scheduler."""

    ok: bool
    retry: bool
    reason: str


def classify(returncode: int, stderr: str = "") -> Outcome:
    """Map a pricelab exit code (and its stderr) to success / fail / retry."""
    if returncode == 0:
        return Outcome(True, False, "success")
    if returncode == 1:
        return Outcome(False, False, "a check failed (validation, infeasible plan or alert)")
    if returncode == 2:
        if "database is locked" in stderr:
            return Outcome(False, True, "database locked by another process")
        return Outcome(False, False, "bad usage or input")
    if returncode == 75:
        return Outcome(False, True, "storage temporarily unavailable")
    if returncode == 3:
        return Outcome(False, True, "internal error")
    return Outcome(False, True, f"killed or crashed (exit {returncode})")


def steps(
    db: str = DB,
    config: str = CONFIG,
    report_dir: str = REPORT_DIR,
    as_of: str = "{{ ds }}",
) -> list[tuple[str, list[str]]]:
    """(task id, pricelab arguments) of the DAG, in order."""
    return [
        ("pipeline", ["pipeline", "run", "--config", config, "--db", db, "--json"]),
        ("report", ["report", "--db", db, "--output", f"{report_dir}/pricelab-{as_of}.html"]),
    ]


def run_step(args: list[str], command: str = PRICELAB, timeout: float = 3 * 3600) -> str:
    """Run ``pricelab ARGS``; return its stdout or raise the exception its exit code calls for.

    Raises
    ------
    AirflowFailException
        Exit 1 or 2: retrying cannot help (the message carries pricelab's error line).
    AirflowException
        Exit 3, a locked database, or a crash: Airflow retries per the task's ``retries``.
    """
    proc = subprocess.run(
        [*shlex.split(command), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    outcome = classify(proc.returncode, proc.stderr)
    if outcome.ok:
        return proc.stdout
    first = (proc.stderr.strip().splitlines() or [""])[0]
    message = f"pricelab {args[0]} exit {proc.returncode}: {outcome.reason}: {first}"
    raise (AirflowException if outcome.retry else AirflowFailException)(message)


def build_dag():  # noqa: ANN201 - returns an airflow DAG
    """The nightly DAG (needs Airflow)."""
    with DAG(
        dag_id="pricelab_nightly",
        description="pricelab pipeline run (ingest ... optimize, monitor), then the report",
        schedule="0 3 * * *",
        start_date=dt.datetime(2024, 1, 1),
        catchup=False,
        max_active_runs=1,  # one writer per DuckDB file
        default_args={
            "retries": 3,  # exit 75 (storage unavailable), 3 and crashes; 1 and 2 fail at once
            "retry_delay": dt.timedelta(minutes=5),
            "retry_exponential_backoff": True,
            "max_retry_delay": dt.timedelta(minutes=40),
        },
        tags=["pricelab"],
    ) as nightly:
        previous = None
        for task_id, args in steps():
            task = PythonOperator(
                task_id=task_id, python_callable=run_step, op_kwargs={"args": args}
            )  # op_kwargs is templated: {{ ds }}
            if previous is not None:
                previous >> task
            previous = task
    return nightly


dag = build_dag() if AIRFLOW_AVAILABLE else None
