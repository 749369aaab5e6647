"""examples/databricks/pipeline_job.json against the Databricks SDK's job model and the CLI."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer

from pricelab.cli.app import app
from pricelab.urls import SECRET_ENV

REPO = Path(__file__).resolve().parents[1]
JOB = REPO / "examples" / "databricks" / "pipeline_job.json"

jobs = pytest.importorskip("databricks.sdk.service.jobs", reason="needs databricks-sdk")


def _job() -> dict[str, Any]:
    return json.loads(JOB.read_text())


def test_job_round_trips_through_the_sdk_job_settings_model() -> None:
    doc = _job()
    assert jobs.JobSettings.from_dict(doc).as_dict() == doc  # every field known to the API
    typo = _job()
    typo["tasks"][0]["python_wheel_task"]["entrypoint"] = "pricelab"
    assert jobs.JobSettings.from_dict(typo).as_dict() != typo


def _command(task: dict[str, Any], params: dict[str, str]) -> list[str]:
    wheel = task["python_wheel_task"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert wheel["package_name"] == "pricelab" and wheel["entry_point"] in scripts
    args = [
        re.sub(r"\{\{job\.parameters\.(\w+)\}\}", lambda m: params[m.group(1)], a)
        for a in wheel["parameters"]
    ]
    assert "{{" not in " ".join(args)
    return args


def test_the_task_runs_the_pipeline_on_the_spark_engine() -> None:
    job = _job()
    params = {p["name"]: p["default"] for p in job["parameters"]}
    (task,) = job["tasks"]
    args = _command(task, params)
    assert args[:2] == ["pipeline", "run"]
    assert args[args.index("--engine") + 1] == "spark"
    assert args[args.index("--config") + 1] == params["config"] and "--json" in args
    group = typer.main.get_command(app)
    ctx = group.context_class(group)
    name, cmd, rest = group.resolve_command(ctx, args)
    while hasattr(cmd, "resolve_command"):
        name, cmd, rest = cmd.resolve_command(cmd.context_class(cmd, parent=ctx), rest)
    got = cmd.make_context(name, list(rest)).params
    assert got["engine"] == "spark" and str(got["config"]) == params["config"]
    assert job["max_concurrent_runs"] == 1  # one DuckDB writer


def test_cloud_extras_and_credentials() -> None:
    job = _job()
    (task,) = job["tasks"]
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    azure = {re.split(r"[<>=\[]", r)[0] for r in extras["azure"]}
    pypi = {
        re.split(r"[<>=\[]", lib["pypi"]["package"])[0]
        for lib in task["libraries"]
        if "pypi" in lib
    }
    assert pypi == azure  # the wheel cannot carry its extras on Databricks: listed one by one
    (cluster,) = job["job_clusters"]
    env = cluster["new_cluster"]["spark_env_vars"]
    secret_vars = [k for k in env if k in SECRET_ENV]
    assert secret_vars  # a storage key is configured...
    for k in secret_vars:  # ...only as a secret-scope reference, never a literal
        assert re.fullmatch(r"\{\{secrets/[\w-]+/[\w-]+\}\}", env[k]), k


@pytest.mark.parametrize("name", ["pipeline_job.json", "job.json"])
def test_transient_failures_are_retried_like_the_cronjob(name: str) -> None:
    """Exit 75 (storage unavailable) and 3 are retried as the CronJob (backoffLimit) and the
    Airflow DAG retry them: every task twice, minutes apart, never on a task timeout."""
    import yaml

    path = REPO / "examples" / "databricks" / name
    doc = json.loads(path.read_text())
    assert jobs.JobSettings.from_dict(doc).as_dict() == doc
    cron = yaml.safe_load((REPO / "deploy" / "cronjob.yaml").read_text())
    backoff = cron["spec"]["jobTemplate"]["spec"]["backoffLimit"]
    for task in jobs.JobSettings.from_dict(doc).tasks or []:
        assert task.max_retries == backoff, task.task_key
        assert (task.min_retry_interval_millis or 0) >= 60_000, task.task_key
        assert task.retry_on_timeout is False, task.task_key
    assert "75" in doc["description"] and "retried" in doc["description"]
