"""The baseline per item × market from the sales history: one definition for all commands.

``optimize`` (its demand table), ``simulate`` (its baseline rows), ``monitor`` and the Spark
engine all start from the same numbers: over the last ``weeks`` weeks of the sales history
(the window ends at the newest sales date), per item × market,

* ``average`` mode: the average weekly units and the average weekly price;
* ``current`` mode: today's price (the last one in the window) and the mean over the window
  of each week's units moved to it with the elasticity, ``q_t (p_now / p_t) ** e`` (``q_t``
  itself where the elasticity is missing or not finite). This is the optimizer's baseline,
  so a simulation that applies a plan reproduces the plan's quantities.

The window is aggregated by one DuckDB query (:func:`window_sql`), joined there to the
small ``markets`` and ``costs`` tables, and fetched once as Arrow. The item attributes and
the estimates are then attached in polars: an estimate run is stored in item × market order,
so its rows line up with the sorted baseline and are attached without a join (a join is the
fallback when they do not line up).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

import polars as pl

from pricelab.errors import UsageError
from pricelab.store.db import Store

#: the window: the weeks after ``max(date) - 7 * weeks days`` (one bound parameter: weeks)
_WINDOW = "date > CAST((SELECT max(date) FROM sales) - to_days(CAST(? AS INTEGER) * 7) AS DATE)"

AVERAGE_SQL = f"""
SELECT item_id, market, avg(quantity)::DOUBLE AS baseline_units,
       avg(price)::DOUBLE AS baseline_price, avg(unit_cost)::DOUBLE AS sales_cost,
       count(*) AS n_weeks
FROM sales
WHERE {_WINDOW}
GROUP BY item_id, market
"""

CURRENT_SQL = f"""
SELECT w.item_id, w.market,
       avg(CASE WHEN isfinite(e.elasticity)
                THEN w.quantity * pow(c.current_price / w.price, e.elasticity)
                ELSE w.quantity END)::DOUBLE AS baseline_units,
       any_value(c.current_price)::DOUBLE AS baseline_price,
       avg(w.unit_cost)::DOUBLE AS sales_cost, count(*) AS n_weeks
FROM (SELECT * FROM sales WHERE {_WINDOW}) w
JOIN (SELECT item_id, market, arg_max(price, date) AS current_price FROM sales
      WHERE {_WINDOW} GROUP BY item_id, market) c
  ON c.item_id = w.item_id AND c.market = w.market
LEFT JOIN (SELECT item_id, market, elasticity FROM elasticities WHERE run_id = ?) e
       ON e.item_id = w.item_id AND e.market = w.market
