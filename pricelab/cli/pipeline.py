"""``pricelab pipeline run``: the nightly job in one command; ``pipeline check``: its config."""

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
    err_console,
    guarded,
    print_json,
    write_output,
)

pipeline_app = typer.Typer(
    rich_markup_mode=None,
    help="The nightly job: ingest, validate, estimate, backtest, promote, optimize, monitor.",
    no_args_is_help=True,
)

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Pipeline YAML (default: $PRICELAB_PIPELINE_CONFIG, else ./pipeline.yaml; "
        "see examples/pipeline.yaml).",
        show_default=False,
    ),
]

_STYLE = {
    "ok": "green",
    "skipped": "dim",
    "refused": "yellow",
    "failed": "bold red",
    "not-run": "dim",
}


@pipeline_app.command("run")
@guarded(hold=False)  # each step is its own run, kept as it finishes (a re-run skips it)
def run(
    config: ConfigOpt = None,
    engine: Annotated[
        str | None, typer.Option(help="Estimation engine, overriding the config: local or spark.")
    ] = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    output: OutputOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Run every step that has something new to do; skip the rest and say why.

    Exit code: that of the first failing step (1 a check failed, 2 bad input), else 0.
    """
    result = api.pipeline(db, config=config, engine=engine)
    if output is not None:  # one row per step
        import polars as pl

        steps = [
            {"step": s.step, "status": s.status, "run_id": s.run_id, "message": s.message}
            for s in result.steps
        ]
        schema = dict.fromkeys(("step", "status", "run_id", "message"), pl.String)
        write_output(pl.DataFrame(steps, schema=schema), output)
    if json:
        print_json(result.to_dict())
    else:
        table = Table(title=f"pipeline on {result.db}", header_style="bold")
        for col in ("step", "status", "run", "message"):
            table.add_column(col)
        for s in result.steps:
            style = _STYLE.get(s.status, "")
            table.add_row(s.step, f"[{style}]{s.status}[/]", s.run_id or "", s.message)
        console.print(table)
        console.print(result.message, highlight=False)
        if result.tracking_message:
            console.print(result.tracking_message, highlight=False)
    if result.exit_code:
        err_console.print(f"[bold red]error:[/] {result.message}", highlight=False)
        raise typer.Exit(result.exit_code)


@pipeline_app.command("check")
@guarded
def check(
    config: ConfigOpt = None, db: DbOpt = None, json: JsonOpt = False, debug: DebugOpt = False
) -> None:
    """Validate the pipeline config; show the database and input files it would use (runs nothing)."""
    from pricelab.pipeline import input_files, load_pipeline_config
    from pricelab.store import resolve_db_path

    cfg = load_pipeline_config(config)
    files = input_files(cfg)
    path = resolve_db_path(db if db is not None else cfg["db"])
    if json:
        print_json({"db": str(path), "config": cfg, "files": {k: str(v) for k, v in files.items()}})
        return
    console.print(
        f"config ok; database {path}; input files: "
        + ", ".join(f"{k}={v}" for k, v in files.items()),
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add the ``pipeline`` group to ``app``."""
    app.add_typer(pipeline_app, name="pipeline")
