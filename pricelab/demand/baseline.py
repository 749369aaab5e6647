"""The baseline per item × market from the sales history: one definition for all commands.

``optimize`` (its demand table), ``simulate`` (its baseline rows), ``monitor`` and the Spark
engine all start from the same numbers: over the last ``weeks`` weeks of the sales history
(the window ends at the newest sales date), per item × market,

* ``average`` mode: the average weekly units and the average weekly price;
* ``current`` mode: today's price (the last one in the window) and the mean over the window
  of each week's units moved to it with the elasticity, ``q_t (p_now / p_t) ** e`` (``q_t``
  itself where the elasticity is missing or not finite). This is the optimizer's baseline,
  so a simulation that applies a plan reproduces the plan's quantities. An estimate run
  pooled over markets (``--by item_id``) applies each item's elasticity in all its markets.

The window is aggregated by one DuckDB query (:func:`window_sql`) and fetched once as
Arrow, then sorted by item and market in polars (:func:`_in_key_order`); the small tables
(estimates, markets, costs, items) are attached in polars. An estimate run is stored in
item × market order, so when it covers exactly the window's groups its rows line up and are
attached without a join; FX, costs and item attributes are small left joins.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from typing import Any

import duckdb
import polars as pl

from pricelab.demand.curves import ConstantElasticity
from pricelab.errors import UsageError
from pricelab.store.db import Store
from pricelab.store.window import AGG_COLUMNS, MODES, WINDOW_PREDICATE

#: the window: the weeks after ``max(date) - 7 * weeks days`` (one bound parameter: weeks)
_WINDOW = WINDOW_PREDICATE

AVERAGE_SQL = f"""
SELECT item_id, market, avg(quantity)::DOUBLE AS baseline_units,
       avg(price)::DOUBLE AS baseline_price, avg(unit_cost)::DOUBLE AS sales_cost,
       count(*) AS n_weeks
FROM sales
WHERE {_WINDOW}
GROUP BY item_id, market
"""

#: each window week's units moved to the current price along the group's curve
_ADJUSTED = ConstantElasticity("w.price", "w.quantity", "e.elasticity").sql("c.current_price")

CURRENT_SQL = f"""
SELECT w.item_id, w.market,
       avg(CASE WHEN isfinite(e.elasticity)
                THEN {_ADJUSTED}
                ELSE w.quantity END)::DOUBLE AS baseline_units,
       any_value(c.current_price)::DOUBLE AS baseline_price,
       avg(w.unit_cost)::DOUBLE AS sales_cost, count(*) AS n_weeks
FROM (SELECT * FROM sales WHERE {_WINDOW}) w
JOIN (SELECT item_id, market, arg_max(price, date) AS current_price FROM sales
      WHERE {_WINDOW} GROUP BY item_id, market) c
  ON c.item_id = w.item_id AND c.market = w.market
LEFT JOIN (SELECT item_id, market, elasticity FROM elasticities WHERE run_id = ?) e
       ON e.item_id = w.item_id AND (e.market = w.market OR e.market IS NULL)
