"""``pricelab demo`` end to end as a real process, from a folder outside the repository."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from pricelab.store import Store
from tests.conftest import run_subprocess


@pytest.fixture(scope="session")
def demo_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One ``pricelab demo --json`` run per session (a real process, outside the repository);
    the tests below read it or copy its database."""
    folder = tmp_path_factory.mktemp("demo")
    db = folder / "demo.duckdb"
    return db, run_subprocess("demo", "--db", db, "--json", cwd=folder)


def test_demo_runs_the_whole_pipeline(
    demo_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    db, proc = demo_run
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    steps = [s["step"] for s in doc["steps"]]
    assert steps == ["ingest", "validate", "estimate", "optimize", "simulate", "report", "monitor"]
    by = {s["step"]: s["summary"] for s in doc["steps"]}
    assert by["ingest"]["loaded"]["sales"] == 60462
    assert by["validate"]["errors"] == []
    assert by["optimize"]["status"] == "optimal" and by["optimize"]["uplift_pct"] > 0
    assert by["monitor"]["status"] == "ok"
    html = Path(by["report"]["output"])
    assert html.exists() and b"data:image/png;base64," in html.read_bytes()
    with Store.open(db, read_only=True) as store:
        commands = set(store.query("SELECT command FROM runs")["command"].to_list())
    assert {"ingest", "estimate", "optimize", "simulate"} <= commands


def test_demo_twice_on_the_same_database_is_fine(
    demo_run: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    # the session's demo run was the first; a copy of its database gets the second
    first, proc = demo_run
    assert proc.returncode == 0, proc.stderr
    db = tmp_path / "again.duckdb"
    shutil.copyfile(first, db)
    proc = run_subprocess("demo", "--db", db, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Try next:" in proc.stdout
    with Store.open(db, read_only=True) as store:
        n = store.query("SELECT command, count(*) AS n FROM runs GROUP BY command")
    counts = dict(zip(n["command"].to_list(), n["n"].to_list(), strict=True))
    assert counts["estimate"] >= 2 and counts["optimize"] >= 2  # both runs recorded
