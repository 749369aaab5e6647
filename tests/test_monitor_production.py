"""The monitor judges production (the registry), never an ad-hoc or refused estimate run."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import CliResult
from tests.test_pipeline_run import _run, _status, sample_run  # noqa: F401 - module fixture


def test_adhoc_estimate_does_not_alert_the_nightly_job(
    cli: Callable[..., CliResult],
    tmp_path: Path,
    sample_run: tuple[Path, Path, Path, dict[str, Any]],  # noqa: F811
) -> None:
    _, config, first, doc1 = sample_run
    db = tmp_path / "adhoc.duckdb"
    shutil.copy(first, db)
    production = doc1["production_run"]
    # an analyst's ad-hoc estimate: elasticities far from production's (ols vs hierarchical)
    res = cli("estimate", "--db", db, "--model", "ols", "--json")
    assert res.exit_code == 0, res.stderr
    adhoc = json.loads(res.stdout)["run_id"]
    mon = cli("monitor", "--db", db, "--json", "--as-of", "2025-12-29")
    doc = json.loads(mon.stdout)
    checks = {c["name"]: c for c in doc["checks"]}
    assert mon.exit_code == 0, mon.stdout
    assert checks["drift"]["status"] == "skipped"
    assert f"production run {production} is the first one promoted" in checks["drift"]["message"]
    assert checks["fit"]["details"]["run"] == production
    # the plan judged is production's (the pipeline's optimize run), never one on the ad-hoc run;
    # it was created after the as-of date, so its age there is not judged (skipped, said so)
    plan_run = next(s["run_id"] for s in doc1["steps"] if s["step"] == "optimize")
    assert checks["plan"]["details"]["plan_run"] == plan_run
    assert checks["plan"]["status"] == "skipped" and "after the as-of" in checks["plan"]["message"]
    # an ad-hoc plan on the ad-hoc estimates is not what production is judged on
    cli("optimize", "--db", db, "--estimates", adhoc)
    code, doc = _run(cli, config, db)
    assert code == 0, doc["message"]
    assert _status(doc)["monitor"] == "ok" and doc["production_run"] == production
    listed = json.loads(cli("runs", "list", "--db", db, "--json").stdout)
    assert adhoc in [r["run_id"] for r in listed]


def test_without_a_registry_the_two_newest_estimates_are_compared(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    db = tmp_path / "plain.duckdb"
    assert cli("demo", "--db", db).exit_code in (0, 1)
    for model in ("ols", "ols"):
        assert cli("estimate", "--db", db, "--model", model).exit_code == 0
    doc = json.loads(cli("monitor", "--db", db, "--json", "--as-of", "2025-12-29").stdout)
    drift = next(c for c in doc["checks"] if c["name"] == "drift")
    assert drift["status"] == "ok" and drift["value"] == 0.0
