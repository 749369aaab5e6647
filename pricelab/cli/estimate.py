"""``pricelab estimate``: elasticity per item × market, stored as a run."""

from __future__ import annotations

from pathlib import Path
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
    said_written,
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
        str,
        typer.Option(
            help="ols | poisson | panel | hierarchical | iv | cross (cross-price "
            "elasticities within each category)."
        ),
    ] = "hierarchical",
    cross: Annotated[
        str | None,
        typer.Option(
            help="cross: 'full' (every sibling's price; default) or 'index' "
            "(leave-one-out category price index, for large categories).",
            show_default=False,
        ),
    ] = None,
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
        str | None,
        typer.Option(
            help="Standard errors: cluster | HC3 | HC1 | HC0 | nonrobust | HAC (HAC: ols only). "
            "Default: cluster (13-week blocks, leverage-corrected) for ols, poisson and "
            "hierarchical; HC1 for iv.",
            show_default=False,
        ),
    ] = None,
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
    controls: Annotated[
        str | None,
        typer.Option(
            help="Controls: 'default' (promo, Fourier pair, trend), 'none', or a comma list of "
            "promo, fourier, fourier2, trend and numeric sales columns (e.g. 'promo,deal').",
            show_default=False,
        ),
    ] = None,
    fixed_effects: Annotated[
        str | None,
        typer.Option(
            "--fixed-effects",
            help="ols/panel: comma list of columns whose levels are absorbed within each "
            "group, e.g. 'market' with --by item_id (a panel with market effects only).",
            show_default=False,
        ),
    ] = None,
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
    from pricelab._alloc import tune_allocator
    from pricelab.elasticity.progress import rich_progress

    tune_allocator()  # fewer page faults in the block kernels (see pricelab/_alloc.py)

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
            cross=cross,
            controls=controls,
            fixed_effects=fixed_effects,
            progress=progress if engine == "local" and source is None else None,
            mlflow=tracking_arg(mlflow, mlflow_uri, mlflow_experiment, strict_tracking),
            output=output,  # written by the library while it stores the results
        )
    t = run.elasticities
    if model == "cross":
        _print_cross(run, output, json)
        return
    said_written(t, output)
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
    # short headers: the table fits 80 columns ("share_f…" cut before)
    dist = run.distribution()
    dist = dist.rename({k: v for k, v in _SHORT.items() if k in dist.columns})
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


def _print_cross(run: object, output: Path | None, json: bool) -> None:
    """``--model cross``: the matrix in long form to ``--output``, a readable summary."""
    import polars as pl

    c = run.cross  # type: ignore[attr-defined]
    said_written(c, output)
    d = run.to_dict()  # type: ignore[attr-defined]
    if json:
        print_json(d)
        return
    x = d["cross"]
    console.print(
        f"[bold green]estimated[/] {d['estimated']} of {d['groups']} own-price and "
        f"{x['estimated_pairs']} of {x['pairs']} cross-price elasticities "
        f"(model [bold]cross[/], {x['mode']}; run {d['run_id']}); "
        f"{x['substitutes_significant']} significant substitutes, "
        f"{x['complements_significant']} complements; "
        f"{x['weeks_dropped_missing_sibling_price']} weeks dropped for a missing sibling price",
        highlight=False,
    )
    first = c.select("market").unique().sort("market", nulls_last=True)["market"][0]
    one = c.filter(pl.col("market").is_null() if first is None else pl.col("market") == first)
    where = "pooled" if first is None else f"market {first}"
    sizes = one.group_by("category").agg(pl.col("item_id").n_unique().alias("n")).sort("category")
    for cat, n in sizes.iter_rows():
        if n > 8:
            continue
        m = (
            one.filter(pl.col("category") == cat)
            .pivot(on="other_item_id", index="item_id", values="elasticity")
            .sort("item_id")
        )
        title = f"{cat} ({where}): row item's units vs column item's price"
        console.print(frame_table(m, title=title, max_rows=30, floats=2))
    strong = (
        c.filter((pl.col("other_item_id") != pl.col("item_id")) & (pl.col("ci_low") > 0))
        .sort("elasticity", descending=True)
        .select("item_id", "market", "other_item_id", "elasticity", "std_error", "n_obs")
    )
    if strong.height:
        console.print(
            frame_table(strong, title="strongest significant substitutes", max_rows=10, floats=2)
        )


_SHORT = {"median_se": "se", "share_flagged": "flagged"}


def register(app: typer.Typer) -> None:
    """Add ``estimate`` to ``app``."""
    app.command("estimate")(estimate)
