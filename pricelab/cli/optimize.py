"""``pricelab optimize``: recommended price per item × market, stored as a run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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
    err_console,
    frame_table,
    guarded,
    print_plan_run,
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
from pricelab.errors import CheckFailed


@guarded
def optimize(
    constraints: Annotated[
        Path | None,
        typer.Option(
            help="Constraints YAML (objective, bounds, margin floor, parity, ladder, ...)."
        ),
    ] = None,
    demand: Annotated[
        Path | None, typer.Option(help="Demand table file instead of the database's estimates.")
    ] = None,
    cross: Annotated[
        Path | None,
        typer.Option(
            help="With --demand: cross-price elasticities (item_id, market, other_item_id, "
            "elasticity) for joint pricing of substitutes.",
            show_default=False,
        ),
    ] = None,
    estimates: Annotated[
        str | None,
        typer.Option(
            help="Estimate run id (default: production, else latest); a cross run "
            "prices substitutes jointly."
        ),
    ] = None,
    baseline_weeks: BaselineWeeksOpt = 8,
    draws: Annotated[
        int | None, typer.Option(help="Elasticity draws for profit intervals (P5-P95).")
    ] = None,
    risk: Annotated[str | None, typer.Option(help="Risk constraint, e.g. 'cvar:0.1'.")] = None,
    expected: Annotated[
        bool,
        typer.Option(
            "--expected",
            help="Plan on expected profit over the elasticity draws (--draws, default 200) "
            "instead of on the point estimates.",
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed for the draws.")] = 0,
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 2 instead of skipping rows with unusable data.")
    ] = False,
    seasonality: Annotated[
        str,
        typer.Option(
            help="auto: move base units to the horizon's season with the estimate's terms; off."
        ),
    ] = "auto",
    allow_conflicts: Annotated[
        bool,
        typer.Option(
            "--allow-conflicts",
            help="Exit 0 when rows whose constraints conflict were kept at their current "
            "price (the plan is written either way; default exit 1).",
        ),
    ] = False,
    wide: Annotated[
        bool,
        typer.Option("--wide", help="Show every column (default: what fits 80 columns)."),
    ] = False,
    db: DbOpt = None,
    json: JsonOpt = False,
    output: OutputOpt = None,
    debug: DebugOpt = False,
    mlflow: MlflowOpt = None,
    mlflow_uri: MlflowUriOpt = None,
    mlflow_experiment: MlflowExperimentOpt = None,
    strict_tracking: StrictTrackingOpt = False,
) -> None:
    """Recommend margin- or revenue-maximizing prices under business constraints."""
    run = api.optimize(
        db,
        demand=demand,
        cross=cross,
        constraints=constraints,
        estimates=estimates,
        baseline_weeks=baseline_weeks,
        draws=draws,
        risk=risk,
        expected=expected,
        seed=seed,
        strict=strict,
        seasonality=seasonality,
        conflicts="keep",
        mlflow=tracking_arg(mlflow, mlflow_uri, mlflow_experiment, strict_tracking),
    )
    plan = run.plan
    doc = with_tracking(run.to_dict(), run) if json else None
    if print_plan_run(run, output, json, doc=doc, notes=print_tracking):
        _conflict_exit(plan, run.run_id, allow_conflicts)
        return
    _print_tables(plan, wide)
    if plan.skipped.height:
        err_console.print(
            f"{plan.skipped.height} row(s) skipped: "
            + ", ".join(
                f"{r['item_id']}/{r['market']} ({r['reason']})"
                for r in plan.skipped.head(5).iter_rows(named=True)
            ),
            highlight=False,
        )
    _conflict_exit(plan, run.run_id, allow_conflicts)


def _conflict_exit(plan: Any, run_id: str | None, allow: bool) -> None:
    """Exit 1 (plan written) when rows were kept at current price for conflicts."""
    rows = plan.extra.get("conflicts") or []
    if not rows or allow:
        return
    listed = "; ".join(f"{r['item_id']}/{r['market']}: {r['reason']}" for r in rows[:10])
    more = f"; and {len(rows) - 10} more" if len(rows) > 10 else ""
    where = f" (run {run_id})" if run_id else ""
    raise CheckFailed(
        f"plan written{where} with {len(rows)} row(s) in conflict kept at their current "
        f"price: {listed}{more} (relax the named constraints, or --allow-conflicts to exit 0)"
    )


#: short headers so the default tables fit an 80-column terminal or a pipe
_UPLIFT = {
    "rows": "rows",
    "baseline_profit": "profit now",
    "expected_profit": "profit plan",
    "profit_%": "profit %",
    "revenue_%": "revenue %",
}
_CHANGES = {
    "item_id": "item",
    "market": "market",
    "current_price": "current",
    "recommended_price": "new",
    "price_change_pct": "change %",
    "binding": "binding",
}


def _print_tables(plan: Any, wide: bool) -> None:
    """Uplift by market (and category) and the largest changes; ``wide``: every column."""
    t = plan.table
    keys = ["market"]
    if "category" in t.columns and t["category"].null_count() < t.height:
        keys.append("category")
    for key in keys:
        up = plan.uplift_by(key)
        if not wide:
            up = up.select(key, *[pl.col(c).alias(n) for c, n in _UPLIFT.items()])
        console.print(frame_table(up, title=f"uplift by {key} (base currency)", floats=1))
    changes = t.sort(pl.col("price_change_pct").abs(), descending=True)
    cols = dict(_CHANGES)
    if wide:
        extra = ["expected_quantity", "baseline_quantity", "expected_profit", "baseline_profit"]
        extra += ["extrapolated", "status", "reason"]
        extra += ["cannibalised_quantity"]
        cols.update({c: c for c in extra if c in t.columns})
        shown = changes.select(list(cols))
    else:
        shown = changes.select([pl.col(c).alias(n) for c, n in cols.items()])
    console.print(frame_table(shown, title="largest price changes", max_rows=12, floats=2))


def register(app: typer.Typer) -> None:
    """Add ``optimize`` to ``app``."""
    app.command("optimize")(optimize)
