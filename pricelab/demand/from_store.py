"""Build the optimizer's demand table from what the database holds.

One row per item × market sold in the last ``baseline_weeks`` weeks of history:
current price (the last observed price), base weekly units at that price, unit cost in the
market's currency, elasticity and its standard error from an estimate run, FX, category and
stock (dedicated to the market, or shared by the item's markets as a pool).
"""

from __future__ import annotations

import polars as pl

from pricelab.errors import NotFoundError
from pricelab.store.db import Store
from pricelab.store.loaders import load_markets
from pricelab.store.runs import resolve_estimates

BASE_SQL = """
WITH horizon AS (SELECT max(date) AS last_week FROM sales),
win AS (
    SELECT s.* FROM sales s, horizon h
    WHERE s.date > h.last_week - CAST(? AS INTEGER) * INTERVAL 7 DAY
),
cur AS (
    SELECT item_id, market, arg_max(price, date) AS current_price, max(date) AS last_date
    FROM win GROUP BY item_id, market
)
SELECT w.item_id, w.market, w.date, w.price, w.quantity, w.unit_cost, c.current_price,
       c.last_date
FROM win w JOIN cur c USING (item_id, market)
ORDER BY w.item_id, w.market, w.date
"""


def demand_from_store(store: Store, *, estimates: str | None = None,
                      baseline_weeks: int = 8) -> tuple[pl.DataFrame, str]:
    """The demand table (contract columns plus std_error, category, stock_pool) and the run used.

    ``base_quantity`` is the mean over the baseline window of each week's units moved to the
    current price with the estimated elasticity, ``q_t (p_now / p_t)^e``; with a missing
    elasticity it is the plain mean (the optimizer then skips the row with a flag).
    """
    store.require_sales()
    run_id = resolve_estimates(store, estimates)
    est = store.read_result("elasticities", run_id)
    if "item_id" not in est.columns or "market" not in est.columns:
        raise NotFoundError(f"estimate run {run_id} is not per item x market; "
                            "optimize needs 'pricelab estimate --by item_id,market'")
    est = est.select("item_id", "market", "elasticity", "std_error")
    hist = store.query(BASE_SQL, [baseline_weeks]).join(est, on=["item_id", "market"], how="left")
    adj = pl.when(pl.col("elasticity").is_finite()).then(
        pl.col("quantity") * (pl.col("current_price") / pl.col("price")) ** pl.col("elasticity")
    ).otherwise(pl.col("quantity").cast(pl.Float64))
    base = hist.group_by("item_id", "market", maintain_order=True).agg(
        pl.col("current_price").first().alias("base_price"),
        adj.mean().alias("base_quantity"),
        pl.col("unit_cost").drop_nulls().mean().alias("_sales_cost"),
        pl.col("elasticity").first(), pl.col("std_error").first(),
    )
    markets = load_markets(store).select("market", "fx_rate")
    costs = store.table("costs") if store.count("costs") else pl.DataFrame(
        schema={"item_id": pl.String, "market": pl.String, "unit_cost": pl.Float64})
    specific = costs.filter(pl.col("market").is_not_null()).select(
        "item_id", "market", pl.col("unit_cost").alias("_cost_m"))
    generic = costs.filter(pl.col("market").is_null()).group_by("item_id").agg(
        pl.col("unit_cost").mean().alias("_cost_g"))
    df = (base.join(markets, on="market", how="left")
          .join(specific, on=["item_id", "market"], how="left")
          .join(generic, on="item_id", how="left")
          .with_columns(pl.col("fx_rate").fill_null(1.0))
          .with_columns((pl.coalesce("_cost_m", "_cost_g", "_sales_cost") * pl.col("fx_rate"))
                        .alias("unit_cost"))
          .drop("_cost_m", "_cost_g", "_sales_cost"))
    if store.count("items"):
        items = store.table("items")
        if "category" in items.columns:
            df = df.join(items.select("item_id", "category"), on="item_id", how="left")
    df = _with_stock(store, df)
    cols = ["item_id", "market", "elasticity", "std_error", "base_price", "base_quantity",
            "unit_cost", "fx_rate"]
    rest = [c for c in df.columns if c not in cols]
    return df.select(cols + rest).sort("item_id", "market"), run_id


def _with_stock(store: Store, df: pl.DataFrame) -> pl.DataFrame:
    if store.count("inventory") == 0:
        return df
    inv = store.table("inventory")
    dedicated = inv.filter(pl.col("market").is_not_null()).select(
        "item_id", "market", pl.col("stock").alias("_stock_m"))
    shared = inv.filter(pl.col("market").is_null()).group_by("item_id").agg(
        pl.col("stock").sum().alias("_stock_s"))
    df = df.join(dedicated, on=["item_id", "market"], how="left").join(
        shared, on="item_id", how="left")
    return df.with_columns(
        pl.coalesce("_stock_m", "_stock_s").alias("stock"),
        pl.when(pl.col("_stock_m").is_null() & pl.col("_stock_s").is_not_null())
        .then(pl.col("item_id")).otherwise(None).alias("stock_pool"),
    ).drop("_stock_m", "_stock_s")
