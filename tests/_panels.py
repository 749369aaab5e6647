"""Synthetic panels and scoring shared by the estimator tests (no tests here)."""

from __future__ import annotations

import functools

import numpy as np
import polars as pl

from pricelab.elasticity.synthetic import simulate_panel

KEYS = ["item_id", "market"]


def score(res, truth: pl.DataFrame) -> tuple[float, float]:
    """Mean absolute error and 95% interval coverage of ``res`` against ``truth``.

    Per-group Poisson reports separated fits as NaN: its error is over the groups it
    estimates (which flatters it), coverage counts a NaN interval as a miss.
    """
    t = res.elasticities.join(truth, on=KEYS)
    assert t.height == truth.height
    err = (t["elasticity"] - t["true_elasticity"]).abs().to_numpy()
    cover = (t["ci_low"] <= t["true_elasticity"]) & (t["ci_high"] >= t["true_elasticity"])
    return float(np.nanmean(err)), float(cover.mean())


@functools.cache
def sparse_categories(seed: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """~2 units/week, 40 weeks, 300 items in 6 categories with different mean elasticities:
    where per-group fits are noisy and pooling by category pays (``sales, items, truth``)."""
    return simulate_panel(
        n_items=300,
        weeks=40,
        base_units=2,
        n_categories=6,
        category_sd=0.8,
        elasticity_sd=0.3,
        seed=seed,
    )
