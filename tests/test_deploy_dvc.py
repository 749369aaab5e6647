"""examples/dvc: `dvc repro` for real in a temporary git repository (slow; needs dvc).

dvc is found as $PRICELAB_DVC or on PATH (``nox -s deploy`` installs it). Stages call the
``pricelab`` command, which the test puts on PATH for the interpreter running the tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml

from pricelab.optimize.plan import PLAN_COLUMNS

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _dvc() -> str:
    found = os.environ.get("PRICELAB_DVC") or shutil.which("dvc")
    if not found:
        pytest.skip("dvc not installed (pip install dvc, or set $PRICELAB_DVC)")
    return found


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A git + dvc repository with examples/dvc and data/sample at their usual places."""
    dvc = _dvc()
    root = tmp_path / "repo"
    shutil.copytree(REPO / "examples" / "dvc", root / "examples" / "dvc")
    shutil.copytree(REPO / "data" / "sample", root / "data" / "sample")
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "pricelab").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pricelab "$@"\n')
    (shim / "pricelab").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
        "DVC_NO_ANALYTICS": "1",
        "NO_COLOR": "1",
        "DVC_SITE_CACHE_DIR": str(tmp_path / "dvc-site"),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    for cmd in (
        ["git", "init", "-q"],
        [dvc, "init", "-q"],
        [dvc, "config", "core.analytics", "false"],
        [dvc, "config", "core.check_update", "false"],
    ):
        done = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    env["_DVC"] = dvc
    return root / "examples" / "dvc", env


def _repro(where: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [env["_DVC"], "repro", *args],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout + done.stderr


def _mtimes(build: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in build.iterdir() if p.is_file()}


def test_dvc_repro_runs_the_pipeline_once_then_does_nothing(
    project: tuple[Path, dict[str, str]],
) -> None:
    where, env = project
    out = _repro(where, env)
    for stage in ("ingest", "estimate", "optimize"):
        assert f"Running stage '{stage}'" in out
    build = where / "build"
    lock = yaml.safe_load((where / "dvc.lock").read_text())
    assert set(lock["stages"]) == {"ingest", "estimate", "optimize"}
    assert lock["stages"]["estimate"]["params"]["params.yaml"] == {"estimate.model": "hierarchical"}

    # outputs: every item x market of the sample gets a plan row within the constraint bounds
    sales = pl.read_csv(REPO / "data" / "sample" / "sales.csv")
    groups = sales.select("item_id", "market").unique()
    plan = pl.read_csv(build / "plan.csv")
    assert set(PLAN_COLUMNS) <= set(plan.columns), plan.columns
    # every group is planned or skipped with a reason, as the optimize stage's database says
    # (skipped rows live in the plan only: status 'skipped', no separate table)
    with duckdb.connect(str(build / "optimize.duckdb"), read_only=True) as con:
        skipped = con.sql("SELECT item_id, market FROM plans WHERE status = 'skipped'").pl()
        assert "plan_skipped" not in con.sql("SHOW TABLES").pl()["name"].to_list()
        stored = con.sql("SELECT count(*) AS n FROM plans").pl()["n"][0]
    assert stored == plan.height
    # skipped rows stay in the plan at their current price (status 'skipped', with a reason)
    keys = ["item_id", "market"]
    assert plan.height == groups.height
    assert plan.select(keys).sort(keys).equals(groups.sort(keys))
    in_plan = plan.filter(pl.col("status") == "skipped").select(keys)
    assert in_plan.sort(keys).equals(skipped.sort(keys))
    optimized = plan.filter(pl.col("status") == "optimized")
    ratio = plan["recommended_price"] / plan["current_price"]
    assert ratio.min() >= 0.80 - 1e-6 and ratio.max() <= 1.15 + 1e-6  # constraints.yaml bounds
    # elasticities against the sample's known truth (the generator's own values)
    est = pl.read_csv(build / "elasticities.csv").select("item_id", "market", "elasticity")
    truth = pl.read_csv(REPO / "data" / "sample" / "true_elasticities.csv").select(
        "item_id", "market", pl.col("elasticity").alias("truth")
    )
    both = est.join(truth, on=["item_id", "market"]).drop_nulls()
    assert both.height >= optimized.height
    assert both.select(pl.corr("elasticity", "truth")).item() > 0.5
    assert abs(both["elasticity"].median() - both["truth"].median()) < 0.5

    # a second repro changes nothing: no stage runs, no file is rewritten, the lock is the same
    before, lock_text = _mtimes(build), (where / "dvc.lock").read_text()
    out = _repro(where, env)
    assert "Running stage" not in out
    assert "Data and pipelines are up to date." in out
    assert _mtimes(build) == before and (where / "dvc.lock").read_text() == lock_text

    # a changed parameter reruns only the stages after it
    params = yaml.safe_load((where / "params.yaml").read_text())
    params["estimate"]["model"] = "ols"
    (where / "params.yaml").write_text(yaml.safe_dump(params))
    out = _repro(where, env)
    assert "Running stage 'ingest'" not in out
    assert "Running stage 'estimate'" in out and "Running stage 'optimize'" in out
    after = _mtimes(build)
    assert after["ingest.duckdb"] == before["ingest.duckdb"]
    assert after["plan.csv"] != before["plan.csv"]
