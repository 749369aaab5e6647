"""Start-up stays small: ``import pricelab`` and ``pricelab --help/--version`` import no
heavy library, and a command imports only its own module (issue #20)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import typer.main

from pricelab.cli.app import COMMANDS, app

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("polars", "duckdb", "numpy", "pyarrow", "scipy", "statsmodels", "cvxpy", "matplotlib")

PROBE = """
import json, sys
{setup}
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {heavy!r}
                        or m.startswith('pricelab.'))))
"""


def _modules(setup: str) -> set[str]:
    code = PROBE.format(setup=setup, heavy=HEAVY)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _run_cli(*args: str) -> str:
    return f"""
import contextlib, io
from pricelab.cli.app import main
sys.argv = ["pricelab", *{list(args)!r}]
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main()
"""


def _heavy(mods: set[str]) -> set[str]:
    return {m.split(".")[0] for m in mods if m.split(".")[0] in HEAVY}


def test_import_pricelab_imports_no_heavy_library() -> None:
    mods = _modules("import pricelab")
    assert not _heavy(mods), _heavy(mods)
    assert mods == set(), mods  # not even a pricelab submodule


def test_version_and_help_import_no_command_module() -> None:
    for args in (("--version",), ("--help",), ()):
        mods = _modules(_run_cli(*args))
        assert not _heavy(mods), (args, _heavy(mods))
        startup = {"pricelab.cli.app", "pricelab.cli._params"}  # no command module
        assert not any(m.startswith("pricelab.cli.") and m not in startup for m in mods)


def test_a_command_imports_only_its_own_stack() -> None:
    mods = _modules(_run_cli("estimate", "--help"))
    assert "pricelab.cli.estimate" in mods
    others = {m for m, _ in COMMANDS.values()} - {"pricelab.cli.estimate"}
    assert not mods & others, mods & others
    # the fit's libraries are imported when the fit runs, not to parse options
    assert not {"statsmodels", "cvxpy", "scipy", "matplotlib"} & _heavy(mods)
    assert not {"statsmodels", "cvxpy", "matplotlib"} & _heavy(_modules("import pricelab.api"))
    # the estimators need scipy.special, not scipy.stats (seconds to import on a busy machine)
    est = _modules("import pricelab.elasticity")
    assert not {"statsmodels", "cvxpy", "matplotlib"} & _heavy(est)
    assert not any(m.startswith("scipy.stats") for m in est)


def test_help_lists_every_command_with_its_own_help() -> None:
    root = typer.main.get_command(app)
    real = root.commands  # type: ignore[attr-defined]  # loads every command module
    assert list(real) == list(COMMANDS)
    ctx = typer.Context(root)
    for name, (module, line) in COMMANDS.items():
        cmd = real[name]
        assert hasattr(cmd, "commands") or cmd.callback.__module__ == module
        first = (cmd.help or "").split("\n\n")[0].strip()
        assert line == first, f"update COMMANDS[{name!r}] in pricelab/cli/app.py to {first!r}"
        assert root.get_command(ctx, name) is cmd  # type: ignore[attr-defined]


def test_simulate_imports_no_estimator() -> None:
    """A simulation reads stored estimates: the estimators' package (0.04-0.05 CPU s to
    import) loads only when a run's seasonal terms are applied."""
    mods = _modules(
        "import importlib; import pricelab.cli.simulate; "
        "importlib.import_module('pricelab.simulate.simulation')"
    )
    assert "pricelab.simulate.simulation" in mods
    assert not any(m.startswith("pricelab.elasticity") for m in mods)


#: modules no hot command needs: other commands' API and packages, ingest, the sample
NOT_FOR_HOT_COMMANDS = {
    "pricelab.api.data",
    "pricelab.api.demo",
    "pricelab.api.experiments",
    "pricelab.api.ops",
    "pricelab.api.production",
    "pricelab.store.ingest",
    "pricelab.sample",
    "pricelab.report",
    "pricelab.monitor",
    "pricelab.pipeline",
    "pricelab.experiment",
    "pricelab.markdown",
    "rich.progress",  # the estimate's bar is imported only when drawn (a terminal)
}
_ROOTS = ("pricelab", "rich", "statsmodels", "cvxpy", "scipy", "matplotlib")


def _command_modules(*args: str) -> set[str]:
    """The modules a finished ``pricelab ARGS`` process holds (stdout not a terminal)."""
    code = f"""
import contextlib, io, json, sys
from pricelab.cli.app import main
sys.argv = ["pricelab", *{list(args)!r}]
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main()
    except SystemExit as exc:
        assert not exc.code, exc.code
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {_ROOTS!r})))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PRICELAB_MLFLOW": ""}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_hot_commands_import_only_what_they_run(tmp_path: Path, estimated_template: Path) -> None:
    """estimate, simulate and optimize, run to the end, import neither the other commands'
    API modules nor ingest, the sample, reports or the progress bar (issue #20: start-up)."""
    from tests.conftest import copy_db

    db = str(copy_db(estimated_template, tmp_path / "s.duckdb"))
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        "baseline_weeks: 8\nhorizon_weeks: 4\nscenarios:\n  - name: up\n    changes:\n"
        "      - where: {market: US}\n        price_change_pct: 5\n"
    )
    sample = ROOT / "data" / "sample" / "constraints.yaml"
    runs = {
        "estimate": ("estimate", "--model", "ols", "--db", db),
        "simulate": ("simulate", "--db", db, "--scenario", str(scenario), "--draws", "0"),
        "optimize": ("optimize", "--db", db, "--constraints", str(sample)),
    }
    others = {"estimate": "pricelab.simulate", "simulate": "pricelab.optimize"}
    for name, args in runs.items():
        mods = _command_modules(*args)
        assert f"pricelab.cli.{name}" in mods  # the probe saw the command run
        assert not mods & NOT_FOR_HOT_COMMANDS, (name, sorted(mods & NOT_FOR_HOT_COMMANDS))
        assert not {"statsmodels", "cvxpy", "matplotlib"} & {m.split(".")[0] for m in mods}
        if name in others:
            assert not any(m.startswith(others[name]) for m in mods), name


def test_start_up_runs_without_the_collector_and_the_command_with_it(tmp_path: Path) -> None:
    """``main`` turns Python's cyclic collector off while the command's modules load and
    freezes what they made (later collections and the one at exit skip it: ~0.1 CPU s of a
    hot command); the command itself runs with the collector on, and ``main`` leaves it on."""
    code = f"""
import contextlib, gc, io, json, sys
import pricelab.api as api
from pricelab.cli.app import main
seen = []
def runs(db, command=None):
    seen.append([gc.isenabled(), gc.get_freeze_count() > 0, "polars" in sys.modules])
    raise SystemExit(0)
api.runs = runs
sys.argv = ["pricelab", "runs", "list", "--db", {str(tmp_path / "x.duckdb")!r}]
with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):
    main()
print(json.dumps([seen, gc.isenabled()]))
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PRICELAB_MLFLOW": ""}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    seen, enabled_after = json.loads(out.stdout.strip().splitlines()[-1])
    # the command ran with the collector on, after its modules (polars) were frozen
    assert seen == [[True, True, True]]
    assert enabled_after
