"""The demand table before optimisation: required columns, types, rows that cannot be
optimised (skipped with a reason, or :class:`DataError` with ``strict=True``) and each
row's rules (global rules with the overrides that match it)."""

from __future__ import annotations

import numpy as np
import polars as pl

from pricelab.errors import DataError
from pricelab.optimize.constraints import Constraints, Rules

REQUIRED = ("item_id", "market", "elasticity", "base_price", "base_quantity", "unit_cost")


def _skip_reasons(df: pl.DataFrame, needs_cost: bool = True) -> pl.Series:
    def bad(col: str, rule: pl.Expr) -> pl.Expr:
        return pl.when(rule).then(pl.lit(col)).otherwise(pl.lit(None))

    e = pl.col("elasticity")
    reasons = [
        bad("elasticity is missing or NaN", e.is_null() | e.is_nan()),
        bad("elasticity >= 0 (no finite optimum)", e >= 0),
        bad(
            "base_price missing or <= 0",
            pl.col("base_price").is_null() | ~(pl.col("base_price") > 0),
        ),
        bad(
            "base_quantity missing or <= 0",
            pl.col("base_quantity").is_null() | ~(pl.col("base_quantity") > 0),
        ),
        bad(
            "unit_cost missing or < 0",
            (pl.col("unit_cost").is_null() if needs_cost else pl.lit(False))
            | (pl.col("unit_cost") < 0),
        ),
        bad("fx_rate <= 0", pl.col("fx_rate").is_null() | ~(pl.col("fx_rate") > 0)),
        bad("stock < 0", pl.col("stock") < 0),
    ]
    return df.select(
        pl.concat_str(reasons, separator="; ", ignore_nulls=True).alias("reason")
    ).to_series()


def prepare(
    demand: pl.DataFrame, strict: bool, needs_cost: bool = True
) -> tuple[pl.DataFrame, pl.DataFrame]:
    missing = [c for c in REQUIRED if c not in demand.columns]
    if missing:
        raise DataError(
            f"demand table: missing column(s) {', '.join(missing)}; required: {', '.join(REQUIRED)}"
        )
    df = demand
    for col, default in (("fx_rate", 1.0), ("stock", None), ("std_error", None)):
        if col not in df.columns:
            df = df.with_columns(pl.lit(default, dtype=pl.Float64).alias(col))
    if "category" not in df.columns:
        df = df.with_columns(pl.lit(None, dtype=pl.String).alias("category"))
    num = (
        "elasticity",
        "base_price",
        "base_quantity",
        "unit_cost",
        "fx_rate",
        "stock",
        "std_error",
    )
    try:
        df = df.with_columns(
            [pl.col(c).cast(pl.Float64) for c in num]
            + [pl.col(c).cast(pl.String) for c in ("item_id", "market", "category")]
        )
    except pl.exceptions.PolarsError as exc:
        raise DataError(f"demand table: non-numeric value: {str(exc).splitlines()[0]}") from exc
    dup = df.group_by("item_id", "market").len().filter(pl.col("len") > 1)
    if dup.height:
        r = dup.row(0)
        raise DataError(f"demand table: duplicate row for item_id {r[0]}, market {r[1]}")
    df = df.with_columns(_skip_reasons(df, needs_cost).alias("reason"))
    bad = df.filter(pl.col("reason") != "")
    if strict and bad.height:
        first = bad.row(0, named=True)
        raise DataError(
            f"demand table: {bad.height} row(s) cannot be optimised, first "
            f"{first['item_id']}/{first['market']}: {first['reason']}"
        )
    skipped = bad.select("item_id", "market", "reason")
    return df.filter(pl.col("reason") == "").drop("reason"), skipped


def rules_per_row(df: pl.DataFrame, cons: Constraints) -> list[Rules]:
    cols = {k: df[k].to_list() for k in ("item_id", "market", "category")}
    frozen = set(cons.frozen_items)
    active: list[dict] = [{} for _ in range(df.height)]
    for ov in cons.overrides:
        for i, hit in enumerate(ov.mask(cols)):
            if hit:
                cur = active[i]
                for k, v in ov.settings.items():
                    cur[k] = {**cur.get(k, {}), **v} if k == "bounds" else v
    out = []
    for i in range(df.height):
        r = cons.rules_for(active[i])
        if cols["item_id"][i] in frozen and "frozen" not in active[i]:
            r = Rules(r.bounds, r.min_margin_pct, r.parity_gap_pct, r.ladder, r.inventory, True)
        out.append(r)
    return out


def skip_empty_stock(
    df: pl.DataFrame, rules: list[Rules], skipped: pl.DataFrame, strict: bool
) -> tuple[pl.DataFrame, list[Rules], pl.DataFrame]:
    """Rows under ``inventory: true`` with stock 0: no finite price sells nothing, skip them."""
    stock = df["stock"].to_numpy().astype(float)
    empty = np.array([r.inventory for r in rules], dtype=bool) & (stock == 0)
    if not empty.any():
        return df, rules, skipped
    why = "stock 0 under inventory: true (nothing to sell)"
    bad = df.filter(pl.Series(empty)).select("item_id", "market")
    if strict:
        r = bad.row(0)
        raise DataError(
            f"demand table: {bad.height} row(s) cannot be optimised, first {r[0]}/{r[1]}: {why}"
        )
    skipped = pl.concat([skipped, bad.with_columns(pl.lit(why).alias("reason"))])
    keep = ~empty
    return df.filter(pl.Series(keep)), [r for r, k in zip(rules, keep, strict=True) if k], skipped
