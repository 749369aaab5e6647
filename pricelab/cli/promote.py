"""``pricelab promote RUN_ID`` (the promotion gate) and ``pricelab registry`` (its history)."""

from __future__ import annotations

from typing import Annotated, Any

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
    frame_table,
    guarded,
    print_json,
    write_output,
)
from pricelab.errors import CheckFailed, UsageError


def _num(v: Any, pct: bool = False) -> str:
    if v is None:
        return ""
    if isinstance(v, str):
        return v
    return f"{v:.1%}" if pct else (f"{v:.4g}" if abs(v) < 1e6 else f"{v:.3e}")


def _print_comparison(comp: Any) -> None:
    t = comp.table()
    console.print(
        frame_table(
            t,
            title=f"gate backtest: {len(comp.origins)} origin(s) from "
            f"{comp.origins[0]}, {comp.config.horizon_weeks} weeks each",
            floats=3,
        )
    )
    checks = Table(title="gate checks", header_style="bold")
    for col in ("check", "candidate", "reference", "limit", "result", "rule"):
        checks.add_column(
            col, justify="right" if col in ("candidate", "reference", "limit") else "left"
        )
    for c in comp.checks:
        pct = c["check"] == "flags"
        checks.add_row(
            c["check"],
            _num(c["candidate"], pct),
            _num(c["reference"], pct),
            _num(c["limit"], pct),
            "[green]pass[/]" if c["passed"] else "[bold red]FAIL[/]",
            c["rule"],
        )
    console.print(checks)


def _print_history(df: pl.DataFrame) -> None:
    if df.height == 0:
        console.print(
            "no promotion yet; optimize and simulate use the latest estimate run "
            "(promote one with 'pricelab promote RUN_ID')"
        )
        return
    table = Table(
        title="model registry (newest first; the first row is in production)", header_style="bold"
    )
    for col in ("run_id", "model", "promoted_at", "by", "previous", "forced", "reason"):
        table.add_column(col, no_wrap=col != "reason", overflow="fold")
    for r in df.head(50).iter_rows(named=True):
        table.add_row(
            r["run_id"],
            r["model"] or "",
            f"{r['promoted_at']:%Y-%m-%d %H:%M:%S}",
            r["promoted_by"] or "",
            r["previous_run_id"] or "",
            "[bold yellow]yes[/]" if r["forced"] else "no",
            r["reason"] or "",
        )
    console.print(table)


@guarded
def promote(
    run_id: Annotated[
        str | None,
        typer.Argument(help="Estimate run to promote (or 'latest').", show_default=False),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Promote even if the gate refuses (needs --reason).")
    ] = False,
    reason: Annotated[
        str | None, typer.Option(help="Why: recorded in the registry.", show_default=False)
    ] = None,
    min_improvement_wape: Annotated[
        float,
        typer.Option(
            "--min-improvement-wape",
            help="Percent (relative) by which WAPE must beat production's; a tie keeps it.",
        ),
    ] = 1.0,
    tolerance_flags: Annotated[
        float,
        typer.Option(
            "--tolerance-flags", help="Points by which the share of flagged groups may grow."
        ),
    ] = 5.0,
    horizon_weeks: Annotated[int, typer.Option(help="Weeks predicted per origin.")] = 4,
    cutoffs: Annotated[int, typer.Option(help="Number of rolling origins.")] = 3,
    naive_weeks: Annotated[int, typer.Option(help="Window of the naive forecast.")] = 8,
    list_: Annotated[
        bool, typer.Option("--list", help="Show the promotion history instead.")
    ] = False,
    db: DbOpt = None,
    json: JsonOpt = False,
    output: OutputOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Promote an estimate run to production if it backtests better than production.

    Exit 0 when promoted (or already in production), 1 when the gate refuses (the
    comparison table is printed), 2 on bad usage.
    """
    if list_:
        registry(db=db, json=json, output=output, debug=debug)
        return
    if run_id is None:
        raise UsageError(
            "give the estimate run to promote (see 'pricelab runs list --command "
            "estimate'), or --list for the history"
        )
    res = api.promote(
        db,
        run_id,
        force=force,
        reason=reason,
        min_improvement_wape=min_improvement_wape,
        tolerance_flags=tolerance_flags,
        horizon_weeks=horizon_weeks,
        cutoffs=cutoffs,
        naive_weeks=naive_weeks,
    )
    if res.comparison is not None:
        write_output(res.comparison.table(), output)
    if json:
        print_json(res.to_dict())
    else:
        if res.comparison is not None:
            _print_comparison(res.comparison)
        elif res.error:
            console.print(f"gate backtest could not run: {res.error}", highlight=False)
        if res.pinned and not res.pinned["passed"]:
            console.print(f"rollback check: {res.pinned['rule']}", highlight=False)
        if res.status == "already-production":
            console.print(f"run {res.candidate} is already in production; nothing to do")
        elif res.promoted:
            prev = f" (replaces {res.previous})" if res.previous else " (first production run)"
            console.print(
                f"[bold green]promoted[/] run {res.candidate} to production{prev} by "
                f"{res.promoted_by}{' [bold yellow]FORCED[/]' if res.forced else ''}: "
                f"{res.reason}",
                highlight=False,
            )
    if not res.ok:
        failed = ", ".join(c["check"] for c in res.failed_checks())
        raise CheckFailed(
            f"gate refused run {res.candidate} ({failed} check failed); production "
            f"stays {res.previous or 'unset'}; --force --reason TEXT overrides"
        )


@guarded
def registry(
    db: DbOpt = None, json: JsonOpt = False, output: OutputOpt = None, debug: DebugOpt = False
) -> None:
    """Show the promotion history: who promoted which estimate run, when and why."""
    df = api.registry(db)
    write_output(df, output)
    if json:
        print_json(df.to_dicts())
        return
    _print_history(df)


def register(app: typer.Typer) -> None:
    """Add ``promote`` and ``registry`` to ``app``."""
    app.command("promote")(promote)
    app.command("registry")(registry)
