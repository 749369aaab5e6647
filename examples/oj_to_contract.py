"""Convert Dominick's orange juice (``oj_long.csv``) into pricelab contract files.

The data (``../shared/data/dominicks_oj``: 83 stores × 11 brands × up to 121 weeks, from
the R package bayesm, GPL >= 2) are read at run time and never copied into the
repository. Written files:

* ``sales.csv``: ``item_id`` = brand (e.g. ``Tropicana Premium 64 oz``), ``market`` =
  store (``S002``), ``date`` = Monday of the Dominick's week (week 1 starts Thursday
  1989-09-14, so its Monday is 1989-09-11), ``price`` = price per pack (``price_per_pack``),
  ``quantity`` = ``units`` (units sold, = round(exp(logmove))), ``promo`` = feature
  advertising (``feat > 0``; ``feat`` is a fraction in the source);
* ``items.csv``: ``item_id``, ``category`` = ``orange juice``, ``brand`` = the maker.

Usage::

    python examples/oj_to_contract.py --out /tmp/oj [--data DIR]
    pricelab ingest --db /tmp/oj/oj.duckdb --sales /tmp/oj/sales.csv --items /tmp/oj/items.csv
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import polars as pl

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "dominicks_oj"
WEEK1_MONDAY = dt.date(1989, 9, 11)


def contract_files(src: Path, out: Path) -> dict[str, Path]:
    """Write ``sales.csv`` and ``items.csv`` in the pricelab contract from ``oj_long.csv``."""
    raw = pl.read_csv(src / "oj_long.csv")
    sales = raw.select(
        pl.col("brand_name").alias("item_id"),
        pl.format("S{}", pl.col("store").cast(pl.String).str.zfill(3)).alias("market"),
        (pl.lit(WEEK1_MONDAY) + pl.duration(weeks=pl.col("week") - 1)).alias("date"),
        pl.col("price_per_pack").alias("price"),
        pl.col("units").cast(pl.Int64).alias("quantity"),
        (pl.col("feat") > 0).cast(pl.Int8).alias("promo"),
    ).sort("item_id", "market", "date")
    items = (
        sales.select("item_id")
        .unique()
        .sort("item_id")
        .with_columns(
            category=pl.lit("orange juice"),
            brand=pl.col("item_id")
            .str.replace(r"\s+\d+\s*oz$", "")
            .str.replace(r"\s+Premium$", ""),
        )
    )
    paths = {"sales": out / "sales.csv", "items": out / "items.csv"}
    sales.write_csv(paths["sales"])
    items.write_csv(paths["items"])
    return paths


def main(argv: list[str] | None = None) -> None:
    """Parse ``--out``/``--data`` and write the contract files."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="output folder")
    ap.add_argument("--data", type=Path, default=DATA, help="folder holding oj_long.csv")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    for name, path in contract_files(a.data, a.out).items():
        print(f"{name:<6} {path}")


if __name__ == "__main__":
    main()
