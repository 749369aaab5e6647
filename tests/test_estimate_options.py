"""``estimate --controls / --fixed-effects`` and extra sales columns, CLI to library."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

from pricelab import api
from pricelab.elasticity import estimate
from pricelab.elasticity.synthetic import simulate_panel


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pl.DataFrame]:
    """A small panel with a numeric extra column ``deal`` (that moves demand) and a text
    column ``note``; daily-free weekly rows."""
    sales, items, _ = simulate_panel(n_items=4, markets=("US", "DE", "FR"), weeks=40, seed=11)
    rng = np.random.default_rng(2)
    deal = rng.integers(0, 2, sales.height)
    sales = sales.with_columns(
        quantity=(pl.col("quantity") * pl.Series(np.where(deal == 1, 2, 1))).cast(pl.Int64),
        deal=pl.Series(deal),
        note=pl.lit("n/a"),
    )
    folder = tmp_path_factory.mktemp("opts")
    sales.write_csv(folder / "sales.csv")
    items.write_csv(folder / "items.csv")
    db = folder / "shop.duckdb"
    res = api.ingest(db, sales=folder / "sales.csv", items=folder / "items.csv")
    rules = [(w["column"], w["rule"]) for w in res.to_dict()["warnings"]]
    assert any("'note'" in r and "not loaded" in r for _, r in rules)  # text: warned
    return db, sales.drop("note")


def _json(cli, *args):
    res = cli("estimate", *args, "--json")
    assert res.exit_code == 0, res.stderr
    return json.loads(res.stdout)


def test_controls_reach_the_library(cli, shop, tmp_path):
    db, sales = shop
    default = ["promo", "fourier", "trend"]
    for arg, want in (("none", []), ("promo,deal", ["promo", "deal"]), ("default", default)):
        out = tmp_path / f"{arg}.csv"
        res = cli("estimate", "--db", db, "--model", "poisson", "--controls", arg, "--output", out)
        assert res.exit_code == 0, res.stderr
        lib = estimate(sales, model="poisson", controls=arg)
        assert lib.parameters["controls"] == want
        got = pl.read_csv(out).sort("item_id", "market")
        ref = lib.elasticities.sort("item_id", "market")
        np.testing.assert_allclose(got["elasticity"], ref["elasticity"], rtol=1e-9)
        np.testing.assert_allclose(got["std_error"], ref["std_error"], rtol=1e-9)
    doc = _json(cli, "--db", db, "--model", "poisson", "--controls", "promo,deal")
    assert doc["parameters"]["controls"] == ["promo", "deal"]


def test_deal_column_is_stored_and_is_a_real_control(shop):
    db, sales = shop
    # the stored column is the file's, and the deal coefficient recovers log 2 (demand x2)
    res = estimate(sales, model="ols", controls=["promo", "deal"], se="HC1")
    g = sales.filter((pl.col("item_id") == "I000000") & (pl.col("market") == "US"))
    g = g.filter(pl.col("quantity") > 0)
    X = sm.add_constant(
        np.column_stack([np.log(g["price"].to_numpy()), g["promo"], g["deal"]]).astype(float)
    )
    fit = sm.OLS(np.log(g["quantity"].to_numpy()), X).fit(cov_type="HC1")
    par = res.params.filter((pl.col("item_id") == "I000000") & (pl.col("market") == "US"))
    assert par["deal"][0] == pytest.approx(fit.params[3], abs=1e-8)
    assert abs(float(res.params["deal"].median()) - np.log(2)) < 0.25
    stored = api.estimate(db, model="ols", controls="promo,deal", se="HC1")
    assert stored.results.params["deal"].to_list() == pytest.approx(res.params["deal"].to_list())


def test_fixed_effects_market_panel(cli, shop):
    db, sales = shop
    doc = _json(cli, "--db", db, "--model", "ols", "--by", "item_id", "--fixed-effects", "market")
    assert doc["groups"] == 4 and doc["parameters"]["fixed_effects"] == ["market"]
    # reference: per item, dummy OLS with market dummies (no week effects), HC1
    lib = estimate(
        sales, model="ols", by="item_id", fixed_effects=["market"], controls="default"
    ).elasticities
    assert lib["std_error"].is_finite().all()
    res = cli("estimate", "--db", db, "--model", "poisson", "--fixed-effects", "market")
    assert res.exit_code == 2 and "fixed effects" in res.stderr


def test_daily_extra_columns_are_weekly_means(tmp_path):
    d0 = dt.date(2024, 1, 1)
    days = [d0 + dt.timedelta(days=i) for i in range(14)]
    sales = pl.DataFrame(
        {
            "item_id": "A",
            "market": "US",
            "date": days,
            "price": 10.0,
            "quantity": 1,
            "temp": [float(i) for i in range(14)],
        }
    )
    sales.write_csv(tmp_path / "s.csv")
    db = tmp_path / "d.duckdb"
    api.ingest(db, sales=tmp_path / "s.csv")
    from pricelab.store import Store
    from pricelab.store.loaders import load_sales

    with Store.open(db, read_only=True) as store:
        got = load_sales(store)
    assert got["temp"].to_list() == [3.0, 10.0]
