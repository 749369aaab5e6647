"""Plan.uplift_by: sums in base currency and changes relative to the absolute baseline."""

from __future__ import annotations

import polars as pl
import pytest

from pricelab.optimize.plan import Plan


def plan(table: pl.DataFrame) -> Plan:
    return Plan(table, "optimal", "closed_form", "profit", 0.0, 0.0, 0.0, "", pl.DataFrame())


def test_uplift_by_market_in_base_currency_with_signed_changes():
    t = pl.DataFrame(
        {
            "market": ["US", "US", "JP"],
            "fx_rate": [2.0, 2.0, 100.0],
            "baseline_revenue": [200.0, 100.0, 10_000.0],
            "expected_revenue": [220.0, 90.0, 12_000.0],
            # JP: a loss of 100 (base) cut to a loss of 50 is an improvement: +50%
            "baseline_profit": [40.0, 20.0, -10_000.0],
            "expected_profit": [60.0, 30.0, -5_000.0],
        }
    )
    up = plan(t).uplift_by("market")
    assert up["market"].to_list() == ["JP", "US"]
    jp, us = up.row(0, named=True), up.row(1, named=True)
    assert (us["rows"], jp["rows"]) == (2, 1)
    assert us["baseline_revenue"] == pytest.approx(150.0) and us[
        "expected_revenue"
    ] == pytest.approx(155.0)
    assert us["revenue_%"] == pytest.approx(100 * 5 / 150)
    assert us["profit_%"] == pytest.approx(100 * (45 - 30) / 30)
    assert jp["baseline_profit"] == pytest.approx(-100.0) and jp[
        "expected_profit"
    ] == pytest.approx(-50.0)
    assert jp["profit_%"] == pytest.approx(50.0)
    assert jp["revenue_%"] == pytest.approx(20.0)
