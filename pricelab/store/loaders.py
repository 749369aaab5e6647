"""Reading the input tables back as frames ready for estimation and optimization."""

from __future__ import annotations

import datetime as dt

import polars as pl

from pricelab.errors import UsageError
from pricelab.store.db import Store


def iso_date(text: str, option: str) -> dt.date:
    """``text`` as a date (YYYY-MM-DD); anything else is a UsageError naming ``option``."""
    try:
        return dt.date.fromisoformat(str(text).strip())
    except ValueError:
        raise UsageError(f"{option} {text!r} is not a date; use YYYY-MM-DD") from None


def load_sales(store: Store, *, before: str | None = None) -> pl.DataFrame:
    """All weekly sales (optionally only weeks before ``before``), sorted by key."""
    store.require_sales()
    sql = "SELECT * FROM sales"
    params: list[object] = []
    if before is not None:
        sql += " WHERE date < ?"
        params.append(iso_date(before, "--before"))
    # ingest writes sales in key order and a plain scan keeps it: sort only when needed
    # (an ORDER BY on the whole table took half the load time and a third more memory)
    df = sort_by_key(store.query(sql, params))
    required = {"item_id", "market", "date", "price", "quantity"}
    # optional and extra columns no loaded row has (e.g. a column added by another file)
    empty = [c for c in df.columns if c not in required and df[c].null_count() == df.height]
    return df.drop(empty)


SALES_KEY = ("item_id", "market", "date")


def sort_by_key(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` sorted by (item_id, market, date) as DuckDB's ORDER BY sorts it; unchanged
    (no copy) when it already is."""
    if df.height < 2:
        return df
    i, m, d = (pl.col(c) for c in SALES_KEY)
    ni, nm, nd = (c.shift(-1) for c in (i, m, d))
    later = (i > ni) | ((i == ni) & ((m > nm) | ((m == nm) & (d >= nd))))
    if not df.select(later.fill_null(False).any()).item():
        return df
    return df.sort(list(SALES_KEY))


def load_items(store: Store) -> pl.DataFrame | None:
    """The items table, or None when it is empty."""
    if store.count("items") == 0:
        return None
    items = store.table("items")
    empty = [c for c in items.columns if c != "item_id" and items[c].null_count() == items.height]
    return items.drop(empty)
