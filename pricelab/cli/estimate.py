"""``pricelab estimate``: elasticity per item × market, stored as a run."""

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
from pricelab.cli._tracking import (
    MlflowExperimentOpt,
    MlflowOpt,
    MlflowUriOpt,
    StrictTrackingOpt,
    print_tracking,
    tracking_arg,
    with_tracking,
)


@guarded
def estimate(
    model: Annotated[
        str, typer.Option(help="ols | poisson | panel | hierarchical | iv.")
    ] = "hierarchical",
    by: Annotated[
        str | None,
        typer.Option(
            help="Group columns, e.g. 'item_id,market' "
            "(panel: pooling level, default category,market)."
        ),
    ] = None,
    instrument: Annotated[
        str | None, typer.Option(help="iv: instrument column (e.g. unit_cost) or 'hausman'.")
    ] = None,
    slope: Annotated[
        str, typer.Option(help="panel: 'item' (one slope per item) or 'common'.")
    ] = "item",
    before: Annotated[str | None, typer.Option(help="Use only weeks before this ISO date.")] = None,
    se: Annotated[
        str, typer.Option(help="Standard errors: HC1 | HC0 | nonrobust | HAC (HAC: ols only).")
    ] = "HC1",
    hac_lags: Annotated[
        int | None, typer.Option(help="HAC lags in weeks (default floor(4 (n/100)^(2/9))).")
    ] = None,
    tau: Annotated[
        str,
        typer.Option(
            help="hierarchical: between-item spread per pooling "
            "level (level) or one per layer (common)."
        ),
    ] = "level",
    engine: Annotated[
        str,
        typer.Option(
            help="local | spark (spark reads --source or the database's sales; pricelab[spark])."
        ),
    ] = "local",
    source: Annotated[
        str | None,
        typer.Option(
            help="Read sales from this Parquet file/folder, "
            "delta:PATH or table instead of the database; "
            "stored as a run only with --db.",
            show_default=False,
        ),
    ] = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    output: OutputOpt = None,
    debug: DebugOpt = False,
    mlflow: MlflowOpt = None,
    mlflow_uri: MlflowUriOpt = None,
    mlflow_experiment: MlflowExperimentOpt = None,
    strict_tracking: StrictTrackingOpt = False,
) -> None:
    """Estimate price elasticities per item × market and store them as a run."""
    from pricelab.elasticity.progress import rich_progress

    with rich_progress(f"estimating ({model})") as progress:
        run = api.estimate(
            db,
            model=model,
            by=by,
            instrument=instrument,
            slope=slope,
            before=before,
            engine=engine,
            source=source,
            se=se,
            hac_lags=hac_lags,
            tau=tau,
            progress=progress if engine == "local" and source is None else None,
            mlflow=tracking_arg(mlflow, mlflow_uri, mlflow_experiment, strict_tracking),
        )
    t = run.elasticities
    write_output(t, output)
    print_tracking(run)
    if json:
        print_json(with_tracking(run.to_dict(), run))
        return
    d = run.to_dict()
    where = f"run {run.run_id}" if run.run_id else "not stored: no --db"
    console.print(
        f"[bold green]estimated[/] {d['estimated']} of {d['groups']} groups with "
        f"model [bold]{d['model']}[/] ({where}); median elasticity "
        f"{d['median_elasticity']:.2f}"
        if d["median_elasticity"] is not None
        else f"no group could be estimated ({where})"
    )
    dist = run.distribution()
    if dist.height:
        console.print(
            frame_table(dist, title="elasticity by category and market", max_rows=60, floats=2)
        )
    flagged = run.flagged()
    if flagged.height:
        cols = [
            c
            for c in ("item_id", "market", "elasticity", "std_error", "n_obs", "flags")
            if c in t.columns
        ]
        console.print(
            frame_table(flagged.select(cols), title="flagged groups", max_rows=15, floats=2)
        )
        console.print("flags: " + ", ".join(f"{k} {v}" for k, v in d["flags"].items()))


def register(app: typer.Typer) -> None:
    """Add ``estimate`` to ``app``."""
    app.command("estimate")(estimate)
