"""``pricelab ingest`` and ``pricelab validate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

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
from pricelab.quality import QualityReport


def _print_report(report: QualityReport, title: str) -> None:
    if not report.issues:
        console.print(f"[green]{title}: no problems found[/]")
        return
    # one finding per line (not a 7-column table): readable in 80 columns and in a pipe;
    # --output writes the full table
    console.print(f"[bold]{title}[/]")
    for issue in report.issues[:50]:
        colour = "red" if issue.level == "error" else "yellow"
        console.print(f"[{colour}]{issue.level}:[/] {escape(issue.message())}", highlight=False)
    if len(report.issues) > 50:
        console.print(f"... {len(report.issues) - 50} more (--output F.csv writes them all)")


@guarded
def ingest(
    sales: Annotated[Path | None, typer.Option(help="Sales file (CSV or Parquet).")] = None,
    items: Annotated[
        Path | None, typer.Option(help="Items file: item_id, category, brand, boutique_id, ...")
    ] = None,
    costs: Annotated[
        Path | None, typer.Option(help="Costs file: item_id, unit_cost[, market].")
    ] = None,
    markets: Annotated[
        Path | None, typer.Option(help="Markets file: market, currency, fx_rate, vat_rate.")
    ] = None,
    inventory: Annotated[
        Path | None, typer.Option(help="Inventory file: item_id, stock[, market].")
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace rows whose keys are already loaded.")
    ] = False,
    db: DbOpt = None,
    json: JsonOpt = False,
    output: OutputOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Validate input files, then load them into the database in one transaction."""
    result = api.ingest(
        db,
        sales=sales,
        items=items,
        costs=costs,
        markets=markets,
        inventory=inventory,
        replace=replace,
    )
    write_output(result.report.to_polars(), output)
    if json:
        print_json(result.to_dict())
        return
    loaded = ", ".join(f"{n} {k}" for k, n in result.loaded.items())
    console.print(f"[bold green]ingested[/] {loaded} rows (run {result.run_id})")
    if result.replaced:
        console.print("replaced: " + ", ".join(f"{n} {k}" for k, n in result.replaced.items()))
    if result.aggregated_rows:
        console.print(f"{result.aggregated_rows} daily rows were summed into weekly rows")
    if result.report.warnings:
        _print_report(result.report, "warnings")


@guarded
def validate(
    db: DbOpt = None, json: JsonOpt = False, output: OutputOpt = None, debug: DebugOpt = False
) -> None:
    """Data-quality report on what is loaded; exit 1 when there are errors."""
    report = api.validate(db)
    write_output(report.to_polars(), output)
    if json:
        print_json(report.to_dict())
    else:
        _print_report(report, "data quality")
        console.print(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)")
    if not report.ok:
        raise CheckFailed(
            f"validation found {len(report.errors)} error(s): {report.errors[0].message()}"
        )


def register(app: typer.Typer) -> None:
    """Add the data commands to ``app``."""
    app.command("ingest")(ingest)
    app.command("validate")(validate)
