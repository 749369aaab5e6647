"""``pricelab simulate`` (what-if scenarios) and ``pricelab backtest`` (model scores)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import polars as pl
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

if TYPE_CHECKING:  # imported lazily: pricelab.simulate pulls scipy.stats
    from pricelab.simulate import SimulationResult


def _pct(v: float | None) -> str:
    return "n/a" if v is None or v != v else f"{v:+.1f}%"


def _num(v: float | None) -> str:
    return "n/a" if v is None or v != v else f"{v:,.0f}"


def _totals_table(result: SimulationResult) -> Table:
    t = Table(
        title=f"Scenarios vs baseline over {result.scenario.horizon_weeks} weeks "
        f"(money in {result.base_currency}; "
        + ("90% intervals)" if result.draws else "no intervals: --draws 0)"),
        header_style="bold",
    )
    t.add_column("scenario")
    for k in ("units", "revenue", "profit"):
        t.add_column(k, justify="right")
        t.add_column("Δ", justify="right")
        t.add_column("90% interval", justify="right")
    tot = result.totals()
    if tot.height:
        r0 = tot.row(0, named=True)
        t.add_row(
            "baseline",
            *[
                c
                for k in ("quantity", "revenue", "profit")
                for c in (_num(r0[f"baseline_{k}"]), "", "")
            ],
        )
    for r in tot.iter_rows(named=True):
        cells = []
        for k in ("quantity", "revenue", "profit"):
            cells += [
                _num(r[f"scenario_{k}"]),
                _pct(r[f"{k}_delta_pct"]),
                f"{_num(r[f'{k}_low'])} – {_num(r[f'{k}_high'])}",
            ]
        t.add_row(r["scenario"], *cells)
    return t


def _side_by_side(result: SimulationResult, max_rows: int = 40) -> Table:
    agg = result.aggregates.filter(pl.col("market") != "(all)")
    names = [s.name for s in result.scenario.scenarios]
    t = Table(
        title="Change vs baseline by market and category (units / revenue / profit)",
        header_style="bold",
    )
    t.add_column("market")
    t.add_column("category")
    for n in names:
        t.add_column(n, justify="right")
    keys = agg.select("market", "category").unique(maintain_order=True)
    for m, c in keys.head(max_rows).iter_rows():
        cells = []
        for n in names:
            r = agg.filter(
                (pl.col("scenario") == n) & (pl.col("market") == m) & (pl.col("category") == c)
            ).row(0, named=True)
            cells.append(
                " / ".join(_pct(r[f"{k}_delta_pct"]) for k in ("quantity", "revenue", "profit"))
            )
        t.add_row(m, "[bold]all[/]" if c == "(all)" else c, *cells)
    if keys.height > max_rows:
        t.caption = f"{max_rows} of {keys.height} rows shown; --json or --output for all"
    return t


def _print_cannibalised(result: SimulationResult) -> None:
    """With cross-price effects: the units each scenario's siblings gain or lose."""
    import polars as pl

    t = result.table
    if "cannibalised_quantity" not in t.columns:
        return
    moved = t.filter(pl.col("cannibalised_quantity").fill_null(0.0).abs() > 1e-9)
    if not moved.height:
        return
    per = moved.group_by("scenario", maintain_order=True).agg(
        pl.col("cannibalised_quantity").filter(pl.col("cannibalised_quantity") < 0).sum(),
        pl.col("cannibalised_quantity")
        .filter(pl.col("cannibalised_quantity") > 0)
        .sum()
        .alias("g"),
    )
    for name, lost, gained in per.iter_rows():
        console.print(
            f"scenario {name}: siblings' cannibalised units {lost:,.1f} lost, "
            f"{gained:,.1f} gained (cross-price effects; column cannibalised_quantity)",
            highlight=False,
        )


def _print_replay(res: Any, output: Path | None, json: bool) -> None:
    """A markdown replay: its rows to --output, then JSON or the summary and tables."""
    write_output(res.table, output)
    if json:
        print_json(res.to_dict())
        return
    console.print(res.summary, highlight=False)
    cols = {
        "market": "market",
        "expected_units": "units plan",
        "realised_units": "units real",
        "expected_revenue": "revenue plan",
        "realised_revenue": "revenue real",
        "revenue_diff_pct": "diff %",
    }
    by_m = res.by_market.select([pl.col(c).alias(n) for c, n in cols.items()])
    console.print(frame_table(by_m, title="observed weeks by market (market currency)", floats=0))
    pools = res.pools.sort("realised_sell_through_pct", descending=True, nulls_last=True)
    shown = pools.select(
        pl.col("item_id").alias("item"),
        pl.when(pl.col("market") == "").then(pl.lit("all")).otherwise("market").alias("market"),
        pl.col("stock").alias("stock"),
        pl.col("planned_sell_through_pct").alias("plan %"),
        pl.col("realised_sell_through_pct").alias("real %"),
    )
    console.print(frame_table(shown, title="sell-through by stock pool", max_rows=12, floats=1))
    console.print(f"stored as run {res.run_id} (markdown run {res.markdown_run})")
    for w in res.warnings:
        err_console.print(f"[yellow]warning:[/] {w}", highlight=False)


