"""Checks across the loaded tables: references between tables and series health."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from pricelab.quality.checks import Issue, QualityReport
from pricelab.quality.codes import case_hints, fx_sanity

if TYPE_CHECKING:
    from pricelab.store.db import Store

MIN_WEEKS = 8
JUMP_RATIO = 10.0
#: a series whose dates are this many days apart on average is not weekly data
COARSE_DAYS = 21
#: unit cost below this share of the price (base currency) looks like a unit mix-up
COST_FLOOR_SHARE = 0.01


def _examples(rows: list[tuple[object, ...]]) -> tuple[str, ...]:
    return tuple("/".join(str(v) for v in r if v is not None) for r in rows[:3])


def _check(
    store: Store,
    report: QualityReport,
    level: str,
    source: str,
    column: str | None,
    rule: str,
    sql: str,
    unit: str = "row",
) -> None:
    rows = store.execute(sql)
    if rows:
        n = store.execute(f"SELECT count(*) FROM ({sql})")[0][0]
        report.issues.append(Issue(level, source, column, rule, int(n), _examples(rows[:3]), unit))


def _series(report: QualityReport, series: pl.DataFrame, where: pl.Expr, rule: str) -> None:
    """A warning on ``sales.date`` naming the series (item/market) that ``where`` selects."""
    hit = series.filter(where)
    if hit.height:
        first = hit.sort("item_id", "market").head(3).select("item_id", "market").rows()
        report.issues.append(
            Issue("warning", "sales", "date", rule, hit.height, _examples(first), "series")
        )


def _price_jumps(store: Store, report: QualityReport, wide: pl.DataFrame) -> None:
    """Weeks whose price jumps by more than :data:`JUMP_RATIO` over the week before; only
    series whose price range exceeds the ratio (``wide``) can, so weeks are ordered within
    those alone."""
    if not wide.height:
        return
    view = "__pricelab_wide"
    store.con.register(view, wide.to_arrow())
    try:
        _check(
            store,
            report,
            "warning",
            "sales",
            "price",
            f"price jumps more than {JUMP_RATIO:g}x week over week",
            "SELECT item_id, market, date FROM ("
            "  SELECT s.item_id, s.market, s.date, s.price / lag(s.price) OVER "
            "  (PARTITION BY s.item_id, s.market ORDER BY s.date) AS ratio "
            f"  FROM sales s SEMI JOIN {view} USING (item_id, market)) "
            f"WHERE ratio > {JUMP_RATIO} OR ratio < {1 / JUMP_RATIO} ORDER BY 1, 2, 3",
        )
    finally:
        store.con.unregister(view)


def _uncosted(store: Store, report: QualityReport, series: pl.DataFrame) -> None:
    """Items with no unit cost in any of their sales rows and no ``costs`` row."""
    items = series.group_by("item_id").agg(pl.col("costed").sum()).filter(pl.col("costed") == 0)
    if items.height and store.count("costs"):
        costed = store.query("SELECT DISTINCT item_id FROM costs")
        items = items.join(costed, on="item_id", how="anti")
    if items.height:
        first = items.sort("item_id").head(3).select("item_id").rows()
        report.issues.append(
            Issue(
                "warning",
                "sales",
                "unit_cost",
                "items without a unit cost (no unit_cost in sales and no costs row)",
                items.height,
                _examples(first),
                "item",
            )
        )


def check_loaded(store: Store, *, warnings: bool = True) -> QualityReport:
    """Referential rules (errors) and series-health rules (warnings) on the database."""
    r = QualityReport()
    known_items = "(SELECT item_id FROM sales UNION SELECT item_id FROM items)"
    known_markets = "(SELECT market FROM sales UNION SELECT market FROM markets)"
    for table in ("costs", "inventory"):
        if store.count(table) == 0:  # nothing to check (the subqueries still cost a scan)
            continue
        _check(
            store,
            r,
            "error",
            table,
            "item_id",
            "names items that are in neither sales nor items",
            f"SELECT DISTINCT item_id FROM {table} WHERE item_id NOT IN {known_items} "
            "ORDER BY 1 LIMIT 1000",
            unit="item",
        )
        _check(
            store,
            r,
            "error",
            table,
            "market",
            "names markets that are in neither sales nor markets",
            f"SELECT DISTINCT market FROM {table} WHERE market IS NOT NULL "
            f"AND market NOT IN {known_markets} ORDER BY 1 LIMIT 1000",
            unit="market",
        )
    if store.count("markets"):
        _check(
            store,
            r,
            "error",
            "markets",
            "market",
            "is missing markets used in sales (add them with their fx_rate)",
            "SELECT DISTINCT market FROM sales WHERE market NOT IN (SELECT market FROM markets) "
            "ORDER BY 1 LIMIT 1000",
            unit="market",
        )
    case_hints(store, r)
    if not warnings or store.count("sales") == 0:
        return r
    fx_sanity(store, r)
    # series-level rules share one pass over sales: count, date span, price range and
    # unit costs per series
    series = store.query(
        "SELECT item_id, market, count(*) AS n, "
        "date_diff('week', min(date), max(date)) + 1 AS span_weeks, "
        "date_diff('day', min(date), max(date)) AS span_days, "
        f"max(price) > {JUMP_RATIO} * min(price) AS wide, count(unit_cost) AS costed "
        "FROM sales GROUP BY 1, 2"
    )
    _series(
        r, series, pl.col("n") < pl.col("span_weeks"), "weekly series with gaps (missing weeks)"
    )
    _price_jumps(store, r, series.filter(pl.col("wide")).select("item_id", "market"))
    _uncosted(store, r, series)
    _series(
        r,
        series,
        pl.col("n") < MIN_WEEKS,
        f"series shorter than {MIN_WEEKS} weeks (too short to estimate reliably)",
    )
    _series(
        r,
        series,
        (pl.col("n") > 1) & (pl.col("span_days") >= COARSE_DAYS * (pl.col("n") - 1)),
        f"dates at least {COARSE_DAYS} days apart on average: monthly data? pricelab works "
        "in weeks, so a monthly total read as weekly units overstates them about 4.3x",
    )
    fx = "LEFT JOIN markets m ON m.market = s.market" if store.count("markets") else ""
    base_price = "s.price / coalesce(m.fx_rate, 1.0)" if fx else "s.price"
    _check(
        store,
        r,
        "warning",
        "sales",
        "unit_cost",
        "unit cost at or above the price (in base currency): sold at a loss, or a unit "
        "or currency mix-up?",
        f"SELECT s.item_id, s.market, s.date FROM sales s {fx} "
        f"WHERE s.unit_cost >= {base_price} ORDER BY 1, 2, 3",
    )
    _check(
        store,
        r,
        "warning",
        "sales",
        "unit_cost",
        f"unit cost below {COST_FLOOR_SHARE:.0%} of the price (in base currency): a unit "
        "or currency mix-up?",
        f"SELECT s.item_id, s.market, s.date FROM sales s {fx} "
        f"WHERE s.unit_cost < {COST_FLOOR_SHARE} * {base_price} ORDER BY 1, 2, 3",
    )
    return r
