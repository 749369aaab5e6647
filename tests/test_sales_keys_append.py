"""Appends keep ``sales_keys`` valid (issue #20): a nightly-appended database is stored
exactly as a fresh load of the same rows, so ``estimate`` takes the key-runs path and
gives the fresh database's results bit for bit; a failed or killed append leaves the
previous table (rows and their stored order)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pricelab import api
from pricelab.elasticity.synthetic import simulate_panel
from pricelab.engines import chunked, keyruns
from pricelab.errors import DataError
from pricelab.store import Store, sales_keys
from pricelab.store.sales_keys import SALES_KEYS
from tests.conftest import assert_same, run_subprocess, snapshot

BASE_WEEKS, NIGHTS = 20, 30


def _stored(db: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The sales in stored order and the key index (sorted: it is a set)."""
    with Store.open(db, read_only=True) as store:
        sales = store.query("SELECT * FROM sales ORDER BY rowid")
        keys = store.query(f"SELECT * FROM {SALES_KEYS} ORDER BY ALL")
    return sales, keys


def _write(df: pl.DataFrame, path: Path, seed: int) -> Path:
    """A night's file, its rows in no particular order (ingest sorts them)."""
    df.sample(fraction=1.0, shuffle=True, seed=seed).write_parquet(path)
    return path


@pytest.fixture(scope="module")
def month(tmp_path_factory) -> dict[str, object]:
    """A database built by a base load, 30 nightly appends (each a new week of the stored
    groups; night 7 also brings a new item with its history), an item with a higher id
    than any stored one loaded alone on night 12, then a corrected week re-loaded with
    ``--replace``; beside it, one fresh load of the same rows."""
    sales, _, _ = simulate_panel(n_items=14, weeks=BASE_WEEKS + NIGHTS, base_units=2.0, seed=5)
    tmp = tmp_path_factory.mktemp("nightly")
    weeks = sorted(sales["date"].unique().to_list())
    item = pl.col("item_id")
    rewrites: list[int] = []
    real = sales_keys.cluster_sales

    def counted(store: Store) -> None:
        rewrites.append(1)
        real(store)

    def load(rows: pl.DataFrame, name: str, **kw: bool) -> int:
        n = len(rewrites)
        api.ingest(db, sales=_write(rows, tmp / f"{name}.parquet", len(name)), **kw)
        return len(rewrites) - n

    db = tmp / "nightly.duckdb"
    sales_keys.cluster_sales = counted
    try:
        base = sales.filter(~item.is_in(["I000006", "I000013"]) & (pl.col("date") < weeks[20]))
        assert load(base, "base") == 0
        for night in range(NIGHTS):
            week = weeks[BASE_WEEKS + night]
            rows = sales.filter((pl.col("date") == week) & (item != "I000013"))
            if night == 7:  # a new item between stored ones, with its history
                rows = rows.filter(item != "I000006")
                rows = pl.concat(
                    [rows, sales.filter((item == "I000006") & (pl.col("date") <= week))]
                )
            elif night < 7:
                rows = rows.filter(item != "I000006")
            if night == 12:  # only a new item after every stored one: appended in key order
                assert load(sales.filter((item == "I000013") & (pl.col("date") < week)), "new") == 0
            if night >= 12:
                rows = pl.concat(
                    [rows, sales.filter((pl.col("date") == week) & (item == "I000013"))]
                )
            assert load(rows, f"night{night}") == 1
        # the corrected week: every item of market US, week 25, price and units re-stated
        fix = pl.col("market").eq("US") & pl.col("date").eq(weeks[25])
        corrected = sales.filter(fix).with_columns(pl.col("price") * 1.05, pl.col("quantity") + 1)
        assert load(corrected, "corrected", replace=True) == 1
    finally:
        sales_keys.cluster_sales = real
    final = pl.concat([sales.filter(~fix), corrected])
    fresh = tmp / "fresh.duckdb"
    api.ingest(fresh, sales=_write(final, tmp / "final.parquet", 7))
    return {"db": db, "fresh": fresh, "final": final}


