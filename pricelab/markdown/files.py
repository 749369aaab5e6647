"""File mode: ``demand.csv`` (item × market × week) and ``stock.csv`` into a problem.

Every error names the file, the column and the row (1-based data rows, header excluded).
"""

from __future__ import annotations

import os

import numpy as np
import polars as pl

from pricelab.errors import DataError
from pricelab.markdown.config import MarkdownConfig
from pricelab.markdown.problem import MarkdownProblem, constant_elasticity_demand, shop_prices

DEMAND_COLS = (
    "item_id",
    "market",
    "week",
    "base_quantity",
    "elasticity",
    "full_price",
    "unit_cost",
)
STOCK_COLS = ("item_id", "stock")
PER_ROW = ("elasticity", "full_price", "unit_cost", "fx_rate", "category")


def _need(df: pl.DataFrame, cols: tuple[str, ...], name: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(
            f"{name}: missing column(s) {', '.join(missing)} (has {', '.join(df.columns)})"
        )


def _numeric(
    df: pl.DataFrame, col: str, name: str, *, lo: float, strict: bool = False
) -> np.ndarray:
    try:
        v = df[col].cast(pl.Float64, strict=True).to_numpy()
    except Exception:  # noqa: BLE001 - polars raises several types for bad casts
        bad = df.with_row_index("_r").filter(
            pl.col(col).cast(pl.Float64, strict=False).is_null() & pl.col(col).is_not_null()
        )
        row = int(bad["_r"][0]) + 1 if bad.height else 1
        raise DataError(f"{name}, row {row}: column {col}: not a number") from None
    bad_i = np.nonzero(~np.isfinite(v) | (v <= lo if strict else v < lo))[0]
    if len(bad_i):
        i = int(bad_i[0])
        rule = f"> {lo:g}" if strict else f">= {lo:g}"
        raise DataError(f"{name}, row {i + 1}: column {col}: {v[i]!r} must be finite and {rule}")
    return v


def read_markdown_files(
    demand: str | os.PathLike[str],
    stock: str | os.PathLike[str],
    config: MarkdownConfig,
) -> MarkdownProblem:
    """A :class:`MarkdownProblem` from the two files (money in each market's currency)."""
    from pricelab.io import read_table

    dname, sname = str(demand), str(stock)
    d = read_table(demand)
    s = read_table(stock)
    _need(d, DEMAND_COLS, dname)
    _need(s, STOCK_COLS, sname)
    if "fx_rate" not in d.columns:
        d = d.with_columns(pl.lit(1.0).alias("fx_rate"))
    if "category" not in d.columns:
        d = d.with_columns(pl.lit("").alias("category"))
    for c in ("item_id", "market"):
        if d[c].null_count():
            row = int(d.with_row_index("_r").filter(pl.col(c).is_null())["_r"][0]) + 1
            raise DataError(f"{dname}, row {row}: column {c}: empty")
    d = d.with_columns(
        pl.col("item_id").cast(pl.Utf8),
        pl.col("market").cast(pl.Utf8),
        pl.col("category").cast(pl.Utf8).fill_null(""),
    )
    week = _numeric(d, "week", dname, lo=1.0)
    if (week != np.round(week)).any():
        i = int(np.nonzero(week != np.round(week))[0][0])
        raise DataError(f"{dname}, row {i + 1}: column week: {week[i]!r} is not a whole number")
    t_len = int(config.weeks or week.max())
    if week.max() > t_len:
        i = int(np.argmax(week))
        raise DataError(f"{dname}, row {i + 1}: column week: {int(week[i])} is past weeks: {t_len}")
    qty = _numeric(d, "base_quantity", dname, lo=0.0)
    _numeric(d, "elasticity", dname, lo=-np.inf)
    _numeric(d, "full_price", dname, lo=0.0, strict=True)
    _numeric(d, "unit_cost", dname, lo=0.0)
    _numeric(d, "fx_rate", dname, lo=0.0, strict=True)
    d = d.with_columns(pl.Series("week", week.astype(np.int64)), pl.Series("base_quantity", qty))
    d = d.with_row_index("_row")
    dup = d.filter(pl.struct("item_id", "market", "week").is_duplicated())
    if dup.height:
        r = dup.row(0, named=True)
        raise DataError(
            f"{dname}, row {r['_row'] + 1}: item {r['item_id']} market {r['market']} week "
            f"{r['week']} appears more than once"
        )
    per_row = PER_ROW + (("currency",) if "currency" in d.columns else ())
    pairs = d.group_by("item_id", "market", maintain_order=True).agg(
        pl.len().alias("n"),
        pl.col("_row").first(),
        *[pl.col(c).n_unique().alias(f"u_{c}") for c in per_row],
    )
    short = pairs.filter(pl.col("n") != t_len)
    if short.height:
        r = short.row(0, named=True)
        raise DataError(
            f"{dname}: item {r['item_id']} market {r['market']} has {r['n']} week(s); every item × "
            f"market needs weeks 1..{t_len}"
        )
    for c in per_row:
        bad = pairs.filter(pl.col(f"u_{c}") > 1)
        if bad.height:
            r = bad.row(0, named=True)
            raise DataError(
                f"{dname}: column {c}: item {r['item_id']} market {r['market']} has more than one "
                "value across weeks; it must be the same in every week"
            )
    d = d.sort("item_id", "market", "week")
    first = d.filter(pl.col("week") == 1)
    base = d["base_quantity"].to_numpy().reshape(-1, t_len)
    return attach_stock(first, base, s, sname, config)


def attach_stock(
    rows: pl.DataFrame,
    base: np.ndarray,
    s: pl.DataFrame,
    sname: str,
    config: MarkdownConfig,
    *,
    elasticity: np.ndarray | None = None,
) -> MarkdownProblem:
    """The problem of ``rows`` (one per item × market, sorted) with stock table ``s``."""
    if "market" not in s.columns:
        s = s.with_columns(pl.lit(None, dtype=pl.Utf8).alias("market"))
    s = s.with_columns(
        pl.col("item_id").cast(pl.Utf8), pl.col("market").cast(pl.Utf8).fill_null("")
    ).with_row_index("_row")
    stock = _numeric(s, "stock", sname, lo=0.0)
    salvage = None
    if "salvage_value" in s.columns:
        salvage = s["salvage_value"].cast(pl.Float64, strict=False).to_numpy()
        bad = np.nonzero(s["salvage_value"].is_not_null().to_numpy() & ~(salvage >= 0))[0]
        if len(bad):
            raise DataError(
                f"{sname}, row {bad[0] + 1}: column salvage_value: must be a number >= 0"
            )
    dup = s.filter(pl.struct("item_id", "market").is_duplicated())
    if dup.height:
        r = dup.row(0, named=True)
        raise DataError(
            f"{sname}, row {r['_row'] + 1}: item {r['item_id']} market '{r['market']}' appears twice"
        )
    key = {(a, m): i for i, (a, m) in enumerate(zip(s["item_id"], s["market"], strict=True))}
    items = rows["item_id"].to_numpy().astype(str)
    markets = rows["market"].to_numpy().astype(str)
    pool = np.empty(len(items), dtype=np.int64)
    for i, (a, m) in enumerate(zip(items, markets, strict=True)):  # dict lookups, one per row
        j = key.get((a, m), key.get((a, "")))
        if j is None:
            raise DataError(f"{sname}: no stock row for item {a} (market {m}): add '{a},<stock>'")
        pool[i] = j
    used = np.zeros(len(stock), dtype=bool)
    used[pool] = True
    if not used.all():
        k = int(np.nonzero(~used)[0][0])
        raise DataError(
            f"{sname}, row {k + 1}: item {s['item_id'][k]} has no rows in the demand file"
        )
    fx = rows["fx_rate"].to_numpy().astype(float)
    cost = rows["unit_cost"].to_numpy().astype(float)
    cost_base = np.bincount(pool, weights=cost / fx, minlength=len(stock)) / np.bincount(
        pool, minlength=len(stock)
    )
    pool_salv = config.salvage_pct_of_cost / 100.0 * cost_base
    if salvage is not None:
        pool_salv = np.where(np.isnan(salvage), pool_salv, salvage)
    e = rows["elasticity"].to_numpy().astype(float) if elasticity is None else elasticity
    full = rows["full_price"].to_numpy().astype(float)
    ladder = np.asarray(config.ladder, dtype=float)
    unit = minor_units(rows)
    ratio = None if unit is None else shop_prices(full, ladder, unit) / full[:, None]
    return MarkdownProblem(
        item_id=items,
        market=markets,
        category=rows["category"].to_numpy().astype(str).astype(object),
        full_price=full,
        fx_rate=fx,
        unit_cost=cost,
        demand=constant_elasticity_demand(base, e, ladder, ratio),
        pool=pool,
        pool_stock=stock,
        pool_salvage=pool_salv,
        pool_item=s["item_id"].to_numpy().astype(str),
        pool_market=s["market"].to_numpy().astype(str),
        config=config,
        base_quantity=base,
        elasticity=e,
        price_unit=unit,
    )


def minor_units(rows: pl.DataFrame) -> np.ndarray | None:
    """Each row's minor unit from its ``currency`` column (ISO 4217: JPY 1, KWD 0.001, most
    0.01; an empty currency counts as two decimals); None without the column."""
    from pricelab.optimize.minor_unit import decimals

    if "currency" not in rows.columns:
        return None
    return np.array([10.0 ** -decimals(c) for c in rows["currency"].to_list()], dtype=float)
