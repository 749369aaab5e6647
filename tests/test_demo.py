"""``pricelab demo`` end to end as a real process, from a folder outside the repository."""

from __future__ import annotations

import json
from pathlib import Path

from pricelab.store import Store
from tests.conftest import run_subprocess


def test_demo_runs_the_whole_pipeline(tmp_path: Path) -> None:
    db = tmp_path / "demo.duckdb"
    proc = run_subprocess("demo", "--db", db, "--json", cwd=tmp_path)
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


def test_demo_twice_on_the_same_database_is_fine(tmp_path: Path) -> None:
    db = tmp_path / "again.duckdb"
    for _ in range(2):
        proc = run_subprocess("demo", "--db", db, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "Try next:" in proc.stdout
