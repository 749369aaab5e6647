"""``--output`` is checked before the work, and a run is kept only when its file was written.

Exit 2 means the database is unchanged: a bad destination is refused before anything runs,
and a write that fails after the work (full disk) rolls the command's runs and results back.
"""

from __future__ import annotations

import errno
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO, CliResult, assert_same, snapshot

SAMPLE = REPO / "data" / "sample"


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample, ingested and estimated (ols) once for the module."""
    from typer.testing import CliRunner

    from pricelab.cli.app import app

    db = tmp_path_factory.mktemp("tmpl") / "t.duckdb"
    runner = CliRunner()
    args = ["ingest", "--db", str(db)]
    for kind in ("sales", "items", "costs", "markets", "inventory"):
        args += [f"--{kind}", str(SAMPLE / f"{kind}.csv")]
    assert runner.invoke(app, args).exit_code == 0
    res = runner.invoke(app, ["estimate", "--db", str(db), "--model", "ols"])
    assert res.exit_code == 0, res.stderr
    return db


@pytest.fixture
def db(template_db: Path, tmp_path: Path) -> Path:
    out = tmp_path / "db.duckdb"
    shutil.copy(template_db, out)
    return out


def _commands(tmp: Path) -> dict[str, list[object]]:
    small = tmp / "more.csv"
    small.write_text("item_id,market,date,price,quantity\nNEW-1,US,2024-01-01,10,3\n")
    scenario = tmp / "s.yaml"
    scenario.write_text(
        "horizon_weeks: 4\nscenarios:\n  - name: up\n    changes:\n"
        "      - where: {market: US}\n        price_change_pct: 5\n"
    )
    return {
        "estimate": ["estimate", "--model", "ols"],
        "optimize": ["optimize", "--constraints", SAMPLE / "constraints.yaml"],
        "simulate": ["simulate", "--scenario", scenario],
        "backtest": [
            "backtest",
            "--model",
            "ols",
            "--cutoff",
            "2025-06-02",
            "--horizon-weeks",
            "4",
        ],
        "design": [
            *("experiment", "design", "--name", "t1", "--cells=-10,0,10"),
            *("--weeks", "4", "--seed", "1"),
        ],
        "ingest": ["ingest", "--sales", small],
    }


COMMANDS = ["estimate", "optimize", "simulate", "backtest", "design", "ingest"]


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("where", ["missing-folder", "unknown-ext", "directory", "unwritable"])
def test_bad_destination_refused_before_the_work(
    cli: Callable[..., CliResult], db: Path, tmp_path: Path, command: str, where: str
) -> None:
    dest = {
        "missing-folder": tmp_path / "nope" / "x.csv",
        "unknown-ext": tmp_path / "x.txt",
        "directory": tmp_path,
        "unwritable": Path("/proc/pricelab-x.csv"),
    }[where]
    before = snapshot(db)
    res = cli(*_commands(tmp_path)[command], "--db", db, "--output", dest)
    assert res.exit_code == 2, res.stderr
    assert "--output" in res.stderr and "internal error" not in res.stderr
    assert_same(before, snapshot(db))


@pytest.mark.parametrize("command", COMMANDS)
def test_write_failure_after_the_work_rolls_back(
    cli: Callable[..., CliResult],
    db: Path,
    tmp_path: Path,
    command: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A full disk while writing the file: exit 2, no file, no run, no result rows."""
    import pricelab.io

    def full(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pricelab.io, "_write_local", full)
    before = snapshot(db)
    out = tmp_path / "out.csv"
    res = cli(*_commands(tmp_path)[command], "--db", db, "--output", out)
    assert res.exit_code == 2, res.stderr
    assert "No space left on device" in res.stderr
    assert not out.exists() and not list(tmp_path.glob(".out.csv*"))
    assert_same(before, snapshot(db))


def test_a_written_output_keeps_its_run(
    cli: Callable[..., CliResult], db: Path, tmp_path: Path
) -> None:
    before = snapshot(db)["runs"].height
    out = tmp_path / "e.parquet"
    res = cli("estimate", "--db", db, "--model", "ols", "--output", out)
    assert res.exit_code == 0, res.stderr
    assert out.exists() and snapshot(db)["runs"].height == before + 1
