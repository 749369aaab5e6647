"""What a report shows, read from the store: which runs, and their tables.

With a run id, that run fills its own section, its parents (transitively) fill theirs, and
the other sections use the latest run that descends from one already chosen; a section with
no such run says so instead of showing unrelated results. Without ``--run`` the report is
built around the latest plan (so the elasticities shown are the ones it was built on) and
shows the latest simulate run; without a plan, the latest run of each command.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from pricelab.errors import UsageError
from pricelab.quality import QualityReport, check_loaded
from pricelab.store.db import Store
from pricelab.store.runs import get_run, latest_run

SLOTS = {"estimate": "elasticities", "optimize": "plans", "simulate": "scenarios"}


@dataclass
class ReportData:
    """Everything the report renders; absent parts are None."""

    db: str
    generated_at: dt.datetime
    base_currency: str
    runs: dict[str, dict[str, Any] | None]
    anchor: str | None
    quality: QualityReport | None
    sales_summary: dict[str, Any] | None
    weekly: pl.DataFrame | None
    fx: dict[str, float] = field(default_factory=dict)
    currency: dict[str, str] = field(default_factory=dict)
    elasticities: pl.DataFrame | None = None
    cross: pl.DataFrame | None = None  # a cross estimate run's matrix (long form)
    plan: pl.DataFrame | None = None
    scenarios: pl.DataFrame | None = None
    revenue: pl.DataFrame | None = None  # item_id, market, revenue_base over the last 13 weeks


def _children(store: Store, command: str, chosen: set[str]) -> str | None:
    rows = store.execute(
        "SELECT run_id, parents FROM runs WHERE command = ? AND status = 'ok' "
        "ORDER BY started_at DESC, run_id DESC",
        [command],
    )
    for run_id, parents in rows:
        if chosen.intersection(json.loads(parents or "[]")):
            return str(run_id)
    return None


def _latest(store: Store, command: str) -> dict[str, Any] | None:
    run_id = latest_run(store, command)
    return get_run(store, run_id) if run_id else None


def resolve_runs(store: Store, run_id: str | None) -> dict[str, dict[str, Any] | None]:
    """The estimate, optimize and simulate runs a report shows (None when absent).

    Raises
    ------
    NotFoundError
        ``run_id`` does not exist.
    UsageError
        ``run_id`` is not an estimate, optimize or simulate run.
    """
    ids: dict[str, str | None] = dict.fromkeys(SLOTS)
    if run_id is None:
        plan = latest_run(store, "optimize")
        if plan is not None:  # the latest plan with the estimate it was built on
            return resolve_runs(store, plan) | {"simulate": _latest(store, "simulate")}
        for command in SLOTS:
            ids[command] = latest_run(store, command)
        if ids.get("estimate") is not None:  # the serving estimate: production, else latest
            from pricelab.store.runs import resolve_estimates

            ids["estimate"] = resolve_estimates(store, None)
    else:
        rec = get_run(store, run_id)
        if rec["command"] not in SLOTS:
            raise UsageError(
                f"run {run_id} is a {rec['command']} run; a report is built from an "
                f"{', '.join(SLOTS)} run"
            )
        ids[rec["command"]] = run_id
        queue, seen = [rec], {run_id}
        while queue:
            for parent in queue.pop().get("parents") or []:
                if parent in seen:
                    continue
                seen.add(parent)
                try:
                    prec = get_run(store, parent)
                except Exception:  # noqa: BLE001 - a dangling parent id is not fatal here
                    continue
                if prec["command"] in ids and ids[prec["command"]] is None:
                    ids[prec["command"]] = parent
                queue.append(prec)
        for command in SLOTS:
            if ids[command] is None:
                ids[command] = _children(store, command, {v for v in ids.values() if v})
    return {c: (get_run(store, i) if i else None) for c, i in ids.items()}


def _with_category(df: pl.DataFrame, store: Store) -> pl.DataFrame:
    if "category" in df.columns or "item_id" not in df.columns:
        return df
    items = store.query("SELECT item_id, any_value(category) AS category FROM items GROUP BY 1")
    if items.height == 0:
        return df.with_columns(pl.lit(None, dtype=pl.String).alias("category"))
    return df.join(items, on="item_id", how="left")


def _plan_frame(
    store: Store, plan: pl.DataFrame, est: pl.DataFrame | None, fx: dict[str, float]
) -> pl.DataFrame:
    """The plan with ``category``, ``elasticity`` (+ interval), ``unit_cost`` and ``fx_rate``.

    ``unit_cost`` when the plan lacks it is c = p0 - baseline_profit / baseline_quantity,
    exact for the contract's baseline profit (p0 - c) q0.
    """
    df = _with_category(plan, store)
    keys = [k for k in ("item_id", "market") if k in df.columns]
    if est is not None and est.height and keys and all(k in est.columns for k in keys):
        extra = [
            c
            for c in ("elasticity", "ci_low", "ci_high")
            if c not in df.columns and c in est.columns
        ]
        if extra:
            df = df.join(est.select(*keys, *extra), on=keys, how="left")
    if "unit_cost" not in df.columns:
        df = df.with_columns(
            (
                pl.col("current_price") - pl.col("baseline_profit") / pl.col("baseline_quantity")
            ).alias("unit_cost")
        )
    df = df.drop("fx_rate", strict=False).with_columns(
        pl.col("market").replace_strict(fx, default=1.0, return_dtype=pl.Float64).alias("fx_rate")
    )
    return df


def _sales_summary(
    store: Store,
) -> tuple[dict[str, Any] | None, pl.DataFrame | None, pl.DataFrame | None]:
    if store.count("sales") == 0:
        return None, None, None
    n, items, markets, lo, hi, units = store.execute(
        "SELECT count(*), count(DISTINCT item_id), count(DISTINCT market), min(date), max(date), "
        "sum(quantity) FROM sales"
    )[0]
    summary = {
        "rows": int(n),
        "items": int(items),
        "markets": int(markets),
        "first_week": lo,
        "last_week": hi,
        "units": int(units),
    }
    weekly = store.query(
        "SELECT market, date_trunc('week', date)::DATE AS week, sum(quantity)::DOUBLE AS units "
        "FROM sales GROUP BY 1, 2 ORDER BY 1, 2"
    )
    revenue = store.query(
        "SELECT s.item_id, s.market, sum(s.price * s.quantity / coalesce(m.fx_rate, 1.0)) "
        "AS revenue_base FROM sales s LEFT JOIN markets m USING (market) "
        "WHERE s.date > (SELECT max(date) FROM sales) - INTERVAL 91 DAY GROUP BY 1, 2"
    )
    return summary, weekly, revenue


def load_report_data(store: Store, run_id: str | None = None) -> ReportData:
    """Read every table a report needs; see the module docstring for which runs are used."""
    runs = resolve_runs(store, run_id)
    markets = store.query("SELECT market, fx_rate, currency FROM markets")
    fx = {m: float(r) for m, r, _ in markets.iter_rows()}
    currency = {m: c for m, _, c in markets.iter_rows() if c}
    summary, weekly, revenue = _sales_summary(store)
    quality = check_loaded(store) if summary is not None else None
    data = ReportData(
        db=str(store.path),
        generated_at=dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None),
        base_currency=store.meta("base_currency", "EUR") or "EUR",
        runs=runs,
        anchor=run_id,
        quality=quality,
        sales_summary=summary,
        weekly=weekly,
        fx=fx,
        currency=currency,
        revenue=revenue,
    )
    if runs["estimate"]:
        est = store.read_result("elasticities", runs["estimate"]["run_id"])
        data.elasticities = _with_category(est, store) if est.height else None
        from pricelab.demand.from_store import cross_table

        data.cross = cross_table(store, runs["estimate"]["run_id"])
    if runs["optimize"]:
        plan = store.read_result("plans", runs["optimize"]["run_id"])
        if plan.height:
            data.plan = _plan_frame(store, plan, data.elasticities, fx)
    if runs["simulate"]:
        sc = store.read_result("scenarios", runs["simulate"]["run_id"])
        if sc.height:
            data.scenarios = sc.with_columns(
                pl.col("market")
                .replace_strict(fx, default=1.0, return_dtype=pl.Float64)
                .alias("fx_rate")
            )
    return data
