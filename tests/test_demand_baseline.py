"""The shared baseline (pricelab.demand.baseline): every path against a polars reference."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pricelab import api
from pricelab.demand.baseline import COLUMNS, baseline, window_dates
from pricelab.demand.from_store import demand_from_store
from pricelab.errors import UsageError
from pricelab.store import Store, record_run

START = dt.date(2024, 1, 1)
WEEKS = 10
ITEMS = ["A1", "A10", "A2", "B"]  # "A1" < "A10" < "A2": string order, not numeric
MARKETS = ["US", "DE", "JP"]


def sales() -> pl.DataFrame:
    rows = []
    for i, item in enumerate(ITEMS):
        for m, market in enumerate(MARKETS):
            if item == "B" and market == "JP":
                continue  # B/JP is never sold
            for w in range(WEEKS):
                rows.append(
                    (
                        item,
                        market,
                        START + dt.timedelta(weeks=w),
                        100.0 + 10 * i + 5 * m + 3 * ((w * (i + 2) + m) % 4),
                        (w * 7 + i * 3 + m) % 9,
                        20.0 + i,
                    )
                )
    return pl.DataFrame(
        rows, schema=["item_id", "market", "date", "price", "quantity", "unit_cost"], orient="row"
    )


def estimates(order: str) -> pl.DataFrame:
    keys = sales().select("item_id", "market").unique()
    if order == "extra":  # a group the window does not hold
        keys = pl.concat([keys, pl.DataFrame({"item_id": ["B"], "market": ["JP"]})])
    keys = keys.sort("item_id", "market", descending=order == "reversed")
    n = keys.height
    return keys.with_columns(
        pl.Series("elasticity", -1.1 - 0.13 * np.arange(n)),
        pl.Series("std_error", 0.05 + 0.01 * np.arange(n)),
    )


def make_db(tmp_path: Path, *, items: bool = True) -> Path:
    sales().write_csv(tmp_path / "sales.csv")
    pl.DataFrame(
        {
            "market": ["US", "DE", "JP"],
            "currency": ["USD", "EUR", "JPY"],
            "fx_rate": [1.1, 1.0, 160.0],
        }
    ).write_csv(tmp_path / "markets.csv")
    pl.DataFrame(
        {
            "item_id": ["A1", "A2", "A1"],
            "market": [None, None, "US"],
            "unit_cost": [30.0, 35.0, 33.0],
        }
    ).write_csv(tmp_path / "costs.csv")
    pl.DataFrame(
        {
            "item_id": ITEMS,
            "category": ["shoes", "bags", "shoes", None],
            "brand": ["X", "Y", "X", "Z"],
            "boutique_id": ["b1", "b2", "b1", "b3"],
        }
    ).write_csv(tmp_path / "items.csv")
    db = tmp_path / "b.duckdb"
    api.ingest(
        db,
        sales=tmp_path / "sales.csv",
        markets=tmp_path / "markets.csv",
        costs=tmp_path / "costs.csv",
        **({"items": tmp_path / "items.csv"} if items else {}),
    )
    return db


def store_estimates(db: Path, est: pl.DataFrame) -> str:
    with Store.open(db) as store:
        run = record_run(store, "estimate", {"model": "fixture"})
        with store.transaction():
            store.write_result("elasticities", est, run.run_id)
            run.finish({})
    return run.run_id


def reference(weeks: int, est: pl.DataFrame, mode: str) -> pl.DataFrame:
    """The baseline computed row by row in polars from the definition."""
    s = sales()
    last = s["date"].max()
    win = s.filter(pl.col("date") > last - dt.timedelta(weeks=weeks)).join(
        est, on=["item_id", "market"], how="left"
    )
    cur = win.sort("date").group_by("item_id", "market").agg(pl.col("price").last().alias("now"))
    win = win.join(cur, on=["item_id", "market"])
    units = (
        pl.col("quantity") * (pl.col("now") / pl.col("price")) ** pl.col("elasticity")
        if mode == "current"
        else pl.col("quantity").cast(pl.Float64)
    )
    price = pl.col("now").first() if mode == "current" else pl.col("price").mean()
    fx = {"US": 1.1, "DE": 1.0, "JP": 160.0}
    cost = {
        ("A1", "US"): 33.0,
        **{("A1", m): 30.0 for m in ("DE", "JP")},
        **{("A2", m): 35.0 for m in MARKETS},
    }
    out = win.group_by("item_id", "market").agg(
        units.mean().alias("units"),
        price.alias("price"),
        pl.col("unit_cost").mean().alias("sales_cost"),
        pl.len().alias("n"),
        pl.col("elasticity").first(),
        pl.col("std_error").first(),
    )
    return out.with_columns(
        pl.struct("item_id", "market", "sales_cost")
        .map_elements(
            lambda r: cost.get((r["item_id"], r["market"]), r["sales_cost"]) * fx[r["market"]],
            return_dtype=pl.Float64,
        )
        .alias("cost")
    ).sort("item_id", "market")


@pytest.mark.parametrize("order", ["sorted", "reversed", "extra"])
@pytest.mark.parametrize("mode", ["average", "current"])
def test_baseline_matches_definition_whatever_the_estimates_order(tmp_path, order, mode):
    db = make_db(tmp_path)
    est = estimates(order)
    run = store_estimates(db, est)
    with Store.open(db) as store:
        b = baseline(store, 4, estimates_run=run, mode=mode)
        after, through = window_dates(store, 4)
    ref = reference(4, est, mode)
    assert b.columns == [*COLUMNS, "elasticity", "std_error"]
    assert b.select("item_id", "market").equals(ref.select("item_id", "market"))
    assert b["item_id"].to_list()[:3] == ["A1", "A1", "A1"] and b.height == 11
    for got, want in [
        ("baseline_units", "units"),
        ("baseline_price", "price"),
        ("unit_cost", "cost"),
        ("elasticity", "elasticity"),
        ("std_error", "std_error"),
    ]:
        np.testing.assert_allclose(b[got].to_numpy(), ref[want].to_numpy(), rtol=1e-12)
    assert (b["n_weeks"] == 4).all()
    assert b.filter(pl.col("item_id") == "A10")["category"].unique().to_list() == ["bags"]
    assert b.filter(pl.col("item_id") == "B")["category"].null_count() == 2
    assert (after, through) == (
        START + dt.timedelta(weeks=WEEKS - 5),
        START + dt.timedelta(weeks=WEEKS - 1),
    )


def test_aligned_and_joined_estimates_give_identical_frames(tmp_path):
    db = make_db(tmp_path)
    runs = [store_estimates(db, estimates(o)) for o in ("sorted", "reversed")]
    with Store.open(db) as store:
        a, b = (baseline(store, 6, estimates_run=r) for r in runs)
    # the same elasticities are attached to the same keys whichever way they were stored
    lookup = estimates("sorted")
    assert a.drop("elasticity", "std_error").equals(b.drop("elasticity", "std_error"))
    for frame, est in ((a, lookup), (b, estimates("reversed"))):
        j = frame.join(est, on=["item_id", "market"], suffix="_ref")
        assert j.height == frame.height
        assert (j["elasticity"] == j["elasticity_ref"]).all()


def test_without_items_the_attributes_are_null(tmp_path):
    db = make_db(tmp_path, items=False)
    with Store.open(db) as store:
        b = baseline(store, 4)
    assert b.columns == COLUMNS
    assert all(b[c].null_count() == b.height for c in ("category", "brand", "boutique_id"))


def test_current_mode_needs_an_estimate_run(tmp_path):
    db = make_db(tmp_path)
    with Store.open(db) as store, pytest.raises(UsageError, match="needs an estimate run"):
        baseline(store, 4, mode="current")
    with Store.open(db) as store, pytest.raises(UsageError, match="unknown baseline mode 'x'"):
        baseline(store, 4, mode="x", estimates_run="r")


def test_optimizer_demand_table_is_the_current_baseline(tmp_path):
    db = make_db(tmp_path)
    est = estimates("sorted")
    run = store_estimates(db, est)
    with Store.open(db) as store:
        table, used = demand_from_store(store, estimates=run, baseline_weeks=5)
    ref = reference(5, est, "current")
    assert used == run
    assert table.select("item_id", "market").equals(ref.select("item_id", "market"))
    np.testing.assert_allclose(
        table["base_quantity"].to_numpy(), ref["units"].to_numpy(), rtol=1e-12
    )
    np.testing.assert_allclose(table["base_price"].to_numpy(), ref["price"].to_numpy())
    np.testing.assert_allclose(table["unit_cost"].to_numpy(), ref["cost"].to_numpy())
    assert table.columns[:8] == [
        "item_id",
        "market",
        "elasticity",
        "std_error",
        "base_price",
        "base_quantity",
        "unit_cost",
        "fx_rate",
    ]
