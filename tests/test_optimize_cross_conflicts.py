"""Between-row conflicts on the cross route give partial plans: an item whose markets cannot
share one parity band stays at its current prices (status=conflict, reason naming parity);
its siblings are still priced jointly and meet every constraint."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pricelab.errors import InfeasibleError
from pricelab.optimize.cross import optimize_cross
from tests._cross_cases import category

CONS = {
    "horizon_weeks": 4,
    "bounds": {"max_increase_pct": 10, "max_decrease_pct": 10},
    "parity": {"max_gap_pct": 5},
    # A/GB may not rise: its base price stays <= 83.33 while A/US needs >= 90 / 1.05
    "overrides": [{"where": {"item_id": "A", "market": "GB"}, "bounds": {"max_increase_pct": 0}}],
}


def test_parity_conflict_keeps_the_item_and_prices_its_siblings() -> None:
    demand, cross = category(markets=("US", "GB"))
    with pytest.raises(InfeasibleError, match="parity max_gap_pct 5"):
        optimize_cross(demand, cross, CONS, n_grid=7)
    plan = optimize_cross(demand, cross, CONS, n_grid=7, conflicts="keep")
    t = plan.table
    a = (t["item_id"] == "A").to_numpy()
    assert (t["status"].to_numpy()[a] == "conflict").all()
    assert (t["status"].to_numpy()[~a] == "optimized").all()
    assert all("parity max_gap_pct 5" in r for r in t["reason"].to_numpy()[a])
    p, p0 = t["recommended_price"].to_numpy(), t["current_price"].to_numpy()
    assert np.array_equal(p[a], p0[a])
    assert (p[~a] != p0[~a]).any()
    fx = t["fx_rate"].to_numpy()
    for item in ("B", "C"):  # the siblings keep their parity band and bounds
        m = (t["item_id"] == item).to_numpy()
        b = p[m] / fx[m]
        assert b.max() <= 1.05 * b.min() * (1 + 1e-9)
    assert ((p[~a] <= 1.1 * p0[~a] + 1e-9) & (p[~a] >= 0.9 * p0[~a] - 1e-9)).all()
    assert [c["item_id"] for c in plan.extra["conflicts"]] == ["A", "A"]
    assert set(pl.Series(t["market"].to_numpy()[a])) == {"US", "GB"}
