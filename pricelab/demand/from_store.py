"""Build the optimizer's demand table from what the database holds.

One row per item × market sold in the last ``baseline_weeks`` weeks of history:
current price (the last observed price), base weekly units at that price, unit cost in the
market's currency, elasticity and its standard error from an estimate run, FX, category and
stock (dedicated to the market, or shared by the item's markets as a pool). The numbers are
:func:`pricelab.demand.baseline.baseline`'s (``current`` mode).
"""

from __future__ import annotations

from collections.abc import Collection

import polars as pl

from pricelab.demand.baseline import baseline
from pricelab.errors import NotFoundError
from pricelab.store.db import Store
from pricelab.store.runs import resolve_estimates

#: result table of ``estimate --model cross`` runs (one row per item × other item)
CROSS_TABLE = "cross_elasticities"


def cross_table(
    store: Store, run_id: str, *, tables: Collection[str] | None = None
) -> pl.DataFrame | None:
    """The cross-price rows of estimate run ``run_id``, or None for a single-item run
    (``tables``: the store's table names when the caller has them already)."""
    if CROSS_TABLE not in (store.table_names() if tables is None else tables):
        return None
    t = store.read_result(CROSS_TABLE, run_id)
    return t if t.height else None


def demand_from_store(
    store: Store, *, estimates: str | None = None, baseline_weeks: int = 8
) -> tuple[pl.DataFrame, str]:
    """The demand table (contract columns plus std_error, category, stock_pool) and the run used.

    ``base_price`` is the current price and ``base_quantity`` the mean over the baseline window
    of each week's units moved to it with the estimated elasticity, ``q_t (p_now / p_t)^e``:
    :func:`pricelab.demand.baseline.baseline` in ``current`` mode, the baseline simulate uses
    too. With a missing elasticity it is the plain mean (the optimizer then skips the row
    with a flag). A run pooled over markets (``--by item_id``, e.g. a pooled cross run) gives
    each item's elasticity to every market the item sells in.
    """
    store.require_sales()
    run_id = resolve_estimates(store, estimates)
    cols = set(store.query("SELECT * FROM elasticities LIMIT 0").columns)
    usable = False
    if {"item_id", "market"} <= cols:
        no_item, no_market, rows = store.execute(
            "SELECT count(*) FILTER (WHERE item_id IS NULL), count(*) FILTER (WHERE market IS "
            "NULL), count(*) FROM elasticities WHERE run_id = ?",
            [run_id],
        )[0]
        # per item x market, or pooled over markets (--by item_id): each item's elasticity
        # then applies in every market it sells in
        usable = no_item == 0 and no_market in (0, rows)
    if not usable:
        raise NotFoundError(
            f"estimate run {run_id} is not per item x market; "
            "optimize needs 'pricelab estimate --by item_id,market' (or --by item_id)"
        )
    base = baseline(store, baseline_weeks, estimates_run=run_id, mode="current")
    df = base.select(
        "item_id",
        "market",
        "elasticity",
        "std_error",
        pl.col("baseline_price").alias("base_price"),
        pl.col("baseline_units").alias("base_quantity"),
        "unit_cost",
        "fx_rate",
        "category",
    )
    if df["category"].null_count() == df.height:
        df = df.drop("category")
    # the observed price range: optimize caps and flags prices outside it
    seen = store.query(
        "SELECT item_id, market, min(price) AS min_price, max(price) AS max_price "
        "FROM sales GROUP BY 1, 2"
    )
    df = df.join(seen, on=["item_id", "market"], how="left")
    # the market's currency: prices are rounded to its minor unit
    cur = store.query("SELECT market, currency FROM markets")
    base_cur = store.meta("base_currency", "EUR")
    df = df.join(cur, on="market", how="left").with_columns(pl.col("currency").fill_null(base_cur))
    return _with_stock(store, df), run_id


def _with_stock(store: Store, df: pl.DataFrame) -> pl.DataFrame:
    if store.count("inventory") == 0:
        return df
    inv = store.table("inventory")
    dedicated = inv.filter(pl.col("market").is_not_null()).select(
        "item_id", "market", pl.col("stock").alias("_stock_m")
    )
    shared = (
        inv.filter(pl.col("market").is_null())
        .group_by("item_id")
        .agg(pl.col("stock").sum().alias("_stock_s"))
    )
    df = df.join(dedicated, on=["item_id", "market"], how="left").join(
        shared, on="item_id", how="left"
    )
    return df.with_columns(
        pl.coalesce("_stock_m", "_stock_s").alias("stock"),
        pl.when(pl.col("_stock_m").is_null() & pl.col("_stock_s").is_not_null())
        .then(pl.col("item_id"))
        .otherwise(None)
        .alias("stock_pool"),
    ).drop("_stock_m", "_stock_s")
