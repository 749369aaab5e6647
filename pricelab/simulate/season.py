"""Seasonality adjustment of baselines: lives in :mod:`pricelab.demand.season` (optimize uses
it too, so a plan and a simulation of that plan see the same seasonal baseline)."""

from pricelab.demand.season import (  # noqa: F401
    CLIP,
    MODES,
    SKIP_FLAGS,
    YEAR_DAYS,
    SeasonalAdjustment,
    seasonal_adjustment,
    seasonal_terms,
)
