"""``estimate`` finds the groups in its one scan of the sales (runs of key hashes looked up
in ``sales_keys``, kept by ingest) instead of a whole-table aggregate first (issue #20).
The results equal the aggregate (rowid) path's and the whole frame's; a ``sales_keys``
that does not match the table only sends the command down the slower path."""

from __future__ import annotations

import shutil

import numpy as np
import polars as pl
import pytest

from pricelab import api
from pricelab.elasticity import estimate
from pricelab.elasticity.synthetic import simulate_panel
from pricelab.engines import chunked, keyruns
from pricelab.store import Store
from pricelab.store.loaders import load_items, load_sales
from pricelab.store.sales_keys import SALES_KEYS


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> str:
    sales, items, _ = simulate_panel(n_items=40, weeks=40, base_units=1.5, seed=11)
    # missing weeks inside groups, later starts, earlier ends; low volumes give zero weeks
    sales = sales.filter(
        ~((pl.col("item_id").str.ends_with("3")) & (pl.col("date") < pl.date(2022, 3, 1)))
        & ~((pl.col("item_id").str.ends_with("7")) & (pl.col("date") > pl.date(2022, 8, 1)))
        & ~((pl.col("item_id").str.ends_with("5")) & (pl.col("date").dt.week() % 5 == 0))
    )
    assert (sales["quantity"] == 0).sum() > 100
    tmp = tmp_path_factory.mktemp("keyruns")
    sales.write_parquet(tmp / "sales.parquet")
    items.write_csv(tmp / "items.csv")
    db = str(tmp / "shop.duckdb")
    api.ingest(db, sales=tmp / "sales.parquet", items=tmp / "items.csv")
    return db


class _Spy:
    """Counts the chunks each path yields."""

    def __init__(self, monkeypatch) -> None:
        self.runs = self.rowid = 0
        real_cut, real_chunks = keyruns.KeyRuns._cut, chunked._chunks

        def cut(obj, *a, **k):
            for x in real_cut(obj, *a, **k):
                self.runs += 1
                yield x

        def chunks(*a, **k):
            for x in real_chunks(*a, **k):
                self.rowid += 1
                yield x

        monkeypatch.setattr(keyruns.KeyRuns, "_cut", cut)
        monkeypatch.setattr(chunked, "_chunks", chunks)


def _close(a, b, rtol: float = 1e-10) -> None:
    for x, y in ((a.elasticities, b.elasticities), (a.params, b.params)):
        assert x.columns == y.columns and x.height == y.height
        num = [c for c, t in x.schema.items() if t.is_float()]
        assert x.drop(num).equals(y.drop(num))
        for c in num:
            u, v = x[c].to_numpy(), y[c].to_numpy()
            assert np.array_equal(np.isnan(u), np.isnan(v)), c
            ok = ~np.isnan(u)
            np.testing.assert_allclose(u[ok], v[ok], rtol=rtol, atol=1e-13, err_msg=c)
    assert a.parameters == b.parameters


def _without_index(src: str, tmp_path) -> str:
    db = str(tmp_path / "noindex.duckdb")
    shutil.copyfile(src, db)
    with Store.open(db) as store:
        store.execute(f"DROP TABLE {SALES_KEYS}")
    return db


@pytest.mark.parametrize("model", ["ols", "poisson", "hierarchical"])
@pytest.mark.parametrize(("rows", "before"), [(30, None), (700, None), (500, "2022-07-01")])
def test_key_runs_equal_the_aggregate_path(shop, tmp_path, monkeypatch, model, rows, before):
    """Chunks of whole groups found from the scan (30 rows: every group longer than a
    chunk and spread over several Arrow batches) give the rowid path's numbers, and the
    whole frame's."""
    spy = _Spy(monkeypatch)
    kw = {"model": model, "slope": "item"}
    with Store.open(shop, read_only=True) as store:
        items = load_items(store)
        got = chunked.estimate_chunked(store, kw, items=items, before=before, chunk_rows=rows)
        whole = estimate(load_sales(store, before=before), items=items, **kw)
    assert spy.runs > 3 and spy.rowid == 0
    with Store.open(_without_index(shop, tmp_path), read_only=True) as store:
        old = chunked.estimate_chunked(store, kw, items=items, before=before, chunk_rows=rows)
    assert spy.rowid > 3
    assert got is not None and old is not None
    _close(old, got)
    _close(whole, got, rtol=1e-9)


