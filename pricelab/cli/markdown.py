"""``pricelab markdown``: a season clearance plan (week-by-week discounts, finite stock)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import polars as pl
import typer

from pricelab import api
from pricelab.cli._common import (
    BaselineWeeksOpt,
    DbOpt,
    DebugOpt,
    JsonOpt,
    OutputOpt,
    console,
    frame_table,
    guarded,
    print_plan_run,
)


@guarded
def markdown(
    constraints: Annotated[
        Path | None,
        typer.Option(help="Markdown YAML: weeks, ladder, monotone, salvage, sell-through, ..."),
    ] = None,
    demand: Annotated[
        Path | None, typer.Option(help="demand.csv: item_id, market, week, base_quantity, ...")
    ] = None,
    stock: Annotated[
        Path | None, typer.Option(help="stock.csv: item_id, stock (+ market).")
    ] = None,
    season_end: Annotated[
        str | None, typer.Option(help="Last day of the season (YYYY-MM-DD); or weeks: in YAML.")
    ] = None,
    estimates: Annotated[
        str | None, typer.Option(help="Estimate run id (default: production, else latest).")
    ] = None,
    baseline_weeks: BaselineWeeksOpt = 8,
    db: DbOpt = None,
    json: JsonOpt = False,
    output: OutputOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Plan week-by-week discounts that clear the season's stock (revenue + salvage)."""
    run = api.markdown_plan(
        db,
        demand=demand,
        stock=stock,
        constraints=constraints,
        season_end=season_end,
        estimates=estimates,
        baseline_weeks=baseline_weeks,
    )
    if print_plan_run(run, output, json):
        return
    plan = run.plan
    items = plan.items.sort("vs_keep_full_price", descending=True)
    cols = [
        "item_id",
        "market",
        "stock",
        "sell_through_pct",
        "markdown_starts_week",
        "value",
        "vs_keep_full_price",
        "vs_simple_rule",
    ]
    over = items.filter(pl.col("overstocked"))
    console.print(
        frame_table(
            over.select(cols),
            title=f"over-stocked at full price ({over.height} of {items.height}): when markdowns start",
            max_rows=12,
            floats=1,
        )
    )
    for t in plan.to_dict()["targets"]:
        console.print(
            f"sell-through target {t['category']}: {t['units']:.0f} units planned, "
            f"{t['min_units']:.0f} needed",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    """Add ``markdown`` to ``app``."""
    app.command("markdown")(markdown)
