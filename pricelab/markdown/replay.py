"""Replay a stored markdown plan against the sales history: expected vs. realised.

A database-mode markdown run plans weeks 1..T starting the week after the last sales week
(its ``demand_model.from_week`` parameter). Once those weeks have happened and their sales
are ingested, the replay lines the plan up with them week by week: the planned price and
expected units next to the realised price (average paid) and units, per market (revenue in
the market's currency) and per stock pool (realised sell-through). Weeks without sales rows
yet are reported as not observed and left out of the expected-vs-realised comparison.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from pricelab.errors import NotFoundError, UsageError
from pricelab.store import Store

KEYS = ("markdown_run", "description")


@dataclass
class MarkdownReplay:
    """Per item × market × week rows, per-market and per-pool comparisons, totals."""

    markdown_run: str
    table: pl.DataFrame
    by_market: pl.DataFrame
    pools: pl.DataFrame
    weeks: int
    weeks_observed: int
    from_week: str
    run_id: str | None = None
    warnings: list[str] = field(default_factory=list)

    def totals(self) -> dict[str, Any]:
        """Units expected and realised over the observed weeks, and the season's plan."""
        seen = self.table.filter(pl.col("observed"))
        exp_u = float(seen.select(pl.col("expected_units").sum()).item())
        real_u = float(seen.select(pl.col("realised_units").sum()).item())
        return {
            "expected_units": exp_u,
            "realised_units": real_u,
            "units_diff_pct": 100 * (real_u / exp_u - 1) if exp_u > 0 else None,
            "season_expected_units": float(
                self.table.select(pl.col("expected_units").sum()).item()
            ),
            "mean_abs_price_gap_pct": float(
                seen.select(pl.col("price_gap_pct").abs().mean()).item() or 0.0
            ),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-able result."""
        return {
            "run_id": self.run_id,
            "markdown_run": self.markdown_run,
            "from_week": self.from_week,
            "weeks": self.weeks,
            "weeks_observed": self.weeks_observed,
            "totals": self.totals(),
            "by_market": self.by_market.to_dicts(),
            "warnings": self.warnings,
        }

    @property
    def summary(self) -> str:
        """One paragraph for people."""
        t = self.totals()
        diff = "" if t["units_diff_pct"] is None else f" ({t['units_diff_pct']:+.1f}%)"
        return (
            f"markdown run {self.markdown_run} replayed: {self.weeks_observed} of {self.weeks} "
            f"planned weeks (from {self.from_week}) have sales; expected "
            f"{t['expected_units']:,.0f} units, realised {t['realised_units']:,.0f}{diff}; "
            f"realised prices {t['mean_abs_price_gap_pct']:.1f}% from the plan on average"
        )


def _resolve(store: Store, ref: str) -> tuple[str, dict[str, Any]]:
    if ref == "latest":
        rows = store.execute(
            "SELECT run_id, parameters FROM runs WHERE command = 'markdown' AND status = 'ok' "
            "ORDER BY started_at DESC, run_id DESC LIMIT 1"
        )
        if not rows:
            raise NotFoundError(
                "markdown_run: latest: no markdown run in the database; "
                "run 'pricelab markdown --db ...' first"
            )
    else:
        rows = store.execute("SELECT run_id, parameters, command FROM runs WHERE run_id = ?", [ref])
        if not rows:
            raise NotFoundError(f"markdown_run {ref!r} not found; see 'pricelab runs list'")
        if rows[0][2] != "markdown":
            raise UsageError(f"markdown_run {ref!r} is a '{rows[0][2]}' run, not a markdown run")
    params = rows[0][1]
    return str(rows[0][0]), json.loads(params) if isinstance(params, str) else dict(params or {})


def replay_markdown(store: Store, ref: str = "latest", *, record: bool = True) -> MarkdownReplay:
    """Line the markdown run ``ref`` (``latest`` or a run id) up with the sales history."""
    run, params = _resolve(store, ref)
    start = (params.get("demand_model") or {}).get("from_week")
    if not start:
        raise UsageError(
            f"markdown run {run} was planned from files: its weeks have no dates; "
            "replay a database-mode markdown run"
        )
    first = dt.date.fromisoformat(start)
    plan = store.query(
        "SELECT item_id, market, week, price AS planned_price, discount_pct, expected_units, "
        "expected_revenue FROM markdown_plans WHERE run_id = ? ORDER BY item_id, market, week",
        [run],
    )
    weeks = int(plan.select(pl.col("week").max()).item() or 0)
    end = first + dt.timedelta(weeks=weeks)
    sales = store.query(
        "SELECT item_id, market, date_diff('day', ?::DATE, date) // 7 + 1 AS week, "
        "sum(quantity)::DOUBLE AS realised_units, sum(price * quantity)::DOUBLE AS realised_revenue "
        "FROM sales WHERE date >= ? AND date < ? GROUP BY ALL",
        [first, first, end],
    ).with_columns(pl.col("week").cast(plan["week"].dtype))
    observed = sales.select(pl.col("week").unique())
    table = (
        plan.join(sales, on=["item_id", "market", "week"], how="left")
        .with_columns(
            (pl.lit(first) + pl.duration(weeks=pl.col("week") - 1)).alias("date"),
            pl.col("week").is_in(observed["week"].implode()).alias("observed"),
        )
        .with_columns(
            pl.when(pl.col("observed")).then(pl.col(c).fill_null(0.0)).alias(c)
            for c in ("realised_units", "realised_revenue")
        )
        .with_columns(
            (pl.col("realised_revenue") / pl.col("realised_units")).alias("realised_price"),
        )
        .with_columns(
            (100 * (pl.col("realised_price") / pl.col("planned_price") - 1)).alias("price_gap_pct")
        )
    )
    seen = table.filter(pl.col("observed"))
    by_market = (
        seen.group_by("market")
        .agg(
            pl.col("expected_units").sum(),
            pl.col("realised_units").sum(),
            pl.col("expected_revenue").sum(),
            pl.col("realised_revenue").sum(),
        )
        .with_columns(
            (100 * (pl.col("realised_revenue") / pl.col("expected_revenue") - 1)).alias(
                "revenue_diff_pct"
            )
        )
        .sort("market")
    )
    pools = _pools(store, run, table)
    n_obs = observed.height
    warnings = []
    if n_obs < weeks:
        warnings.append(
            f"{weeks - n_obs} of {weeks} planned week(s) have no sales yet; "
            "they are left out of the comparison"
        )
    res = MarkdownReplay(run, table, by_market, pools, weeks, n_obs, start, warnings=warnings)
    if record:
        _record(store, res)
    return res


def _pools(store: Store, run: str, table: pl.DataFrame) -> pl.DataFrame:
    """Per stock pool: stock, planned and realised units, realised sell-through."""
    items = store.query(
        "SELECT item_id, coalesce(market, '') AS market, stock, expected_units "
        "FROM markdown_items WHERE run_id = ?",
        [run],
    )
    dedicated = items.filter(pl.col("market") != "").select("item_id", "market")
    rows = table.join(
        dedicated.with_columns(pl.col("market").alias("pool_market")),
        on=["item_id", "market"],
        how="left",
    ).with_columns(pl.col("pool_market").fill_null(""))
    got = rows.group_by("item_id", "pool_market").agg(
        pl.when(pl.col("observed").any())
        .then(pl.col("realised_units").sum())
        .alias("realised_units")
    )
    return (
        items.join(got.rename({"pool_market": "market"}), on=["item_id", "market"], how="left")
        .with_columns(
            (100 * pl.col("realised_units") / pl.col("stock")).alias("realised_sell_through_pct"),
            (100 * pl.col("expected_units") / pl.col("stock")).alias("planned_sell_through_pct"),
        )
        .sort("item_id", "market")
    )


def _record(store: Store, res: MarkdownReplay) -> None:
    from pricelab.store.runs import record_run

    run = record_run(
        store, "markdown_replay", {"markdown_run": res.markdown_run}, [res.markdown_run]
    )
    with store.transaction():
        store.write_result("markdown_replays", res.table, run.run_id)
        run.finish(res.to_dict() | {"run_id": run.run_id})
    res.run_id = run.run_id
