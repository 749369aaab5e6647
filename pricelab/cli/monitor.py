"""``pricelab monitor``: freshness, volume, drift, fit and plan checks; exit 1 on an alert."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from pricelab import api
from pricelab.cli._common import (
    DbOpt,
    DebugOpt,
    JsonOpt,
    OutputOpt,
    console,
    guarded,
    print_json,
    write_output,
)
from pricelab.errors import CheckFailed

_STYLE = {"ok": "green", "alert": "bold red", "skipped": "dim"}


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:.3g}" if abs(value) < 1 else f"{value:,.1f}"


@guarded
def monitor(
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Judge the checks at this ISO date (default: today).",
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="YAML file with a 'monitor:' section of thresholds.",
            show_default=False,
        ),
    ] = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    output: OutputOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Data freshness, volume anomalies, elasticity drift, fit quality and plan staleness.

    Exit 0 when all clear, 1 on an alert. Checks without inputs are skipped.
    """
    result = api.monitor(db, as_of=as_of, config=config)
    write_output(result.checks_frame(), output)
    if json:
        print_json(result.to_dict())
    else:
        table = Table(title=f"monitor as of {result.as_of}", header_style="bold")
        for col, just in (
            ("check", "left"),
            ("status", "left"),
            ("value", "right"),
            ("threshold", "right"),
            ("message", "left"),
        ):
            table.add_column(col, justify=just)  # type: ignore[arg-type]
        for c in result.checks:
            style = _STYLE.get(c.status, "")
            table.add_row(
                c.name, f"[{style}]{c.status}[/]", _fmt(c.value), _fmt(c.threshold), c.message
            )
        console.print(table)
    if not result.ok:
        names = ", ".join(c.name for c in result.alerts)
        raise CheckFailed(f"monitoring alert: {names} ({result.alerts[0].message})")


def register(app: typer.Typer) -> None:
    """Add ``monitor`` to ``app``."""
    app.command("monitor")(monitor)
