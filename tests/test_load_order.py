"""Sales are stored in key order and read back without a sort; an unsorted table (e.g.
after a --replace) is still read in key order, exactly as DuckDB's ORDER BY returns it."""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import polars as pl
from polars.testing import assert_frame_equal

from pricelab.store import Store
from pricelab.store.loaders import load_sales, sort_by_key


def _sales(n_items: int = 30, weeks: int = 6, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [
        (f"I{i:03d}", m, dt.date(2024, 1, 1) + dt.timedelta(weeks=w))
        for i in range(n_items)
        for m in ("US", "GB", "DE")
        for w in range(weeks)
    ]
    df = pl.DataFrame(rows, schema=["item_id", "market", "date"], orient="row")
    df = df.with_columns(
        price=pl.Series(rng.uniform(1, 9, df.height)),
        quantity=pl.Series(rng.integers(0, 20, df.height)),
    )
    return df.sample(fraction=1.0, shuffle=True, seed=seed)  # any order, as a user's file


def test_sort_by_key_matches_duckdb_order_by() -> None:
    df = _sales()
    ref = duckdb.sql("SELECT * FROM df ORDER BY item_id, market, date").pl()
    out = sort_by_key(df)
    assert_frame_equal(out, ref, check_exact=True)
    assert sort_by_key(out) is out  # already sorted: returned as it is, no copy
    # ties on item only, then market, then date each break the order
    for i, j in ((0, 1), (5, 6), (17, 18)):
        swapped = pl.concat([ref[:i], ref[j : j + 1], ref[i:j], ref[j + 1 :]])
        assert_frame_equal(sort_by_key(swapped), ref, check_exact=True)


def test_ingest_stores_sales_in_key_order_and_load_reads_them_so(tmp_path) -> None:
    df = _sales()
    path = tmp_path / "sales.csv"
    df.write_csv(path)
    from pricelab import api

    db = tmp_path / "shop.duckdb"
    api.ingest(db, sales=path)
    con = duckdb.connect(str(db), read_only=True)
    scan = con.sql("SELECT item_id, market, date FROM sales").pl()  # storage order
    ordered = con.sql("SELECT item_id, market, date FROM sales ORDER BY ALL").pl()
    con.close()
    assert_frame_equal(scan, ordered, check_exact=True)
    # a --replace appends the new rows at the end: load still returns key order
    part = df.filter(pl.col("item_id") == "I000").with_columns(pl.col("price") * 2)
    part.write_csv(path)
    api.ingest(db, sales=path, replace=True)
    with Store.open(db, read_only=True) as store:
        loaded = load_sales(store)
        ref = store.query("SELECT * FROM sales ORDER BY item_id, market, date")
    assert_frame_equal(loaded, ref.drop([c for c in ref.columns if c not in loaded.columns]))
    assert loaded.filter(pl.col("item_id") == "I000")["price"].sum() > 0
