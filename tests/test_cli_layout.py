"""Only ``pricelab/cli/`` holds command-line code; the MLflow options are shared from there."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
import typer.main

from pricelab.cli.app import app

PKG = Path(__file__).resolve().parents[1] / "pricelab"
CLI_LIBS = {"typer", "click"}
MLFLOW_OPTS = {
    "mlflow": ["--mlflow", "--no-mlflow"],
    "mlflow_uri": ["--mlflow-uri"],
    "mlflow_experiment": ["--mlflow-experiment"],
    "strict_tracking": ["--strict-tracking"],
}


def _imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_cli_library_outside_the_cli_package() -> None:
    offenders = sorted(
        str(p.relative_to(PKG))
        for p in PKG.rglob("*.py")
        if "cli" not in p.relative_to(PKG).parts[:1] and _imported_roots(p) & CLI_LIBS
    )
    assert offenders == []


def test_old_tracking_cli_module_is_gone() -> None:
    assert not (PKG / "tracking" / "cli.py").exists()
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("pricelab.tracking.cli")


@pytest.mark.parametrize("command", ["estimate", "optimize", "simulate"])
def test_tracked_commands_take_the_same_mlflow_options(command: str) -> None:
    root = typer.main.get_command(app)
    assert hasattr(root, "commands")
    params = {p.name: p for p in root.commands[command].params}
    for name, opts in MLFLOW_OPTS.items():
        p = params[name]
        assert [*p.opts, *p.secondary_opts] == opts, (command, name)
    assert params["strict_tracking"].default is False and params["mlflow"].default is None