GROUP BY w.item_id, w.market
"""

MODES = ("average", "current")
#: columns of an aggregated window (what :func:`window_sql` computes)
AGG_COLUMNS = ["item_id", "market", "baseline_units", "baseline_price", "sales_cost", "n_weeks"]
#: columns of :func:`baseline` (``elasticity, std_error`` with an estimate run)
COLUMNS = ["item_id", "market", "category", "brand", "boutique_id", "fx_rate",
           "baseline_units", "baseline_price", "unit_cost", "n_weeks"]
ITEM_COLUMNS = ("category", "brand", "boutique_id")
_AGG_VIEW = "__pricelab_baseline_window"


def window_sql(mode: str = "average") -> str:
    """The aggregation query behind the baseline (:data:`AGG_COLUMNS`, unordered rows).

    ``average`` takes one parameter (weeks); ``current`` three (weeks, weeks, estimate run).
    """
    if mode not in MODES:
        raise UsageError(f"unknown baseline mode '{mode}'; choose average or current")
    return AVERAGE_SQL if mode == "average" else CURRENT_SQL


def window_dates(store: Store, weeks: int) -> tuple[dt.date, dt.date]:
    """``(after, through)``: the window holds the weeks after ``after`` through ``through``."""
    row = store.execute("SELECT CAST(max(date) - to_days(CAST(? AS INTEGER) * 7) AS DATE), "
                        "max(date) FROM sales", [int(weeks)])[0]
    return row[0], row[1]


def baseline(store: Store, weeks: int, *, estimates_run: str | None = None,
             mode: str = "average", aggregated: pl.DataFrame | None = None,
             tables: Collection[str] | None = None) -> pl.DataFrame:
    """Baseline per item × market over the last ``weeks`` weeks of history.

    Parameters
    ----------
    store : Store
        An open pricelab database with sales loaded.
    weeks : int
        Length of the baseline window; it ends at the newest sales date.
    estimates_run : str, optional
        Run id of an ``estimate`` run whose ``elasticity, std_error`` are attached.
    mode : {"average", "current"}
        See the module docstring; ``current`` needs ``estimates_run``.
    aggregated : polars.DataFrame, optional
        The window already aggregated elsewhere (:data:`AGG_COLUMNS`, e.g. by the Spark
        engine from a large history); the store's sales are then not read.
    tables : collection of str, optional
        The store's table names when the caller has them already (saves a catalog query).

    Returns
    -------
    polars.DataFrame
        :data:`COLUMNS`: ``baseline_units`` weekly, ``baseline_price`` and ``unit_cost`` in
        the market's currency (``unit_cost``: the market's landed cost, else the item's
        cost, else the average ``sales.unit_cost`` of the window, times ``fx_rate``), then
        with ``estimates_run`` ``elasticity, std_error``. Sorted by item and market.

    Raises
    ------
    UsageError
        Unknown ``mode``, or ``current`` without an estimate run.
    """
    if mode == "current" and estimates_run is None:
        raise UsageError("baseline mode 'current' needs an estimate run")
    src = window_sql(mode) if aggregated is None else f"SELECT * FROM {_AGG_VIEW}"
    params: list[Any] = []
    if aggregated is None:
        params = [int(weeks)] + ([int(weeks), estimates_run] if mode == "current" else [])
    sql = f"""
    WITH b AS ({src})
    SELECT b.item_id, b.market, coalesce(m.fx_rate, 1.0) AS fx_rate,
           b.baseline_units, b.baseline_price,
           coalesce(cm.unit_cost, cg.unit_cost, b.sales_cost) * coalesce(m.fx_rate, 1.0)
               AS unit_cost,
           b.n_weeks
    FROM b
    LEFT JOIN markets m ON m.market = b.market
    LEFT JOIN (SELECT item_id, market, unit_cost FROM costs WHERE coalesce(market, '') <> '') cm
           ON cm.item_id = b.item_id AND cm.market = b.market
    LEFT JOIN (SELECT item_id, avg(unit_cost) AS unit_cost FROM costs
               WHERE coalesce(market, '') = '' GROUP BY item_id) cg
           ON cg.item_id = b.item_id
    """
    if aggregated is None:
        df = _fetch_sorted(store, sql, params)
    else:
        with store.registered(_AGG_VIEW, aggregated.select(AGG_COLUMNS)):
            df = _fetch_sorted(store, sql, params)
    has = set(store.table_names()) if tables is None else set(tables)
    df = _with_items(store, df, "items" in has)
    if estimates_run is not None:
        df = _with_estimates(store, df, estimates_run)
    return df


def _arrow(store: Store, sql: str, params: list[Any] | None = None) -> pl.DataFrame:
    df = pl.from_arrow(store.con.sql(sql, params=params or []).to_arrow_table())
    assert isinstance(df, pl.DataFrame)
    return df


def _fetch_sorted(store: Store, sql: str, params: list[Any]) -> pl.DataFrame:
    """Rows of ``sql`` fetched once as Arrow, sorted by item and market.

    Two stable single-key sorts give the order of one two-key sort, faster in polars (and
    than ``ORDER BY`` in DuckDB); the order is deterministic whatever DuckDB's threads do.
    """
    return _arrow(store, sql, params).sort("market", nulls_last=True) \
        .sort("item_id", nulls_last=True, maintain_order=True)


def _with_items(store: Store, df: pl.DataFrame, has_items: bool) -> pl.DataFrame:
    """``category, brand, boutique_id`` after ``market`` (null without an items table)."""
    if has_items:
        items = _arrow(store, "SELECT item_id, category, brand, boutique_id FROM items")
        if items.height:
            out = df.join(items, on="item_id", how="left", maintain_order="left")
            return out.select(COLUMNS)
    return df.with_columns(pl.lit(None, dtype=pl.Utf8).alias(c) for c in ITEM_COLUMNS) \
        .select(COLUMNS)


def _with_estimates(store: Store, df: pl.DataFrame, run: str) -> pl.DataFrame:
    """``elasticity, std_error`` of ``run`` per row (null where the run has no estimate)."""
    est = _arrow(store, "SELECT item_id, market, elasticity::DOUBLE AS elasticity, "
                        "std_error::DOUBLE AS std_error FROM elasticities WHERE run_id = ?", [run])
    if (est.height == df.height and est["item_id"].equals(df["item_id"])
            and est["market"].equals(df["market"])):
        return df.with_columns(est["elasticity"], est["std_error"])
    return df.join(est, on=["item_id", "market"], how="left", maintain_order="left")
