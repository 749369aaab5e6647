"""``import pricelab`` exposes the documented API."""

from __future__ import annotations

import polars as pl

import pricelab


def test_every_export_resolves() -> None:
    for name in pricelab.__all__:
        assert getattr(pricelab, name) is not None, name


def test_frame_level_estimate_and_optimize_chain() -> None:
    # a tiny known case: q = 100 * p^-2 exactly, no noise, two weeks of price variation
    dates = pl.date_range(pl.date(2024, 1, 1), pl.date(2024, 6, 24), "1w", eager=True)
    prices = [10.0 if i % 2 else 20.0 for i in range(len(dates))]  # q = 100 and 25 exactly
    sales = pl.DataFrame(
        {
            "item_id": "A",
            "market": "US",
            "date": dates,
            "price": prices,
            "quantity": [round(1e4 * p**-2.0) for p in prices],
        }
    )
    res = pricelab.estimate(sales, model="ols", controls=None)
    e = res.elasticities["elasticity"][0]
    assert abs(e - -2.0) < 1e-9
    demand = pl.DataFrame(
        {
            "item_id": ["A"],
            "market": ["US"],
            "elasticity": [e],
            "base_price": [10.0],
            "base_quantity": [100.0],
            "unit_cost": [4.0],
        }
    )
    plan = pricelab.optimize(demand, {"bounds": {"max_increase_pct": 50}})
    assert abs(plan.table["recommended_price"][0] - 4.0 * e / (1 + e)) < 1e-6
