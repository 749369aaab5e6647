"""Synthetic panels with known elasticities: accuracy, coverage, shrinkage gain, IV bias."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pricelab.elasticity import estimate
from pricelab.elasticity.synthetic import simulate_panel
from tests._panels import score


@pytest.mark.parametrize(
    "seed, promo_rate, season_amp", [(21, 0.1, 0.2), (22, 0.3, 0.0), (23, 0.0, 0.4)]
)
def test_poisson_accuracy_and_coverage(seed, promo_rate, season_amp):
    # ~20 units/week, 50 weeks, markdown-driven price moves (sd of log price ~0.24)
    sales, _, truth = simulate_panel(
        n_items=150,
        weeks=50,
        base_units=20,
        price_sd=0.25,
        promo_rate=promo_rate,
        season_amp=season_amp,
        seed=seed,
    )
    mae, cover = score(estimate(sales, model="poisson"), truth)
    assert mae <= 0.12
    assert cover >= 0.85


# hierarchical vs poisson on sparse items: test_elasticity_hierarchical.py


def test_hierarchical_keeps_own_estimate_when_data_are_rich():
    sales, items, truth = simulate_panel(
        n_items=40, weeks=104, base_units=200, price_sd=0.3, elasticity_sd=0.8, seed=33
    )
    own = estimate(sales, model="poisson").elasticities["elasticity"].to_numpy()
    hier = estimate(sales, model="hierarchical", items=items).elasticities["elasticity"]
    assert np.max(np.abs(hier.to_numpy() - own)) < 0.05


def test_iv_recovers_truth_when_prices_react_to_demand_shocks():
    sales, _, truth = simulate_panel(
        n_items=100,
        markets=("US",),
        weeks=104,
        base_units=50,
        elasticity_sd=0.0,
        endogeneity=0.5,
        seed=41,
    )
    ols, _ = score(estimate(sales, model="ols"), truth)
    e_ols = estimate(sales, model="ols").elasticities["elasticity"].median()
    iv = estimate(sales, model="iv", instrument="unit_cost")
    e_iv = iv.elasticities["elasticity"].median()
    assert abs(e_ols - -2.0) > 0.5  # price endogeneity biases OLS toward zero
    assert abs(e_iv - -2.0) < 0.1
    assert (iv.elasticities["first_stage_f"] > 10).all()
    cf = estimate(sales, model="iv", instrument="unit_cost", iv_method="cf")
    assert abs(cf.elasticities["elasticity"].median() - -2.0) < 0.1
    _, cover = score(cf, truth)
    assert cover >= 0.85


def test_hausman_instrument_and_weak_flag():
    sales, _, truth = simulate_panel(
        n_items=60,
        markets=("US", "GB", "DE"),
        weeks=60,
        base_units=30,
        elasticity_sd=0.0,
        cost_common=0.8,
        endogeneity=0.5,
        seed=42,
    )
    res = estimate(sales, model="iv", instrument="hausman")
    t = res.elasticities
    assert t["first_stage_f"].median() > 10
    assert abs(t["elasticity"].median() - -2.0) < 0.15
    ols = estimate(sales, model="ols").elasticities["elasticity"].median()
    assert abs(ols - -2.0) > 0.5
    # an instrument unrelated to price is weak
    noise = sales.with_columns(z=pl.Series(np.random.default_rng(0).normal(size=sales.height)))
    weak = estimate(noise, model="iv", instrument="z").elasticities
    assert weak["flags"].str.contains("weak_instrument").mean() > 0.9
