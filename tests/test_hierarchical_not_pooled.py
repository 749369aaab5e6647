"""hierarchical with too few groups to pool: each keeps its own Poisson estimate, flagged."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

from pricelab.elasticity import estimate


def panel(n_items: int, weeks: int = 40, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_items):
        for w in range(weeks):
            p = 100 * np.exp(0.2 * rng.standard_normal())
            rows.append(
                (
                    f"I{g}",
                    "US",
                    dt.date(2024, 1, 1) + dt.timedelta(weeks=w),
                    p,
                    int(rng.poisson(50 * (p / 100) ** -2.0)),
                )
            )
    return pl.DataFrame(
        rows, schema=["item_id", "market", "date", "price", "quantity"], orient="row"
    )


def test_two_items_keep_their_own_poisson_estimates():
    df = panel(2)
    got = estimate(df, model="hierarchical", controls=None).elasticities.sort("item_id")
    assert got["flags"].to_list() == ["not_pooled", "not_pooled"]
    for row in got.iter_rows(named=True):
        g = df.filter(pl.col("item_id") == row["item_id"])
        X = sm.add_constant(np.log(g["price"].to_numpy()))
        ref = sm.GLM(g["quantity"].to_numpy(), X, family=sm.families.Poisson()).fit(cov_type="HC1")
        assert row["elasticity"] == pytest.approx(ref.params[1], abs=1e-7)
        assert np.isfinite(row["std_error"]) and row["ci_low"] < row["elasticity"] < row["ci_high"]


def test_three_items_are_pooled_and_not_flagged_not_pooled():
    got = estimate(panel(3), model="hierarchical", controls=None).elasticities
    assert got["elasticity"].is_finite().all()
    assert not got["flags"].str.contains("not_pooled").any()
