"""Absurd option and config values and damaged databases: exit 2 with a message, never exit 3."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult, assert_same, snapshot

CASES = {
    "horizon 1e12": (
        ["optimize", "--constraints", ("c.yaml", "horizon_weeks: 1000000000000\n")],
        "c.yaml, line 1: horizon_weeks: must be < 521",
    ),
    "baseline 1e8": (
        [
            "simulate",
            "--scenario",
            (
                "s.yaml",
                "baseline_weeks: 100000000\nscenarios:\n  - name: a\n    changes:\n"
                "      - price_change_pct: 5\n",
            ),
        ],
        "s.yaml, line 1: baseline_weeks: expected a whole number of weeks from 1 to 520",
    ),
    "experiment weeks 1e8": (
        [*("experiment", "design", "--name", "x", "--cells=-5,0"), "--weeks", "100000000"]
        + ["--seed", "1"],
        "weeks must be a whole number from 1 to 520",
    ),
    "experiment seed 1e23": (
        [*("experiment", "design", "--name", "x", "--cells=-5,0", "--weeks", "4")]
        + ["--seed", str(10**23)],
        "seed must be a whole number from 0 to 2**63 - 1",
    ),
    "before 2025-13-01": (
        ["estimate", "--model", "ols", "--before", "2025-13-01"],
        "--before '2025-13-01' is not a date; use YYYY-MM-DD",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_absurd_values_are_exit_2(
    cli: Callable[..., CliResult], loaded_db: Path, tmp_path: Path, case: str
) -> None:
    args, message = CASES[case]
    real: list[object] = []
    for a in args:
        if isinstance(a, tuple):
            f = tmp_path / a[0]
            f.write_text(a[1])
            real.append(f)
        else:
            real.append(a)
    before = snapshot(loaded_db)
    res = cli(*real, "--db", loaded_db)
    assert res.exit_code == 2, res.stderr
    assert message in res.stderr
    assert_same(before, snapshot(loaded_db))


@pytest.mark.parametrize("keep", [0.05, 0.4, 0.7, 0.95])
@pytest.mark.parametrize(
    "command", [["validate"], ["estimate", "--model", "ols"], ["runs", "list"]]
)
def test_truncated_database_is_exit_2(
    cli: Callable[..., CliResult], loaded_db: Path, tmp_path: Path, keep: float, command: list[str]
) -> None:
    data = loaded_db.read_bytes()
    cut = tmp_path / "cut.duckdb"
    cut.write_bytes(data[: int(len(data) * keep)])
    res = cli(*command, "--db", cut)
    assert res.exit_code in (0, 1, 2), res.stderr
    assert "internal error" not in res.stderr
    if res.exit_code == 2:
        assert "cut.duckdb" in res.stderr
