"""A row whose interval is too wide to act on says so, in the plan, the summary, the JSON
and the report's "why this price"; a precise estimate does not."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pricelab.optimize import optimize
from pricelab.report.explorer import _why


def _demand(se: float) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "item_id": ["TOTE-03", "MUG-02"],
            "market": ["GB", "GB"],
            "elasticity": [-1.5, -3.0],
            "base_price": [40.0, 12.0],
            "base_quantity": [10.0, 60.0],
            "unit_cost": [20.0, 5.0],
            "std_error": [se, 0.05],
        }
    )


def _hand_range(p: float, se: float) -> tuple[float, float]:
    """Profit change (% of today's) at price p for elasticity -1.5 -/+ z90 se."""
    base = (40.0 - 20.0) * 10.0
    ch = [
        100 * ((p - 20.0) * 10.0 * (p / 40.0) ** e - base) / base
        for e in (-1.5 - 1.6448536269514722 * se, -1.5 + 1.6448536269514722 * se)
    ]
    return min(ch), max(ch)


def test_wide_interval_is_named_everywhere() -> None:
    plan = optimize(_demand(se=0.8), {"bounds": {"max_increase_pct": 30, "max_decrease_pct": 20}})
    t = plan.table.sort("item_id", descending=True)  # TOTE-03 first
    tote = t.row(0, named=True)
    lo, hi = _hand_range(tote["recommended_price"], 0.8)
    assert tote["too_wide"] is True
    assert (tote["uplift_low_pct"], tote["uplift_high_pct"]) == pytest.approx((lo, hi), rel=1e-9)
    assert lo < 0 < hi
    assert t.row(1, named=True)["too_wide"] is False  # se 0.05: the gain is clear
    assert "1 row(s) with an interval too wide to act on" in plan.summary
    assert "TOTE-03/GB" in plan.summary.split("too wide")[1].splitlines()[0]
    js = plan.to_dict()["too_wide_rows"]
    assert [r["item_id"] for r in js] == ["TOTE-03"] and np.isclose(js[0]["uplift_low_pct"], lo)
    assert "Interval too wide to act on" in _why(tote)


def test_precise_estimate_is_not_flagged() -> None:
    plan = optimize(_demand(se=0.02), {"bounds": {"max_increase_pct": 30, "max_decrease_pct": 20}})
    assert not plan.table["too_wide"].any()
    assert "too wide" not in plan.summary and plan.to_dict()["too_wide_rows"] == []