def test_ingest_keeps_the_key_index(shop, tmp_path, monkeypatch) -> None:
    """Fresh load: every key; later sales of new groups: added; later weeks of stored
    groups: the table rewritten in key order, the index kept (the key-runs path reads
    it); a database loaded before the index existed gets it on its next append."""
    db = str(tmp_path / "grow.duckdb")
    with Store.open(shop, read_only=True) as store:
        sales = load_sales(store)
        keys = store.query(f"SELECT * FROM {SALES_KEYS}")
        distinct = store.query("SELECT DISTINCT item_id, market FROM sales")
    assert keys.sort(keys.columns).equals(distinct.sort(distinct.columns))
    first = sales.filter(pl.col("item_id") < "I000020")
    later = sales.filter(pl.col("item_id") >= "I000020")
    for i, part in enumerate((first, later)):
        part.write_parquet(tmp_path / f"s{i}.parquet")
        api.ingest(db, sales=tmp_path / f"s{i}.parquet")
    with Store.open(db, read_only=True) as store:
        assert store.count(SALES_KEYS) == distinct.height
    run = api.estimate(db, model="ols")
    assert run.results.elasticities.height == distinct.height
    extra = sales.filter(pl.col("item_id") == "I000001").with_columns(
        pl.col("date") + pl.duration(weeks=60)
    )
    extra.write_parquet(tmp_path / "extra.parquet")
    api.ingest(db, sales=tmp_path / "extra.parquet")
    spy = _Spy(monkeypatch)
    with Store.open(db, read_only=True) as store:
        assert store.count(SALES_KEYS) == distinct.height
        stored = store.query("SELECT item_id, market, date FROM sales ORDER BY rowid")
        whole = estimate(load_sales(store), model="ols")
    assert stored.equals(stored.sort("item_id", "market", "date"))
    _close(whole, api.estimate(db, model="ols").results, rtol=1e-9)
    assert spy.runs >= 1 and spy.rowid == 0
    legacy = _without_index(db, tmp_path)
    later = extra.tail(1).with_columns(pl.col("date") + pl.duration(weeks=1))
    later.write_parquet(tmp_path / "later.parquet")
    api.ingest(legacy, sales=tmp_path / "later.parquet")
    with Store.open(legacy, read_only=True) as store:
        keys = store.query(f"SELECT * FROM {SALES_KEYS} ORDER BY ALL")
    assert keys.equals(distinct.sort(distinct.columns))


@pytest.mark.parametrize(
    "edit",
    [
        f"DELETE FROM {SALES_KEYS} WHERE item_id = 'I000004'",  # a key it does not know
        "UPDATE sales SET item_id = 'I000009' WHERE item_id = 'I000002' AND market = 'US'",
        f"INSERT INTO {SALES_KEYS} SELECT * FROM {SALES_KEYS} LIMIT 1",  # one key twice
    ],
)
def test_a_table_edited_behind_ingest_is_never_misread(shop, tmp_path, edit):
    """The scan checks every group against ``sales_keys``: a mismatch takes the aggregate
    path (or the whole frame), whose results equal the whole frame's."""
    db = str(tmp_path / "edited.duckdb")
    shutil.copyfile(shop, db)
    with Store.open(db) as store:
        store.execute(edit)
        whole = estimate(load_sales(store), model="ols")
    run = api.estimate(db, model="ols")
    _close(whole, run.results, rtol=1e-9)
    with Store.open(db, read_only=True) as store, pytest.raises(keyruns.Misordered):
        runs = keyruns.KeyRuns(
            store, f"SELECT hash(item_id, market) AS {keyruns.HASH}, price FROM sales", [], 50
        )
        for _ in runs():
            pass


@pytest.mark.parametrize("model", ["ols", "hierarchical"])
def test_the_fingerprint_taken_ahead_is_the_inputs_at_the_end(shop, tmp_path, model) -> None:
    """``ols``, ``poisson`` and ``hierarchical`` take their input fingerprint in a
    background thread while they fit: the run records the same fingerprint as one taken
    when the run is written, and a change to the sales between two runs changes it
    (lineage)."""
    from pricelab.store import runs as store_runs
    from pricelab.store.runs import get_run, input_fingerprint

    db = str(tmp_path / "fp.duckdb")
    shutil.copyfile(shop, db)
    ahead = store_runs.fingerprint_ahead
    started: list[str] = []

    def spy(store):
        started.append(model)
        return ahead(store)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(store_runs, "fingerprint_ahead", spy)
        first = api.estimate(db, model=model).run_id
    assert started == [model]
    with Store.open(db) as store:
        assert get_run(store, first)["inputs"] == input_fingerprint(store)
        store.execute("UPDATE sales SET price = price * 1.01 WHERE item_id = 'I000001'")
        changed = input_fingerprint(store)
    second = api.estimate(db, model=model).run_id
    with Store.open(db, read_only=True) as store:
        a, b = get_run(store, first)["inputs"], get_run(store, second)["inputs"]
    assert b == changed and a["sales"]["hash"] != b["sales"]["hash"]
    assert {k: v for k, v in a.items() if k != "sales"} == {
        k: v for k, v in b.items() if k != "sales"
    }


def test_a_failed_estimate_leaves_no_fingerprint_thread_behind(shop, tmp_path, monkeypatch):
    """The fingerprint thread has ended (its cursor closed) before the command returns,
    also when the fit fails first; the database is unchanged."""
    import threading
    import time

    from pricelab.errors import DataError
    from pricelab.store import runs as store_runs

    real = store_runs.input_fingerprint

    def slow(store):
        time.sleep(1.0)  # still running when the fit fails
        return real(store)

    monkeypatch.setattr(store_runs, "input_fingerprint", slow)
    db = str(tmp_path / "bad.duckdb")
    shutil.copyfile(shop, db)
    with Store.open(db) as store:
        store.execute("UPDATE sales SET price = 0 WHERE item_id = 'I000002'")
        before = store.count("runs")
    with pytest.raises(DataError, match="'price' must be > 0"):
        api.estimate(db, model="ols")
    alive = [t for t in threading.enumerate() if t.name == "pricelab-fingerprint"]
    assert not any(t.is_alive() for t in alive)
    with Store.open(db, read_only=True) as store:
        assert store.count("runs") == before
