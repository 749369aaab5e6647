"""simulate: baseline, projection, filters, overrides and intervals against closed forms."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pricelab import api
from pricelab.errors import UsageError
from pricelab.simulate import baseline, simulate
from pricelab.store import Store, record_run

Z90 = 1.6448536269514722
START = dt.date(2024, 1, 1)
ITEMS = pl.DataFrame(
    {
        "item_id": ["I1", "I2", "I3"],
        "category": ["shoes", "bags", "shoes"],
        "brand": ["Alpha", "Beta", "Beta"],
        "boutique_id": ["B01", "B02", "B01"],
    }
)
MARKETS = pl.DataFrame(
    {
        "market": ["US", "DE", "GB"],
        "currency": ["USD", "EUR", "GBP"],
        "fx_rate": [1.1, 1.0, 0.85],
        "vat_rate": [0.0, 0.19, 0.2],
    }
)
BASE_PRICE = {"I1": 200.0, "I2": 900.0, "I3": 450.0}


def synthetic_sales(weeks: int = 12) -> pl.DataFrame:
    rows = []
    for i, item in enumerate(ITEMS["item_id"]):
        for m, (market, fx) in enumerate(zip(MARKETS["market"], MARKETS["fx_rate"], strict=True)):
            for w in range(weeks):
                price = round(BASE_PRICE[item] * fx * (1 + 0.05 * ((w + i + m) % 3 - 1)), 2)
                rows.append(
                    (
                        item,
                        market,
                        START + dt.timedelta(weeks=w),
                        price,
                        (3 * w + i + 2 * m) % 7,
                        w % 4 == 0,
                        0.4 * BASE_PRICE[item],
                    )
                )
    return pl.DataFrame(
        rows,
        schema=["item_id", "market", "date", "price", "quantity", "promo", "unit_cost"],
        orient="row",
    ).with_columns(pl.col("promo").cast(pl.Int8))


def elasticity_table() -> pl.DataFrame:
    keys = synthetic_sales(1).select("item_id", "market")
    n = keys.height
    return keys.with_columns(
        pl.Series("elasticity", -1.2 - 0.15 * np.arange(n)),
        pl.Series("std_error", 0.1 + 0.02 * np.arange(n)),
        pl.lit(float("nan")).alias("ci_low"),
        pl.lit(float("nan")).alias("ci_high"),
        pl.lit(12).alias("n_obs"),
        pl.lit("poisson").alias("method"),
    )


def make_db(tmp_path: Path) -> tuple[Path, str]:
    """A real DuckDB file loaded through ``api.ingest`` plus a stored estimate run."""
    sales_path = tmp_path / "sales.csv"
    synthetic_sales().write_csv(sales_path)
    ITEMS.write_csv(tmp_path / "items.csv")
    MARKETS.write_csv(tmp_path / "markets.csv")
    pl.DataFrame(
        {
            "item_id": ["I1", "I2", "I3", "I1"],
            "market": [None, None, None, "US"],
            "unit_cost": [80.0, 360.0, 180.0, 95.0],
        }
    ).write_csv(tmp_path / "costs.csv")
    db = tmp_path / "sim.duckdb"
    api.ingest(
        db,
        sales=sales_path,
        items=tmp_path / "items.csv",
        markets=tmp_path / "markets.csv",
        costs=tmp_path / "costs.csv",
    )
    with Store.open(db) as store:
        run = record_run(store, "estimate", {"model": "fixture"})
        with store.transaction():
            store.write_result("elasticities", elasticity_table(), run.run_id)
            run.finish({})
    return db, run.run_id


@pytest.fixture
def sim_db(tmp_path: Path) -> tuple[Path, str]:
    return make_db(tmp_path)


def reference_baseline(weeks: int) -> pl.DataFrame:
    """Average weekly units and price of the last ``weeks`` weeks, computed in polars."""
    s = synthetic_sales()
    last = s["date"].max()
    win = s.filter(pl.col("date") > last - dt.timedelta(weeks=weeks))
    return (
        win.group_by("item_id", "market")
        .agg(pl.col("quantity").mean().alias("q"), pl.col("price").mean().alias("p"))
        .join(
            elasticity_table().select("item_id", "market", "elasticity", "std_error"),
            on=["item_id", "market"],
        )
        .join(ITEMS, on="item_id")
        .join(MARKETS.select("market", "fx_rate"), on="market")
    )


def run_sim(db: Path, scenarios: list[dict], *, weeks: int = 4, horizon: int = 3, **kw: object):
    spec = {"baseline_weeks": weeks, "horizon_weeks": horizon, "scenarios": scenarios}
    with Store.open(db) as store:
        return simulate(store, spec, **kw)


def test_baseline_is_window_average(sim_db):
    db, run = sim_db
    with Store.open(db) as store:
        b = baseline(store, 4, estimates_run=run)
    ref = reference_baseline(4)
    got = b.join(ref, on=["item_id", "market"], how="full", coalesce=True)
    assert got.height == 9 and b.height == 9
    assert np.allclose(got["baseline_units"], got["q"], rtol=0, atol=1e-12)
    assert np.allclose(got["baseline_price"], got["p"], rtol=0, atol=1e-9)
    # unit cost: landed cost for I1/US, else the generic cost, in market currency
    i1us = b.filter((pl.col("item_id") == "I1") & (pl.col("market") == "US"))
    i1gb = b.filter((pl.col("item_id") == "I1") & (pl.col("market") == "GB"))
    assert i1us["unit_cost"][0] == pytest.approx(95.0 * 1.1)
    assert i1gb["unit_cost"][0] == pytest.approx(80.0 * 0.85)


def test_projection_is_units_times_ratio_power_e_and_others_unchanged(sim_db):
    db, _ = sim_db
    res = run_sim(
        db,
        [
            {
                "name": "us-shoes+10",
                "changes": [
                    {"where": {"market": "US", "category": "shoes"}, "price_change_pct": 10}
                ],
            }
        ],
    )
    t = res.table.join(reference_baseline(4), on=["item_id", "market"])
    hit = (pl.col("market") == "US") & (pl.col("category_right") == "shoes")
    inside, outside = t.filter(hit), t.filter(~hit)
    assert inside.height == 2 and outside.height == 7
    expect = 3 * inside["q"] * 1.1 ** inside["elasticity_right"]
    assert np.allclose(inside["scenario_quantity"], expect, rtol=1e-13, atol=0)
    assert np.allclose(inside["scenario_price"], 1.1 * inside["p"], rtol=1e-13)
    assert (outside["scenario_price"] == outside["baseline_price"]).all()
    assert (outside["scenario_quantity"] == outside["baseline_quantity"]).all()
    assert np.allclose(outside["baseline_quantity"], 3 * outside["q"], rtol=1e-13)
    assert (outside["quantity_low"] == outside["quantity_high"]).all()
    # revenue and profit follow from price, units and unit cost
    assert np.allclose(t["scenario_revenue"], t["scenario_price"] * t["scenario_quantity"])
    assert np.allclose(
        t["scenario_profit"], (t["scenario_price"] - t["unit_cost"]) * t["scenario_quantity"]
    )


def test_row_interval_is_closed_form_and_contains_point(sim_db):
    db, _ = sim_db
    res = run_sim(
        db,
        [
            {"name": "down", "changes": [{"price_change_pct": -15}]},
            {"name": "up", "changes": [{"price_change_pct": 20}]},
        ],
    )
    t = res.table.join(reference_baseline(4), on=["item_id", "market"])
    for name, r in (("down", 0.85), ("up", 1.2)):
        s = t.filter(pl.col("scenario") == name)
        a = 3 * s["q"] * r ** (s["elasticity"] - Z90 * s["std_error"])
        b = 3 * s["q"] * r ** (s["elasticity"] + Z90 * s["std_error"])
        assert np.allclose(s["quantity_low"], np.minimum(a, b), rtol=1e-12)
        assert np.allclose(s["quantity_high"], np.maximum(a, b), rtol=1e-12)
        assert (s["quantity_low"] <= s["scenario_quantity"]).all()
        assert (s["scenario_quantity"] <= s["quantity_high"]).all()
    agg = res.aggregates
    for k in ("quantity", "revenue", "profit"):
        assert (agg[f"{k}_low"] <= agg[f"scenario_{k}"] + 1e-9).all()
        assert (agg[f"scenario_{k}"] <= agg[f"{k}_high"] + 1e-9).all()


def test_aggregate_interval_of_one_row_matches_closed_form(sim_db):
    db, _ = sim_db
    res = run_sim(
        db,
        [
            {
                "name": "one",
                "changes": [{"where": {"item_id": "I2", "market": "DE"}, "price_change_pct": 25}],
            }
        ],
        draws=40000,
    )
    row = res.table.filter((pl.col("item_id") == "I2") & (pl.col("market") == "DE")).row(
        0, named=True
    )
    agg = res.aggregates.filter((pl.col("market") == "DE") & (pl.col("category") == "bags")).row(
        0, named=True
    )
    # DE fx = 1: the one-row aggregate's draw quantiles approach the exact row interval
    assert agg["quantity_low"] == pytest.approx(row["quantity_low"], rel=0.01)
    assert agg["quantity_high"] == pytest.approx(row["quantity_high"], rel=0.01)
    assert agg["scenario_quantity"] == pytest.approx(row["scenario_quantity"], rel=1e-12)


def test_aggregate_interval_is_from_summed_draws_not_summed_bounds(sim_db):
    db, _ = sim_db
    res = run_sim(db, [{"name": "all", "changes": [{"price_change_pct": 30}]}], draws=20000)
    tot = res.totals().row(0, named=True)
    rows = res.table
    # independent draws: the total's interval is narrower than the sum of the row intervals
    assert tot["quantity_high"] - tot["quantity_low"] < 0.8 * float(
        (rows["quantity_high"] - rows["quantity_low"]).sum()
    )
    # totals equal the sum of rows (money converted to the base currency)
    assert tot["scenario_quantity"] == pytest.approx(float(rows["scenario_quantity"].sum()))
    base_rev = float((rows["scenario_revenue"] / rows["fx_rate"]).sum())
    assert tot["scenario_revenue"] == pytest.approx(base_rev)


def test_later_changes_override_earlier_ones(sim_db):
    db, _ = sim_db
    res = run_sim(
        db,
        [
            {
                "name": "mix",
                "changes": [
                    {"price_change_pct": 10},
                    {"where": {"market": ["US", "GB"]}, "price": 123.0},
                    {"where": {"market": "GB", "brand": "Beta"}, "price_change_pct": -5},
                ],
            }
        ],
    )
    t = res.table
    us = t.filter(pl.col("market") == "US")
    de = t.filter(pl.col("market") == "DE")
    gb = t.filter(pl.col("market") == "GB").join(ITEMS, on="item_id")
    assert (us["scenario_price"] == 123.0).all()
    assert np.allclose(de["scenario_price"], 1.1 * de["baseline_price"], rtol=1e-14)
    beta, alpha = gb.filter(pl.col("brand") == "Beta"), gb.filter(pl.col("brand") == "Alpha")
    assert np.allclose(beta["scenario_price"], 0.95 * beta["baseline_price"], rtol=1e-14)
    assert (alpha["scenario_price"] == 123.0).all()


def test_sql_in_a_filter_value_is_inert(sim_db):
    db, _ = sim_db
    before = api.runs(db).height
    evil = "shoes' OR '1'='1"
    res = run_sim(
        db,
        [
            {
                "name": "evil",
                "changes": [
                    {
                        "where": {"category": [evil, "x'); DROP TABLE sales; --"]},
                        "price_change_pct": 50,
                    }
                ],
            }
        ],
    )
    assert (res.table["scenario_price"] == res.table["baseline_price"]).all()
    assert any("matches no item" in w and "category" in w for w in res.warnings)
    with Store.open(db, read_only=True) as store:
        assert store.count("sales") == 3 * 3 * 12
    assert api.runs(db).height == before + 1


def test_unknown_market_is_usage_error_and_no_match_is_a_warning(sim_db):
    db, _ = sim_db
    msg = r"change 1 \(where market=UK\): unknown market 'UK'; known markets: DE, GB, US"
    with pytest.raises(UsageError, match=msg):
        run_sim(
            db, [{"name": "x", "changes": [{"where": {"market": "UK"}, "price_change_pct": 5}]}]
        )
    res = run_sim(
        db, [{"name": "y", "changes": [{"where": {"category": "shose"}, "price_change_pct": 5}]}]
    )
    assert res.warnings == [
        "scenario 'y' change 1 (where category=shose) matches no item × market; "
        "no category 'shose' in the baseline (did you mean 'shoes'?)"
    ]


def test_run_is_stored_with_lineage(sim_db):
    db, est = sim_db
    res = run_sim(db, [{"name": "a", "changes": [{"price_change_pct": 5}]}])
    rec = api.run(db, res.run_id)
    assert rec["command"] == "simulate" and rec["parents"] == [est]
    with Store.open(db, read_only=True) as store:
        stored = store.read_result("scenarios", res.run_id)
        totals = store.read_result("scenario_totals", res.run_id)
    assert stored.sort("item_id", "market").equals(res.table.sort("item_id", "market"))
    assert totals.height == res.aggregates.height


def test_same_seed_same_intervals_and_estimates_choice(sim_db):
    db, est = sim_db
    sc = [{"name": "a", "changes": [{"price_change_pct": 12}]}]
    a = run_sim(db, sc, seed=3, draws=500)
    b = run_sim(db, sc, seed=3, draws=500, estimates=est)
    assert a.aggregates.equals(b.aggregates)
    with pytest.raises(Exception, match="not found"):
        run_sim(db, sc, estimates="nope")
