"""Shared helpers: input checks and dense unit x week panels for experiments.

A *unit* of analysis is always an (item_id, market) pair; with item-level
randomisation all markets of an item share a cell, but outcomes are still
measured per item x market and clustered by the randomised unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from pricelab.errors import DataError, UsageError

KEYS = ["item_id", "market"]
SALES_REQUIRED = ["item_id", "market", "date", "price", "quantity"]


def require_columns(df: pl.DataFrame, columns: list[str], what: str) -> None:
    """Raise :class:`UsageError` naming the first missing column of ``df``."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise UsageError(
            f"{what}: missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"has {', '.join(df.columns) or '(none)'}"
        )


def clean_sales(sales: pl.DataFrame, what: str) -> pl.DataFrame:
    """Check a weekly sales frame and return it with normalised types.

    Adds ``revenue`` (price * quantity) and ``profit`` ((price - unit_cost) *
    quantity, null without ``unit_cost``).
    """
    require_columns(sales, SALES_REQUIRED, what)
    dtype = sales.schema["date"]
    if dtype == pl.Datetime or isinstance(dtype, pl.Datetime):
        sales = sales.with_columns(pl.col("date").dt.date())
    elif dtype == pl.String:
        try:
            sales = sales.with_columns(pl.col("date").str.to_date())
        except pl.exceptions.PolarsError as exc:
            raise DataError(f"{what}: column 'date' holds values that are not ISO dates") from exc
    elif dtype != pl.Date:
        raise DataError(f"{what}: column 'date' must be a date, got {dtype}")
    cols = [
        pl.col("item_id").cast(pl.String),
        pl.col("market").cast(pl.String),
        pl.col("price").cast(pl.Float64),
        pl.col("quantity").cast(pl.Float64),
    ]
    has_cost = "unit_cost" in sales.columns
    cols.append(
        pl.col("unit_cost").cast(pl.Float64)
        if has_cost
        else pl.lit(None, dtype=pl.Float64).alias("unit_cost")
    )
    sales = sales.with_columns(cols).select([*SALES_REQUIRED, "unit_cost"])
    if sales.height:
        if sales["quantity"].null_count() or (sales["quantity"] < 0).any():
            raise DataError(f"{what}: column 'quantity' must be >= 0 and not empty")
        if sales["price"].null_count() or (sales["price"] <= 0).any():
            raise DataError(f"{what}: column 'price' must be > 0 and not empty")
        dup = sales.group_by([*KEYS, "date"]).len().filter(pl.col("len") > 1)
        if dup.height:
            r = dup.row(0, named=True)
            raise DataError(
                f"{what}: duplicate rows for item_id={r['item_id']}, market={r['market']}, "
                f"date={r['date']} ({dup.height} duplicated keys)"
            )
    return sales.with_columns(
        (pl.col("price") * pl.col("quantity")).alias("revenue"),
        ((pl.col("price") - pl.col("unit_cost")) * pl.col("quantity")).alias("profit"),
    )


@dataclass(frozen=True)
class Panel:
    """Dense unit x week arrays (missing rows are weeks without sales: zero)."""

    weeks: list  # sorted week-start dates
    quantity: np.ndarray  # (n_units, n_weeks)
    revenue: np.ndarray
    profit: np.ndarray | None  # None when no unit_cost is known
    present: np.ndarray  # bool (n_units,): the unit has at least one row


def dense_panel(sales: pl.DataFrame, units: pl.DataFrame) -> Panel:
    """Arrange ``sales`` (from :func:`clean_sales`) as arrays aligned with ``units`` rows."""
    weeks = sorted(sales["date"].unique().to_list())
    n, t = units.height, len(weeks)
    idx = units.select(KEYS).with_row_index("_u")
    wk = pl.DataFrame({"date": weeks}, schema={"date": pl.Date}).with_row_index("_w")
    joined = sales.join(idx, on=KEYS, how="inner").join(wk, on="date", how="inner")
    u = joined["_u"].to_numpy().astype(np.int64)
    w = joined["_w"].to_numpy().astype(np.int64)
    out = {}
    for col in ("quantity", "revenue", "profit"):
        arr = np.zeros((n, t))
        arr[u, w] = joined[col].fill_null(np.nan).to_numpy()
        out[col] = arr
    has_profit = sales.height > 0 and sales["profit"].null_count() == 0
    present = np.zeros(n, dtype=bool)
    present[u] = True
    return Panel(
        weeks, out["quantity"], out["revenue"], out["profit"] if has_profit else None, present
    )


def unit_means(panel: Panel) -> dict[str, np.ndarray | None]:
    """Mean weekly quantity, revenue and profit per unit over the panel's weeks."""
    t = max(len(panel.weeks), 1)
    return {
        "quantity": panel.quantity.sum(axis=1) / t,
        "revenue": panel.revenue.sum(axis=1) / t,
        "profit": None if panel.profit is None else panel.profit.sum(axis=1) / t,
    }
