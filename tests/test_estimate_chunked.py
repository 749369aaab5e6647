"""``estimate`` on a database streams the sales in chunks of whole groups for ols, poisson
and hierarchical; the results are those of the whole sorted frame (issue #20)."""

from __future__ import annotations

import shutil

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from pricelab import api
from pricelab.elasticity import estimate
from pricelab.elasticity.synthetic import simulate_panel
from pricelab.engines import chunked
from pricelab.store import Store
from pricelab.store.loaders import load_items, load_sales


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> str:
    sales, items, _ = simulate_panel(n_items=60, weeks=40, seed=7)
    # uneven histories: some groups start later, some end earlier
    sales = sales.filter(
        ~((pl.col("item_id").str.ends_with("3")) & (pl.col("date") < pl.date(2022, 3, 1)))
        & ~((pl.col("item_id").str.ends_with("7")) & (pl.col("date") > pl.date(2022, 8, 1)))
    )
    # a numeric control column of the user's (stored as an extra sales column)
    sales = sales.with_columns(
        deal=(pl.col("price").hash(3) % 5 == 0).cast(pl.Float64) * (pl.col("promo") == 0)
    )
    tmp = tmp_path_factory.mktemp("chunked")
    sales.write_csv(tmp / "sales.csv")
    items.write_csv(tmp / "items.csv")
    db = str(tmp / "shop.duckdb")
    api.ingest(db, sales=tmp / "sales.csv", items=tmp / "items.csv")
    return db


def _same(a, b) -> None:
    assert_frame_equal(a.elasticities, b.elasticities, check_exact=True)
    assert_frame_equal(a.params, b.params, check_exact=True)
    assert a.parameters == b.parameters
    assert a.model == b.model


def _close(a, b) -> None:
    """Equal keys, flags and texts; numbers to 1e-9 (relative)."""
    assert a.parameters == b.parameters and a.model == b.model
    for x, y in ((a.elasticities, b.elasticities), (a.params, b.params)):
        assert x.columns == y.columns and x.height == y.height
        num = [c for c, t in x.schema.items() if t.is_float()]
        assert_frame_equal(x.drop(num), y.drop(num))
        for c in num:
            u, v = x[c].to_numpy(), y[c].to_numpy()
            assert np.array_equal(np.isnan(u), np.isnan(v)), c
            ok = ~np.isnan(u)
            np.testing.assert_allclose(u[ok], v[ok], rtol=1e-9, atol=1e-12, err_msg=c)


@pytest.mark.parametrize("model", ["ols", "poisson", "hierarchical"])
@pytest.mark.parametrize("before", [None, "2022-07-01"])
def test_chunks_give_the_whole_frame_results(shop, model, before) -> None:
    kw = {"model": model, "slope": "item"}
    with Store.open(shop, read_only=True) as store:
        items = load_items(store)
        whole = estimate(load_sales(store, before=before), items=items, **kw)
        seen: list[tuple[int, int]] = []
        got = chunked.estimate_chunked(
            store,
            kw,
            items=items,
            before=before,
            chunk_rows=700,
            progress=lambda d, t: seen.append((d, t)),
        )
    assert got is not None
    _close(whole, got)
    assert len(seen) > 3 and seen[-1][0] == seen[-1][1]  # several chunks, all rows


@pytest.mark.parametrize(
    "kw",
    [
        {"model": "ols", "controls": "promo,fourier,trend,deal", "se": "cluster"},
        {"model": "ols", "controls": "promo,fourier2,trend,deal", "se": "HC3"},
        {"model": "ols", "se": "HAC"},
        {"model": "poisson", "controls": "promo,fourier,trend,deal", "se": "cluster"},
    ],
)
def test_controls_and_standard_errors_match_the_whole_frame(shop, kw) -> None:
    """Controls (a user's numeric column too), clustered, HC3 and HAC errors: the streamed
    path equals :func:`estimate` on the whole frame (checked against statsmodels in
    tests/test_elasticity*.py) to 1e-9."""
    with Store.open(shop, read_only=True) as store:
        items = load_items(store)
        whole = estimate(load_sales(store), items=items, **kw)
        got = chunked.estimate_chunked(store, kw, items=items, chunk_rows=900)
    assert got is not None
    _close(whole, got)
    assert "deal" in got.params.columns or "deal" not in kw.get("controls", "")


