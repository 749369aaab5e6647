"""Every CLI option reaches the library: each command is invoked with a distinct,
non-default value for every option, and the Python API function it calls (monkeypatched
to record its arguments) must receive each value."""

from __future__ import annotations

import datetime as dt
import enum
import inspect
import types
import typing
from pathlib import Path
from typing import Any

import pytest
import typer

import pricelab.api as api_module
from pricelab.cli.app import app

# options every command handles itself (printing, writing, tracebacks) or turns into one
# tracking argument (checked separately below)
CLI_ONLY = {"json", "debug", "help", "mlflow", "mlflow_uri", "mlflow_experiment"}
CLI_ONLY |= {"strict_tracking", "wide"}  # --wide: how many columns the CLI prints
# an exit-code policy: optimize --allow-conflicts exits 0 on a partial plan (the call is the same)
CLI_ONLY |= {"allow_conflicts"}
# values the CLI parses before the call: tokens, and text the library must receive
OVERRIDES = {"cells": ("-7,0,7", "-7"), "season_end": ("2026-03-30", "2026-03-30")}
# options that switch to another command (promote --list shows the registry)
SWITCHES = {("promote",): {"list_"}}
# commands that are not one library call by design: pipeline check only reads the config
NOT_LIBRARY = {("pipeline", "check")}


class _Reached(Exception):
    pass


def _leaves(group: Any, ctx: Any, prefix: tuple[str, ...] = ()) -> Any:
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if hasattr(cmd, "list_commands"):
            yield from _leaves(cmd, ctx, (*prefix, name))
        elif cmd is not None:
            yield (*prefix, name), cmd


def _commands() -> list[tuple[tuple[str, ...], Any]]:
    root = typer.main.get_command(app)
    ctx = root.make_context("pricelab", ["--help"], resilient_parsing=True)
    return list(_leaves(root, ctx))


def _base(hint: Any) -> Any:
    """The plain type of an annotation: Annotated[X | None, ...] -> X."""
    while typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if typing.get_origin(hint) in (typing.Union, types.UnionType) else hint


def _value(param: Any, hint: Any, tmp: Path) -> tuple[list[str], Any]:
    """Command-line tokens for a distinct non-default value, and the value to look for."""
    name = param.name or ""
    kind = _base(hint)
    if getattr(param, "is_flag", False) or kind is bool:
        if param.default is True and param.secondary_opts:
            return [param.secondary_opts[0]], False
        return [param.opts[0]], True
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        choice = next(c for c in kind if c != param.default and c.value != param.default)
        return [param.opts[0], str(choice.value)], str(choice.value)
    if kind is int:
        return [param.opts[0], "7"], 7
    if kind is float:
        return [param.opts[0], "0.37"], 0.37
    if kind in (dt.date, dt.datetime):
        return [param.opts[0], "2024-03-04"], "2024-03-04"
    if kind is Path:
        p = tmp / f"{name}-x.csv"
        return [param.opts[0], str(p)], str(p)
    return [param.opts[0], f"v{name}"], f"v{name}"


def _flat(obj: Any) -> list[str]:
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _flat(v)]
    if isinstance(obj, (list, tuple, set)):
        return [s for v in obj for s in _flat(v)]
    if isinstance(obj, (dt.date, dt.datetime)):
        return [obj.isoformat()]
    return [str(obj)]


COMMANDS = [(p, c) for p, c in _commands() if p not in NOT_LIBRARY]


@pytest.mark.parametrize("path, cmd", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_option_reaches_the_library(
    path: tuple[str, ...], cmd: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def recorder(fname: str):
        def record(*args: Any, **kwargs: Any) -> Any:
            calls.append((fname, args, kwargs))
            raise _Reached

        return record

    for fname in api_module.__all__:
        if callable(getattr(api_module, fname)) and fname[0].islower():
            monkeypatch.setattr(api_module, fname, recorder(fname))
    argv: list[str] = list(path)
    expected: dict[str, Any] = {}
    hints = typing.get_type_hints(inspect.unwrap(cmd.callback), include_extras=True)
    for param in cmd.params:
        if type(param).__name__ == "TyperArgument":
            argv.append(f"arg{param.name}")
            expected[param.name or ""] = f"arg{param.name}"
            continue
        if param.name in CLI_ONLY or param.name in SWITCHES.get(path, set()):
            continue
        if param.name in OVERRIDES:
            given, want = OVERRIDES[param.name]
            tokens = [param.opts[0], given]
        else:
            tokens, want = _value(param, hints.get(param.name), tmp_path)
        if path[0] == "report" and param.name == "output":  # HTML, checked before the work
            want = tmp_path / "output-x.html"
            tokens = [tokens[0], str(want)]
        argv += [f"{tokens[0]}={tokens[1]}"] if len(tokens) == 2 else tokens
        if param.name != "output" or path[0] in {"report"}:
            expected[param.name or ""] = want
    from typer.testing import CliRunner

    res = CliRunner().invoke(app, argv, catch_exceptions=True)
    assert calls, f"{' '.join(argv)} never called the library: {res.output}"
    fname, args, kwargs = calls[0]
    seen = _flat(list(args)) + _flat(kwargs)
    for name, want in expected.items():
        if isinstance(want, bool):
            assert kwargs.get(name) is want, f"--{name} did not reach api.{fname}: {kwargs}"
            continue
        text = str(want)
        assert any(text in s for s in seen), f"--{name}={text} did not reach api.{fname}: {kwargs}"