GROUP BY w.item_id, w.market
"""

#: columns of :func:`baseline` (``elasticity, std_error`` with an estimate run)
COLUMNS = [
    "item_id",
    "market",
    "category",
    "brand",
    "boutique_id",
    "fx_rate",
    "baseline_units",
    "baseline_price",
    "unit_cost",
    "n_weeks",
]
ITEM_COLUMNS = ("category", "brand", "boutique_id")
KEYS = ["item_id", "market"]


def window_sql(mode: str = "average") -> str:
    """The aggregation query behind the baseline (:data:`AGG_COLUMNS`, unordered rows).

    ``average`` takes one parameter (weeks); ``current`` three (weeks, weeks, estimate run).
    """
    if mode not in MODES:
        raise UsageError(f"unknown baseline mode '{mode}'; choose average or current")
    return AVERAGE_SQL if mode == "average" else CURRENT_SQL


def window_dates(store: Store, weeks: int) -> tuple[dt.date, dt.date]:
    """``(after, through)``: the window holds the weeks after ``after`` through ``through``."""
    row = store.execute(
        "SELECT CAST(max(date) - to_days(CAST(? AS INTEGER) * 7) AS DATE), max(date) FROM sales",
        [int(weeks)],
    )[0]
    return row[0], row[1]


def baseline(
    store: Store,
    weeks: int,
    *,
    estimates_run: str | None = None,
    mode: str = "average",
    aggregated: pl.DataFrame | None = None,
    tables: Collection[str] | None = None,
) -> pl.DataFrame:
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
    sql = window_sql(mode)
    if mode == "current" and estimates_run is None:
        raise UsageError("baseline mode 'current' needs an estimate run")
    has = set(store.table_names()) if tables is None else set(tables)
    con = store.con
    est = None
    if estimates_run is not None:
        est = _arrow(
            con,
            "SELECT item_id, market, elasticity::DOUBLE AS elasticity, "
            "std_error::DOUBLE AS std_error FROM elasticities WHERE run_id = ?",
            [estimates_run],
        )
    if aggregated is not None:
        agg = _sorted(aggregated.select(AGG_COLUMNS))
    else:
        params = [int(weeks)] + ([int(weeks), estimates_run] if mode == "current" else [])
        agg = _in_key_order(_arrow(con, sql, params))
    df = _in_order(agg, est)
    df = _with_money(
        df,
        _arrow(con, "SELECT market, fx_rate FROM markets"),
        _arrow(con, "SELECT item_id, market, unit_cost FROM costs"),
    )
    if "items" in has:
        df = _with_items(df, _arrow(con, "SELECT item_id, category, brand, boutique_id FROM items"))
    else:
        df = _with_items(df, pl.DataFrame())
    return df.select(COLUMNS + ([] if est is None else ["elasticity", "std_error"]))


def _arrow(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> pl.DataFrame:
    df = pl.from_arrow(con.sql(sql, params=params or []).to_arrow_table())
    assert isinstance(df, pl.DataFrame)
    return df


def _in_key_order(agg: pl.DataFrame) -> pl.DataFrame:
    """The window's groups sorted by item and market as DuckDB's ``ORDER BY item_id,
    market`` sorts them (byte order), in polars: one string key (``item_id NUL market``)
    sorts faster than two (DuckDB's ``ORDER BY`` costs about as much CPU and more wall
    time). The key orders like the pair unless an item_id holds a NUL byte, which the
    check after the sort catches (the two-key sort is then used)."""
    key = pl.concat_str("item_id", pl.lit("\x00"), "market")
    df = agg[agg.select(key.arg_sort()).to_series()]
    return df if _key_sorted(df) else _sorted(agg)


def _key_sorted(df: pl.DataFrame) -> bool:
    """True when ``item_id, market`` strictly increase row by row (a null fails)."""
    if df.height < 2:
        return True
    i, m = pl.col("item_id"), pl.col("market")
    ni, nm = i.shift(-1), m.shift(-1)
    up = ((i < ni) | ((i == ni) & (m < nm))).fill_null(False)
    return bool(df.select(up.head(df.height - 1).all()).item())


def _sorted(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` sorted by item and market (two stable one-key sorts: faster in polars)."""
    return df.sort("market", nulls_last=True).sort("item_id", nulls_last=True, maintain_order=True)


def _in_order(agg: pl.DataFrame, est: pl.DataFrame | None) -> pl.DataFrame:
    """The sorted window rows with the estimates attached.

    An estimate run is stored in item × market order; when it holds exactly the window's
    groups (an estimate of the same history) its rows line up with the sorted window and
    are attached without a join. Otherwise they are joined (null where missing); a run
    pooled over markets (``--by item_id``: no market) gives each item's estimate to every
    market the item sells in.
    """
    if est is None:
        return agg
    if est.height and est["market"].null_count() == est.height:
        return agg.join(est.drop("market"), on="item_id", how="left", maintain_order="left")
    if (
        est.height == agg.height
        and est["item_id"].equals(agg["item_id"])
        and est["market"].equals(agg["market"])
    ):
        return agg.with_columns(est["elasticity"], est["std_error"])
    return agg.join(est, on=KEYS, how="left", maintain_order="left")


def _with_money(df: pl.DataFrame, markets: pl.DataFrame, costs: pl.DataFrame) -> pl.DataFrame:
    """``fx_rate`` and ``unit_cost`` (market currency) from the markets and costs tables."""
    cost = pl.col("sales_cost")
    if markets.height:
        df = df.join(markets, on="market", how="left", maintain_order="left").with_columns(
            pl.col("fx_rate").fill_null(1.0)
        )
    else:
        df = df.with_columns(pl.lit(1.0).alias("fx_rate"))
    if costs.height:
        specific = costs.filter(pl.col("market").fill_null("") != "").select(
            *KEYS, pl.col("unit_cost").alias("_cost_m")
        )
        generic = (
            costs.filter(pl.col("market").fill_null("") == "")
            .group_by("item_id")
            .agg(pl.col("unit_cost").mean().alias("_cost_g"))
        )
        df = df.join(specific, on=KEYS, how="left", maintain_order="left").join(
            generic, on="item_id", how="left", maintain_order="left"
        )
        cost = pl.coalesce("_cost_m", "_cost_g", "sales_cost")
    return df.with_columns((cost * pl.col("fx_rate")).alias("unit_cost"))


def _with_items(df: pl.DataFrame, items: pl.DataFrame) -> pl.DataFrame:
    """``category, brand, boutique_id`` (null without items)."""
    if items.height:
        return df.join(items, on="item_id", how="left", maintain_order="left")
    return df.with_columns(pl.lit(None, dtype=pl.Utf8).alias(c) for c in ITEM_COLUMNS)
