"""``pricelab runs list`` and ``pricelab runs show ID``."""

from __future__ import annotations

import json as _json
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

runs_app = typer.Typer(help="Every recorded run with its lineage.", no_args_is_help=True)


@runs_app.command("list")
@guarded
def list_(
    command: Annotated[str | None, typer.Option(help="Only runs of this command.")] = None,
    db: DbOpt = None, json: JsonOpt = False, output: OutputOpt = None, debug: DebugOpt = False,
) -> None:
    """List runs, newest first."""
    df = api.runs(db, command=command)
    write_output(df, output)
    if json:
        print_json(df.to_dicts())
        return
    console.print(frame_table(df.drop("parameters", "parents"), title="runs", max_rows=50))


@runs_app.command("show")
@guarded
def show(
    run_id: Annotated[str, typer.Argument(help="Run id (see 'pricelab runs list').")],
    db: DbOpt = None, json: JsonOpt = False, debug: DebugOpt = False,
) -> None:
    """Show one run: parameters, input fingerprint, version, parents, summary."""
    rec = api.run(db, run_id)
    if json:
        print_json(rec)
        return
    for key, value in rec.items():
        text = _json.dumps(value, indent=2, default=str) if isinstance(value, dict | list) else value
        console.print(f"[bold]{key}[/]: {text}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the runs command group to ``app``."""
    app.add_typer(runs_app, name="runs")
