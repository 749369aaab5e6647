"""``pricelab experiment design`` and ``pricelab experiment analyze``."""

from __future__ import annotations

from typing import Annotated

import typer

from pricelab import api
from pricelab.cli._common import (
    DbOpt,
    DebugOpt,
    JsonOpt,
    OutputOpt,
    console,
    frame_table,
    guarded,
    print_json,
    write_output,
)
from pricelab.errors import UsageError

experiment_app = typer.Typer(
    rich_markup_mode=None, help="Randomised price tests: design and analysis.", no_args_is_help=True
)


def _cells(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise UsageError(f"--cells {text!r}: expected percent changes like -10,0,10") from exc


@experiment_app.command("design")
@guarded
def design(
    name: Annotated[str, typer.Option(help="Experiment name (unique in the database).")],
    cells: Annotated[
        str,
        typer.Option(help="Percent price changes per cell, 0 is control, e.g. --cells=-10,0,10."),
    ],
    weeks: Annotated[int, typer.Option(help="Test length in weeks.")],
    seed: Annotated[int, typer.Option(help="Randomisation seed (same seed, same assignment).")],
    unit: Annotated[
        str, typer.Option(help="Randomisation unit: item-market or item.")
    ] = "item-market",
    stratify: Annotated[
        str | None, typer.Option(help="Strata columns, e.g. category,market.")
    ] = None,
    where: Annotated[
        list[str] | None, typer.Option(help="Filter units, COLUMN=VALUE[,VALUE]; repeatable.")
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            help="First test week (a Monday); default the week after the last sales week."
        ),
    ] = None,
    mde: Annotated[
        float | None,
        typer.Option(help="Target detectable change in units (%): report the weeks needed."),
    ] = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    output: OutputOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Assign units to price cells (stratified), check balance and power; store the design."""
    strata = [c.strip() for c in stratify.split(",")] if stratify else None
    result, run_id = api.experiment_design(
        db,
        name=name,
        cells=_cells(cells),
        weeks=weeks,
        seed=seed,
        unit=unit,
        stratify=strata,
        where=where,
        start=start,
        mde=mde,
    )
    cols = [
        "item_id",
        "market",
        "cell",
        "price_change_pct",
        "stratum",
        "current_price",
        "test_price",
    ]
    write_output(result.assignment.select(cols), output)
    if json:
        print_json({"run_id": run_id, **result.to_dict()})
        return
    console.print(result.summary, highlight=False)
    console.print(frame_table(result.balance, title="balance (pre-period)", max_rows=30))
    console.print(frame_table(result.power, title="power", max_rows=30))
    console.print(f"stored as experiment '{name}' (run {run_id})")


@experiment_app.command("analyze")
@guarded
def analyze(
    name: Annotated[str, typer.Option(help="Experiment name.")],
    estimates: Annotated[
        str | None,
        typer.Option(help="Estimate run to compare with (default: production, else latest)."),
    ] = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    output: OutputOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Effects per cell vs control, experimental elasticity, sample-ratio check."""
    result, run_id = api.experiment_analyze(db, name=name, estimates=estimates)
    write_output(result.table, output)
    if json:
        print_json({"run_id": run_id, **result.to_dict()})
        return
    console.print(result.summary, highlight=False)
    from pricelab.experiment.results import ANALYSIS_COLUMNS

    cols = [c for c in ANALYSIS_COLUMNS if c in result.table.columns]
    console.print(frame_table(result.table.select(cols), title="effects vs control", floats=2))
    console.print(f"stored as run {run_id}")


def register(app: typer.Typer) -> None:
    """Add the experiment command group to ``app``."""
    app.add_typer(experiment_app, name="experiment")
