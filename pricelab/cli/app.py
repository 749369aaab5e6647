"""The ``pricelab`` typer application: every command module registers itself here."""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

app = typer.Typer(
    name="pricelab",
    help="Price experimentation and optimization: elasticities, optimal prices, what-ifs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# One module per command group; each defines ``register(app)``.
COMMAND_MODULES = [
    "pricelab.cli.data",
    "pricelab.cli.runs",
    "pricelab.cli.demo",
    "pricelab.cli.estimate",
    "pricelab.cli.optimize",
    "pricelab.cli.experiment",
    "pricelab.cli.monitor",
    "pricelab.cli.report",
    "pricelab.cli.simulate",
    "pricelab.cli.promote",
    "pricelab.cli.pipeline",
]


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


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)


def main() -> None:
    """Console-script entry point."""
    app()
