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

#: short headers so the summary fits an 80-column terminal or a pipe
_SUMMARY = {
    "item_id": "item",
    "market": "market",
    "stock": "stock",
    "sell_through_pct": "sell %",
    "markdown_starts_week": "md week",
    "value": "value",
    "vs_keep_full_price": "vs full",
    "vs_simple_rule": "vs rule",
}


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
    cols = dict(_SUMMARY)
    if (items["market"].fill_null("") == "").all():  # every item's stock shared by its markets
        del cols["market"]
    over = items.filter(pl.col("overstocked"))
    shown = over.select([pl.col(c).alias(n) for c, n in cols.items()]).with_columns(
        pl.col("sell %").round(0), pl.col("stock").round(0)
    )
    if "market" in cols:  # '' = stock shared by the item's markets
        shown = shown.with_columns(
            pl.when(pl.col("market").fill_null("") == "")
            .then(pl.lit("all"))
            .otherwise(pl.col("market"))
            .alias("market")
        )
    console.print(
        frame_table(
            shown,
            title=f"over-stocked at full price ({over.height} of {items.height}): "
            "week markdowns start, value in base currency",
            max_rows=12,
            floats=0,
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
