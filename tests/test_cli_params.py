"""Option values converted without pydantic (``pricelab/cli/_params.py``) equal typer's own
conversion, errors included, on every option of every command (issue #20, start-up)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main

from pricelab.cli.app import app

# the step these converters replace exists in typer >= 0.29 (pydantic conversion)
build_runtime_param = pytest.importorskip("typer._coercion").build_runtime_param
PlainParam = pytest.importorskip("pricelab.cli._params").PlainParam

ROOT = Path(__file__).resolve().parent.parent

VALUES: dict[Any, list[Any]] = {
    str: ["", "abc", " padded ", "ünïcödé", "a\udcffb", "-", "1,2", "x" * 300],
    int: ["0", "12", "-3", "007", "+5", " 12", "1_000", "1e3", "1.0", "", "abc", "-", "9" * 19, 7],
    bool: [True, False, "true", "0", "yes", ""],
    Path: ["out.csv", "", "-", "a\0b", "/", "no/such/dir/x.parquet", Path("p.json"), "."],
}


def _commands(group: Any, ctx: typer.Context) -> Any:
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)  # as the CLI resolves it: options made plain here
        yield cmd
        if hasattr(cmd, "commands"):
            yield from _commands(cmd, typer.Context(cmd, parent=ctx))


def _outcome(fn: Any) -> tuple[str, Any]:
    try:
        out = fn()
    except Exception as exc:  # noqa: BLE001 - the message is what is compared
        return type(exc).__name__, str(exc)
    return type(out).__name__, out


def test_plain_conversion_equals_typers_on_every_option() -> None:
    root = typer.main.get_command(app)
    ctx = typer.Context(root)
    checked: set[Any] = set()
    n = 0
    for cmd in [root, *_commands(root, ctx)]:
        sub = typer.Context(cmd, parent=ctx)
        for param in cmd.get_params(sub):
            fast = getattr(param, "_runtime_param", None)
            if not isinstance(fast, PlainParam):
                continue
            full = build_runtime_param(param.type_descriptor)  # typer's own (pydantic)
            annotation = param.type_descriptor.annotation
            for value in VALUES[annotation]:
                got = _outcome(lambda: fast.coerce(value, param=param, ctx=sub))  # noqa: B023
                want = _outcome(lambda: full.coerce(value, param=param, ctx=sub))  # noqa: B023
                assert got == want, (cmd.name, param.name, value)
                n += 1
            checked.add(annotation)
    assert checked == {str, int, bool, Path}  # every kind made plain is compared
    assert n > 500


def test_a_command_runs_without_importing_pydantic(tmp_path: Path) -> None:
    scen = tmp_path / "s.yaml"
    scen.write_text("scenarios: []\n")
    code = (
        "import contextlib, io, json, sys\n"
        "from pricelab.cli.app import main\n"
        f"sys.argv = {['pricelab', 'simulate', '--db', str(tmp_path / 'none.duckdb'), '--scenario', str(scen), '--draws', '0', '--seed', '3', '--json']!r}\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out, "
        "contextlib.suppress(SystemExit):\n"
        "    main()\n"
        "print(json.dumps([out.getvalue(), 'pydantic' in sys.modules]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    printed, pydantic = json.loads(res.stdout.strip().splitlines()[-1])
    assert json.loads(printed)["exit_code"] == 2  # every option was parsed; no database
    assert not pydantic


@pytest.mark.parametrize(("draws", "message"), [("abc", "valid integer"), ("-", "valid integer")])
def test_a_bad_value_reads_as_typer_writes_it(cli, draws: str, message: str) -> None:
    res = cli("simulate", "--scenario", "s.yaml", "--draws", draws)
    assert res.exit_code == 2
    assert f"Invalid value for '--draws': Input should be a {message}" in res.stderr
