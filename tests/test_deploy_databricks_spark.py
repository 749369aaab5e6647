"""examples/databricks/pipeline_job.json run, not parsed: its one task's console-script
parameters (job parameters substituted: the shipped examples/pipeline.yaml as the config, a
fresh database) on the bundled sample, on a real local Spark session with the job cluster's
spark_conf and non-secret environment. The Spark estimates equal the local engine's."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from pricelab import api
from pricelab.pipeline import STEPS
from pricelab.store import Store
from tests.conftest import CliResult
from tests.test_engine_spark import PANDAS_WARNING, assert_same, spark  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
JOB = REPO / "examples" / "databricks" / "pipeline_job.json"

pytestmark = [pytest.mark.spark, pytest.mark.filterwarnings(PANDAS_WARNING)]


def test_pipeline_job_task_runs_on_the_sample(
    cli: Callable[..., CliResult],
    spark,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job = json.loads(JOB.read_text())
    (cluster,) = job["job_clusters"]
    for key, value in cluster["new_cluster"]["spark_conf"].items():
        spark.conf.set(key, value)
    for key, value in cluster["new_cluster"]["spark_env_vars"].items():
        if not value.startswith("{{secrets/"):  # secrets stay on Databricks
            monkeypatch.setenv(key, value)
    params = {p["name"]: p["default"] for p in job["parameters"]}
    params |= {"config": str(REPO / "examples" / "pipeline.yaml"), "db": str(tmp_path / "p.db")}
    (task,) = job["tasks"]
    args = [
        re.sub(r"\{\{job\.parameters\.(\w+)\}\}", lambda m: params[m.group(1)], a)
        for a in task["python_wheel_task"]["parameters"]
    ]
    res = cli(*args)
    assert res.exit_code == 0, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    assert doc["status"] == "ok" and [s["step"] for s in doc["steps"]] == list(STEPS)
    assert {s["step"]: s["status"] for s in doc["steps"]} == dict.fromkeys(STEPS, "ok")
    ids = {s["step"]: s["run_id"] for s in doc["steps"]}
    assert doc["production_run"] == ids["estimate"]
    run = api.run(tmp_path / "p.db", ids["estimate"])
    assert run["parameters"]["engine"] == "spark"
    local = api.estimate(tmp_path / "p.db", model=run["parameters"]["model"])
    with Store.open(tmp_path / "p.db", read_only=True) as s:
        remote = s.read_result("elasticities", ids["estimate"]).sort("item_id", "market")
    ref = local.elasticities.sort("item_id", "market")
    assert remote.height == ref.height == 616
    assert_same(ref, remote.select(ref.columns))
    plan = api.run(tmp_path / "p.db", ids["optimize"])["summary"]
    assert plan["rows"] >= 600 and not plan.get("conflicts")
    assert all(s["exit_code"] == 0 for s in doc["steps"])