def test_a_split_group_falls_back_to_the_sorted_frame(shop, tmp_path) -> None:
    """One group's rows in two places of the table (appended later): not streamable."""
    db = tmp_path / "split.duckdb"
    shutil.copyfile(shop, db)
    with Store.open(db) as store:
        row = store.query("SELECT * FROM sales WHERE item_id = 'I000001' ORDER BY date LIMIT 1")
        store.execute("DELETE FROM sales WHERE item_id = 'I000001' AND date = ?", [row["date"][0]])
        store.insert_frame("sales", row)
        assert chunked.estimate_chunked(store, {"model": "ols"}, items=None) is None
        whole = estimate(load_sales(store), model="ols")
    run = api.estimate(db, model="ols")
    _same(whole, run.results)


def test_unsorted_storage_falls_back_to_the_sorted_frame(shop, tmp_path, monkeypatch) -> None:
    db = tmp_path / "shuffled.duckdb"
    with Store.open(shop, read_only=True) as store:
        whole = estimate(load_sales(store), items=load_items(store), model="ols")
        sales = store.query("SELECT * FROM sales").sample(fraction=1.0, shuffle=True, seed=1)
    path = tmp_path / "sales.parquet"
    sales.write_parquet(path)
    api.ingest(db, sales=path)
    with Store.open(db) as store:  # make the stored order differ from key order
        store.execute("DELETE FROM sales WHERE item_id = 'I000000'")
        keep = sales.filter(pl.col("item_id") == "I000000")
        store.insert_frame("sales", keep)
    with Store.open(db, read_only=True) as store:
        assert chunked.estimate_chunked(store, {"model": "ols"}, items=None) is None
    monkeypatch.setattr(chunked, "CHUNK_ROWS", 700)
    run = api.estimate(db, model="ols")
    assert_frame_equal(
        run.results.elasticities, whole.elasticities.select(run.results.elasticities.columns)
    )


def test_the_command_uses_chunks_and_stores_the_same_run(shop, tmp_path, monkeypatch) -> None:
    calls: list[int] = []
    real = chunked.estimate_chunked

    def spy(*args, **kwargs):
        out = real(*args, **{**kwargs, "chunk_rows": 700})
        calls.append(0 if out is None else out.elasticities.height)
        return out

    monkeypatch.setattr(chunked, "estimate_chunked", spy)
    db = tmp_path / "copy.duckdb"
    shutil.copyfile(shop, db)
    for model in ("poisson", "hierarchical"):
        with Store.open(shop, read_only=True) as store:
            whole = estimate(load_sales(store), items=load_items(store), model=model)
        run = api.estimate(db, model=model)
        assert calls[-1] == whole.elasticities.height
        _close(whole, run.results)
        stored = Store.open(db, read_only=True)
        with stored:
            back = stored.read_result("elasticities", run.run_id)
        assert back.height == whole.elasticities.height
    # panel pools across groups with week effects: it reads the whole frame
    api.estimate(db, model="panel")
    assert len(calls) == 2


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("quantity", -1, "'quantity' must be >= 0 (4 rows"),
        ("price", 0.0, "'price' must be > 0 (4 rows"),
    ],
)
def test_bad_values_in_the_table_are_bad_input(shop, tmp_path, column, value, message) -> None:
    """A value written behind ingest's back: the streamed path says what the whole-frame
    path says (with the whole table's count) and stores nothing (two items in two markets: 4 rows)."""
    from pricelab.errors import DataError

    db = tmp_path / "bad.duckdb"
    shutil.copyfile(shop, db)
    with Store.open(db) as store:
        store.execute(
            f"UPDATE sales SET {column} = ? WHERE item_id IN ('I000002', 'I000040') "
            "AND date = (SELECT max(date) FROM sales WHERE item_id = 'I000002')",
            [value],
        )
        runs = store.count("runs")
    with pytest.raises(DataError, match=message.replace("(", r"\(")):
        api.estimate(db, model="ols")
    with Store.open(db, read_only=True) as store:
        assert store.count("runs") == runs
