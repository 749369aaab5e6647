"""The report's demand curves: a wide elasticity interval does not flatten the curve (the
y-axis follows the central curve; the band is clipped)."""

from __future__ import annotations

import polars as pl
import pytest

from pricelab.report import plots


def test_wide_band_does_not_flatten_the_demand_axis(monkeypatch: pytest.MonkeyPatch) -> None:
    figs: list = []
    monkeypatch.setattr(plots, "to_png", lambda fig: figs.append(fig) or b"")
    row = {
        "label": "TOTE-03/GB",
        "market": "GB",
        "current_price": 40.0,
        "recommended_price": 44.0,
        "baseline_quantity": 60.0,
        "elasticity": -2.0,
        "unit_cost": 18.0,
        "ci_low": -9.0,  # a band up to ~60x the central units at the low price
        "ci_high": 0.5,
    }
    plots.demand_profit_curves(pl.DataFrame([row]), {"GB": "GBP"})
    axq = figs[0].axes[0]
    central_top = max(max(line.get_ydata()) for line in axq.get_lines()[:1])
    low, high = axq.get_ylim()
    assert low == 0 and central_top <= high <= 1.2 * central_top