@guarded
def simulate(
    scenario: Annotated[
        Path,
        typer.Option(
            "--scenario",
            "-s",
            help="Scenario file (YAML): baseline_weeks, horizon_weeks, scenarios.",
            show_default=False,
        ),
    ],
    estimates: Annotated[
        str | None,
        typer.Option(
            help="Estimate run id to use (default: the production run, else the newest).",
            show_default=False,
        ),
    ] = None,
    draws: Annotated[
        int,
        typer.Option(
            help="Elasticity draws for the aggregate 90% intervals "
            "(0: point projections and row intervals only)."
        ),
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the elasticity draws.")] = 0,
    engine: Annotated[
        str,
        typer.Option(
            help="local | spark (spark aggregates the baseline "
            "window of --source; --db then only needs the "
            "estimates)."
        ),
    ] = "local",
    source: Annotated[
        str | None,
        typer.Option(
            help="Sales history for --engine spark: a Parquet file/folder, delta:PATH or a table.",
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
    """What-if KPIs of price scenarios against the baseline, stored as a run.

    A scenario file holding 'markdown_run: latest' (or a run id) replays that markdown
    plan against the sales history instead: expected vs. realised per market and pool.
    """
    result = api.simulate_or_replay(
        db,
        scenario,
        estimates=estimates,
        draws=draws,
        seed=seed,
        mlflow=tracking_arg(mlflow, mlflow_uri, mlflow_experiment, strict_tracking),
        engine=engine,
        source=source,
    )
    if hasattr(result, "markdown_run"):  # the file replays a markdown run
        _print_replay(result, output, json)
        return
    write_output(result.table, output)
    print_tracking(result)
    if json:
        print_json(with_tracking(result.to_dict(), result))
        return
    console.print(_totals_table(result))
    console.print(_side_by_side(result))
    _print_cannibalised(result)
    console.print(
        f"run {result.run_id}: {result.table.height} scenario rows, estimates run "
        f"{result.estimates_run}, baseline weeks after {result.window['after']} "
        f"through {result.window['through']}",
        highlight=False,
    )
    for w in result.warnings:
        err_console.print(f"[yellow]warning:[/] {w}", highlight=False)


@guarded
def backtest(
    cutoff: Annotated[
        str,
        typer.Option(
            help="Last origin (YYYY-MM-DD): fit before it, predict from it on.", show_default=False
        ),
    ],
    horizon_weeks: Annotated[int, typer.Option(help="Weeks predicted after each origin.")] = 8,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="Model to score (repeat for several; default poisson and hierarchical).",
            show_default=False,
        ),
    ] = None,
    cutoffs: Annotated[
        int, typer.Option(help="Number of origins, horizon_weeks apart (rolling origin).")
    ] = 1,
    naive_weeks: Annotated[int, typer.Option(help="Window of the naive last-weeks average.")] = 8,
    rank_by: Annotated[
        str,
        typer.Option(
            help="Score that ranks the methods: deviance "
            "(proper for expected counts), wape or rmse."
        ),
    ] = "deviance",
    db: DbOpt = None,
    json: JsonOpt = False,
    output: OutputOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Fit each model before the cutoff, predict after it, and score against what happened."""
    models = tuple(model) if model else ("poisson", "hierarchical")
    result = api.backtest(
        db,
        cutoff=cutoff,
        horizon_weeks=horizon_weeks,
        models=models,
        cutoffs=cutoffs,
        naive_weeks=naive_weeks,
        rank_by=rank_by,
    )
    write_output(result.scores, output)
    if json:
        print_json(result.to_dict())
        return
    show = [
        "model",
        "rank",
        "deviance",
        "wape",
        "bias_pct",
        "rmse",
        "coverage_90",
        "actual_units",
        "predicted_units",
        "n_rows",
        "n_fallback",
        "dispersion",
    ]
    console.print(
        frame_table(
            result.overall().select(show),
            title=f"Backtest over all origins (ranked by {rank_by}, lower is better)",
        )
    )
    if len(result.parameters["cutoffs"]) > 1:
        per = result.scores.filter(pl.col("cutoff") != "all").pivot(
            on="model", index="cutoff", values=rank_by, aggregate_function="first"
        )
        console.print(frame_table(per, title=f"{rank_by} by origin"))
    console.print(
        f"run {result.run_id}: best {result.best()}; origins "
        f"{', '.join(result.parameters['cutoffs'])}, horizon {horizon_weeks} weeks",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``simulate`` and ``backtest`` to ``app``."""
    app.command("simulate")(simulate)
    app.command("backtest")(backtest)