def test_nightly_appends_store_sales_as_a_fresh_load(month) -> None:
    """Every row (recomputed from the files), in the fresh load's order, and every key."""
    sales, keys = _stored(month["db"])
    fresh_sales, fresh_keys = _stored(month["fresh"])
    assert sales.equals(fresh_sales) and keys.equals(fresh_keys)
    final = month["final"].select(sales.columns).sort("item_id", "market", "date")
    assert sales.height == final.height == 14 * 2 * (BASE_WEEKS + NIGHTS)
    assert sales.with_columns(pl.col("promo").cast(final["promo"].dtype)).equals(final)
    assert keys.height == sales.select("item_id", "market").unique().height == 28


@pytest.mark.parametrize("model", ["ols", "poisson", "hierarchical"])
def test_estimate_on_the_appended_database_takes_the_fast_path(month, monkeypatch, model):
    """``estimate`` finds the groups in its scan (no aggregate, no whole frame) and gives
    the fresh database's results, every column bit for bit."""
    scans: list[int] = []
    real_cut = keyruns.KeyRuns._cut

    def cut(obj, *a, **k):
        for x in real_cut(obj, *a, **k):
            scans.append(x[0].size)
            yield x

    def no_fallback(*a, **k):
        raise AssertionError("the aggregate path was taken")

    monkeypatch.setattr(keyruns.KeyRuns, "_cut", cut)
    monkeypatch.setattr(chunked, "_groups", no_fallback)
    got = api.estimate(month["db"], model=model)
    assert sum(scans) >= 28  # every group came from the key-runs scan
    want = api.estimate(month["fresh"], model=model)
    assert got.results.elasticities.equals(want.results.elasticities)
    assert got.results.params.equals(want.results.params)
    assert got.elasticities.equals(want.elasticities)


def test_a_failed_append_leaves_the_previous_table(month, tmp_path) -> None:
    """An append to stored groups that fails a check after the rewrite (a market the
    markets table lacks) rolls the rewrite back: same rows, same stored order."""
    import shutil

    db = tmp_path / "copy.duckdb"
    shutil.copyfile(month["db"], db)
    (tmp_path / "markets.csv").write_text("market,fx_rate\nUS,1.0\nGB,1.2\n")
    api.ingest(db, markets=tmp_path / "markets.csv")
    before, stored = snapshot(db), _stored(db)
    last = month["final"]["date"].max()
    bad = (
        month["final"]
        .filter(pl.col("date") == last)
        .with_columns(
            pl.col("date") + pl.duration(weeks=1),
            pl.when(pl.col("item_id").eq("I000003") & pl.col("market").eq("US"))
            .then(pl.lit("FR"))
            .otherwise("market")
            .alias("market"),
        )
    )
    with pytest.raises(DataError, match="missing markets used in sales"):
        api.ingest(db, sales=_write(bad, tmp_path / "bad.parquet", 3))
    assert_same(before, snapshot(db))
    for a, b in zip(stored, _stored(db), strict=True):
        assert a.equals(b)


def test_a_killed_append_leaves_the_previous_table(month, tmp_path) -> None:
    """The process killed after the rewrite, before the commit: the previous table."""
    import shutil

    db = tmp_path / "copy.duckdb"
    shutil.copyfile(month["db"], db)
    before, stored = snapshot(db), _stored(db)
    last = month["final"]["date"].max()
    more = (
        month["final"]
        .filter(pl.col("date") == last)
        .with_columns(pl.col("date") + pl.duration(weeks=1))
    )
    proc = run_subprocess(
        "ingest",
        "--db",
        db,
        "--sales",
        _write(more, tmp_path / "more.parquet", 4),
        env={"PRICELAB_FAULT": "ingest:after-sales"},
    )
    assert proc.returncode == -9
    assert_same(before, snapshot(db))
    for a, b in zip(stored, _stored(db), strict=True):
        assert a.equals(b)
