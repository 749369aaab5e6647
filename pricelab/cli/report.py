"""``pricelab report``: one self-contained HTML file with plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from pricelab import api
from pricelab.cli._common import DbOpt, DebugOpt, JsonOpt, console, guarded, print_json
from pricelab.filecheck import HTML_OUTPUT
from pricelab.urls import display


@guarded(output_formats=HTML_OUTPUT)
def report(
    output: Annotated[
        Path,
        typer.Option(
            "--output",
            "-o",
            help="HTML file to write (a path or an az://, s3://, gs:// URL).",
            show_default=False,
        ),
    ],
    run: Annotated[
        str | None,
        typer.Option(
            "--run",
            help="Build around this estimate, optimize or simulate run (default: the latest runs).",
            show_default=False,
        ),
    ] = None,
    top: Annotated[
        int, typer.Option("--top", help="Items whose demand and profit curves are drawn.")
    ] = 6,
    db: DbOpt = None,
    json: JsonOpt = False,
    debug: DebugOpt = False,
) -> None:
    """Write a self-contained HTML report: data quality, elasticities, curves, plan, scenarios."""
    rep = api.report(db, output=output, run=run, top=top)
    if json:
        print_json(rep.to_dict())
        return
    size = len(rep.html.encode()) / 1024
    console.print(
        f"[bold green]wrote[/] {escape(display(output))} ({size:,.0f} KiB)", highlight=False
    )
    for name, shown in rep.sections.items():
        mark = "[green]shown[/]" if shown else "[dim]no data[/]"
        console.print(f"  {name:<13} {mark}")


def register(app: typer.Typer) -> None:
    """Add ``report`` to ``app``."""
    app.command("report")(report)
