"""With --json every failure is one JSON document on stdout: {"error": ..., "exit_code": ...}."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import CliResult


@pytest.mark.parametrize(
    "args, code, start",
    [
        (["ingest", "--sales", "{tmp}/missing.csv"], 2, "{tmp}/missing.csv: file not found"),
        (["estimate", "--model", "nope"], 2, ""),
        (["optimize", "--constraints", "{tmp}/missing.yaml"], 2, "{tmp}/missing.yaml"),
        (["runs", "show", "no-such-run"], 2, ""),
        (["simulate", "--scenario", "{tmp}/missing.yaml"], 2, "{tmp}/missing.yaml"),
    ],
    ids=["ingest", "estimate", "optimize", "runs_show", "simulate"],
)
def test_json_errors_are_a_document_on_stdout(
    tmp_path: Path,
    loaded_db: Path,
    cli: Callable[..., CliResult],
    args: list[str],
    code: int,
    start: str,
) -> None:
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    res = cli(*argv, "--db", loaded_db, "--json")
    assert res.exit_code == code, res.stdout + res.stderr
    doc = json.loads(res.stdout)  # exactly one document
    assert set(doc) == {"error", "exit_code"}
    assert doc["exit_code"] == code
    assert doc["error"].startswith(start.replace("{tmp}", str(tmp_path)))
    assert res.stderr.startswith("error:")  # people still read the error on stderr


def test_check_failed_after_a_result_prints_only_the_result(
    loaded_db: Path, cli: Callable[..., CliResult]
) -> None:
    res = cli("monitor", "--db", loaded_db, "--json", "--as-of", "2030-01-01")
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["status"] == "alert" and "error" not in doc
