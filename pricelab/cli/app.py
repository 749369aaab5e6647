"""The ``pricelab`` typer application: each command's module is imported only when it runs.

``COMMANDS`` names every command, the module that defines it (``register(app)``) and its
one-line help, so ``pricelab --help`` and ``--version`` import no command module (and so
no polars, DuckDB, statsmodels or cvxpy); ``tests/test_cli_startup.py`` checks the help
lines against the commands themselves.
"""

from __future__ import annotations

import gc
import importlib
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from pricelab.cli._params import plain_options, plain_params

# command -> (module defining it, one-line help shown by ``pricelab --help``); help order
COMMANDS: dict[str, tuple[str, str]] = {
    "ingest": (
        "pricelab.cli.data",
        "Validate input files, then load them into the database in one transaction.",
    ),
    "validate": (
        "pricelab.cli.data",
        "Data-quality report on what is loaded; exit 1 when there are errors.",
    ),
    "demo": (
        "pricelab.cli.demo",
        "Build a database from the bundled sample data and run the whole pipeline on it.",
    ),
    "sample": (
        "pricelab.cli.demo",
        "Write the sample marketplace (CSV files, constraints.yaml, scenario.yaml) to a "
        "folder;\nwith --db also ingest it.",
    ),
    "estimate": (
        "pricelab.cli.estimate",
        "Estimate price elasticities per item × market and store them as a run.",
    ),
    "optimize": (
        "pricelab.cli.optimize",
        "Recommend margin- or revenue-maximizing prices under business constraints.",
    ),
    "markdown": (
        "pricelab.cli.markdown",
        "Plan week-by-week discounts that clear the season's stock (revenue + salvage).",
    ),
    "monitor": (
        "pricelab.cli.monitor",
        "Data freshness, volume anomalies, elasticity drift, fit quality and plan staleness.",
    ),
    "report": (
        "pricelab.cli.report",
        "Write a self-contained HTML report: data quality, elasticities, curves, plan, scenarios.",
    ),
    "simulate": (
        "pricelab.cli.simulate",
        "What-if KPIs of price scenarios against the baseline, stored as a run.",
    ),
    "backtest": (
        "pricelab.cli.simulate",
        "Fit each model before the cutoff, predict after it, and score against what happened.",
    ),
    "promote": (
        "pricelab.cli.promote",
        "Promote an estimate run to production if it backtests better than production.",
    ),
    "registry": (
        "pricelab.cli.promote",
        "Show the promotion history: who promoted which estimate run, when and why.",
    ),
    "runs": ("pricelab.cli.runs", "Every recorded run with its lineage."),
    "experiment": ("pricelab.cli.experiment", "Randomised price tests: design and analysis."),
    "pipeline": (
        "pricelab.cli.pipeline",
        "The nightly job: ingest, validate, estimate, backtest, promote, optimize, monitor.",
    ),
}
#: kept for callers that iterate the command modules (each defines ``register(app)``)
COMMAND_MODULES = list(dict.fromkeys(module for module, _ in COMMANDS.values()))


class LazyGroup(TyperGroup):
    """A typer group that imports a command's module on first use.

    While the group's own help is written, commands not yet loaded are listed from
    ``COMMANDS`` without importing them. Reading ``.commands`` from outside (docs, tests
    walking the command tree) loads every command first, so it sees the whole tree.
    """

    _listing = False
    _loaded: dict[str, Any]

    @property  # type: ignore[override]
    def commands(self) -> dict[str, Any]:
        for module in COMMAND_MODULES:
            self.load(module)
        return self._loaded

    @commands.setter
    def commands(self, value: dict[str, Any]) -> None:
        self._loaded = dict(value)

    def add_command(self, cmd: Any, name: str | None = None) -> None:
        self._loaded[name or cmd.name or ""] = cmd

    def list_commands(self, ctx: Any) -> list[str]:
        return [*COMMANDS, *(name for name in self._loaded if name not in COMMANDS)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self._loaded and cmd_name in COMMANDS:
            module, help_line = COMMANDS[cmd_name]
            if self._listing:
                return TyperCommand(cmd_name, help=help_line)
            self.load(module)
            _collect_from_here()
        cmd = self._loaded.get(cmd_name)
        if cmd is not None and ctx is not None:
            plain_params(cmd, ctx)
        return cmd

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)
        plain_options(params)  # --help, --version, completion: without pydantic
        return params

    def load(self, module: str) -> None:
        """Register the commands of ``module`` on this group (once)."""
        names = [name for name, (mod, _) in COMMANDS.items() if mod == module]
        if names and all(name in self._loaded for name in names):
            return
        sub = typer.Typer(rich_markup_mode=None)
        importlib.import_module(module).register(sub)
        group = typer.main.get_group(sub)
        plain_params(group)  # option values converted without importing pydantic
        self._loaded.update(group.commands)

    def format_help(self, ctx: Any, formatter: Any) -> Any:
        self._listing = True
        try:
            return super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="pricelab",
    cls=LazyGroup,
    # plain help: rich markup would eat "[spark]" in "pricelab[spark]" and show "<bool>" flags
    rich_markup_mode=None,
    help="Price experimentation and optimization: elasticities, optimal prices, what-ifs.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from pricelab import __version__

        typer.echo(f"pricelab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Price experimentation and optimization toolkit (see README for a tour)."""


#: set by :func:`main` while the collector is off for start-up
_STARTING: list[bool] = []


def _collect_from_here() -> None:
    """The command's modules are loaded: freeze what start-up made and collect from now on."""
    if _STARTING:
        _STARTING.clear()
        gc.freeze()
        gc.enable()


def main() -> None:
    """Console-script entry point.

    Python's cyclic garbage collector is off while the interpreter loads the command's
    modules (typer, polars, DuckDB, rich...: hundreds of thousands of objects, almost none
    garbage, each full collection walking all of them), and what they made is then frozen
    (:func:`gc.freeze`): later collections, and the one at exit, skip it. The command
    itself runs with the collector on. ~0.1 CPU s of a hot command's start-up and exit.
    """
    gc.disable()
    _STARTING[:] = [True]
    try:
        app()
    finally:
        _STARTING.clear()
        gc.freeze()  # the collection at exit then walks only what the command left
        gc.enable()
