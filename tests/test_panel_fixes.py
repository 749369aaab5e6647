"""Panel metadata and flags: controls actually used, the real cluster variable, and fixed
effects that absorb all price variation."""

from __future__ import annotations

import warnings

import polars as pl
import pytest

from pricelab.elasticity import estimate
from pricelab.elasticity.synthetic import simulate_panel


@pytest.fixture(scope="module")
def same_price_path():
    """Every item of the pool on one price path: the pool's week effects absorb it."""
    sales, items, _ = simulate_panel(n_items=6, markets=("US",), weeks=30, seed=1)
    p = sales.filter(pl.col("item_id") == "I000000").select("date", pl.col("price").alias("p0"))
    return sales.join(p, on="date").with_columns(price=pl.col("p0")).drop("p0"), items


def test_panel_records_the_controls_it_used_and_its_cluster(same_price_path):
    sales, items = same_price_path
    res = estimate(sales, model="panel", items=items, slope="common")
    assert res.parameters["controls"] == ["promo"]  # Fourier and trend: in the week effects
    assert res.parameters["se"] == "cluster(item_id,market,category)"
    item = estimate(sales, model="panel", items=items, slope="item")
    assert item.parameters["se"] == "HC1 within unit"


def test_absorbed_price_variation_is_named_and_quiet(same_price_path, capfd):
    sales, items = same_price_path
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning
        res = estimate(sales, model="panel", items=items, slope="common")
    flags = res.elasticities["flags"].to_list()
    assert flags == ["absorbed"] * len(flags)
    assert capfd.readouterr().err == ""
    # a price that really does not move stays no_price_variation
    flat = sales.with_columns(price=pl.lit(100.0))
    res = estimate(flat, model="panel", items=items, slope="common")
    assert res.elasticities["flags"].to_list() == ["no_price_variation"] * res.elasticities.height
