"""Covariate balance of an assignment: pre-period means by cell against control."""

from __future__ import annotations

import numpy as np
import polars as pl

from pricelab.experiment._panel import dense_panel


def balance_table(
    assignment: pl.DataFrame, history: pl.DataFrame, currency: dict[str, str] | None = None
) -> pl.DataFrame:
    """Pre-period means by cell with standardized differences against control.

    Money metrics (revenue, price, current_price) are compared within each currency
    (``currency``: market -> currency code; column ``currency``), never averaged across
    JPY and EUR; units are pooled (``currency`` "all").

    Metrics per item x market: mean weekly units and revenue over the history's
    weeks (missing weeks count as zero), average price paid (revenue / units,
    units without sales left out) and current price. ``std_diff`` is
    ``(mean - mean_control) / sqrt((sd^2 + sd_control^2) / 2)``.
    """
    panel = dense_panel(history, assignment)
    t = max(len(panel.weeks), 1)
    q, rev = panel.quantity.sum(axis=1), panel.revenue.sum(axis=1)
    per_unit = assignment.select("cell", "price_change_pct").with_columns(
        pl.Series("units", q / t),
        pl.Series("revenue", rev / t),
        pl.Series("price", np.where(q > 0, rev / np.where(q > 0, q, 1.0), np.nan)).fill_nan(None),
        assignment["current_price"].alias("current_price"),
    )
    money_ccy = assignment["market"].replace_strict(
        currency or {}, default="", return_dtype=pl.String
    )
    per_unit = per_unit.with_columns(money_ccy.alias("_ccy"))
    long = per_unit.unpivot(index=["cell", "price_change_pct", "_ccy"], variable_name="metric")
    long = long.with_columns(
        pl.when(pl.col("metric") == "units")
        .then(pl.lit("all"))
        .otherwise(pl.col("_ccy"))
        .alias("currency")
    ).drop("_ccy")
    stats_ = long.group_by("metric", "currency", "cell", "price_change_pct").agg(
        pl.col("value").drop_nulls().len().alias("n_units"),
        pl.col("value").mean().alias("mean"),
        pl.col("value").std().alias("std"),
    )
    ctrl = stats_.filter(pl.col("price_change_pct") == 0).select(
        "metric", "currency", pl.col("mean").alias("_mc"), pl.col("std").alias("_sc")
    )
    pooled = ((pl.col("std") ** 2 + pl.col("_sc") ** 2) / 2).sqrt()
    out = stats_.join(ctrl, on=["metric", "currency"]).with_columns(
        pl.when(pooled > 0)
        .then((pl.col("mean") - pl.col("_mc")) / pooled)
        .otherwise(0.0)
        .alias("std_diff")
    )
    order = {"units": 0, "revenue": 1, "price": 2, "current_price": 3}
    return (
        out.drop("_mc", "_sc")
        .with_columns(pl.col("metric").replace_strict(order, return_dtype=pl.Int32).alias("_o"))
        .sort("_o", "currency", "price_change_pct")
        .drop("_o")
        .select("metric", "currency", pl.exclude("metric", "currency"))
    )
