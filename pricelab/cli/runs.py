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

runs_app = typer.Typer(
    rich_markup_mode=None, help="Every recorded run with its lineage.", no_args_is_help=True
)


@runs_app.command("list")
@guarded
def list_(
    command: Annotated[str | None, typer.Option(help="Only runs of this command.")] = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    output: OutputOpt = None,
    debug: DebugOpt = False,
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
    db: DbOpt = None,
    json: JsonOpt = False,
    output: OutputOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Show one run: parameters, input fingerprint, version, parents, summary."""
    rec = api.run(db, run_id)
    if output is not None:  # one row; nested fields (parameters, inputs...) as JSON text
        import polars as pl

        row = {
            k: _json.dumps(v, default=str) if isinstance(v, dict | list) else v
            for k, v in rec.items()
        }
        write_output(pl.DataFrame([row]).with_columns(pl.all().cast(pl.String)), output)
    if json:
        print_json(rec)
        return
    for key, value in rec.items():
        text = (
            _json.dumps(value, indent=2, default=str) if isinstance(value, dict | list) else value
        )
        console.print(f"[bold]{key}[/]: {text}", highlight=False)


@runs_app.command("diff")
@guarded
def diff(
    run_a: Annotated[str, typer.Argument(help="Earlier run id.")],
    run_b: Annotated[str, typer.Argument(help="Later run id.")],
    db: DbOpt = None,
    json: JsonOpt = False,
    output: OutputOpt = None,
    debug: DebugOpt = False,
) -> None:
    """What changed between two runs: parameters, inputs, and moved elasticities.

    For two estimate runs, lists the items whose elasticity interval in B no longer
    overlaps the one in A (--output writes that list).
    """
    import polars as pl

    d = api.diff_runs(db, run_a, run_b)
    if d.elasticity is not None:
        write_output(d.elasticity, output)
    if json:
        print_json(d.to_dict())
        return
    console.print(
        f"[bold]{run_a}[/] ({d.a['command']}, {d.a['started_at']}) -> "
        f"[bold]{run_b}[/] ({d.b['command']}, {d.b['started_at']})",
        highlight=False,
    )
    for rec in d.other:
        console.print(f"{rec['field']}: {rec['a']} -> {rec['b']}", highlight=False)
    if d.parameters:
        console.print(
            frame_table(
                pl.DataFrame([{k: str(v) for k, v in r.items()} for r in d.parameters]),
                title="parameters",
            )
        )
    else:
        console.print("parameters: unchanged")
    if d.inputs:
        console.print(
            frame_table(
                pl.DataFrame([{k: str(v) for k, v in r.items()} for r in d.inputs]), title="inputs"
            )
        )
    else:
        console.print("inputs: unchanged (same fingerprint)")
    if d.elasticity is not None:
        console.print(
            f"elasticities: {d.elasticity.height} of {d.n_compared} items moved "
            "beyond their intervals"
        )
        if d.elasticity.height:
            e = d.elasticity
            keys = [c for c in ("item_id", "market") if c in e.columns]

            def ci(side: str) -> pl.Expr:
                return pl.format(
                    "[{}, {}]",
                    pl.col(f"ci_low_{side}").round(2),
                    pl.col(f"ci_high_{side}").round(2),
                ).alias(f"interval {side}")

            console.print(
                frame_table(
                    e.select(
                        *keys,
                        pl.col("elasticity_a").alias("A"),
                        ci("a"),
                        pl.col("elasticity_b").alias("B"),
                        ci("b"),
                        "direction",
                    ),
                    title="moved elasticities",
                    floats=2,
                )
            )


def register(app: typer.Typer) -> None:
    """Add the runs command group to ``app``."""
    app.add_typer(runs_app, name="runs")
