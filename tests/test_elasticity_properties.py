"""Invariances, bad input, predict, and the partition entry point."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pricelab.elasticity import estimate, fit_partition
from pricelab.elasticity.synthetic import simulate_panel
from pricelab.errors import DataError, EmptyStoreError, UsageError

KEYS = ["item_id", "market"]


@pytest.fixture(scope="module")
def small():
    return simulate_panel(n_items=20, weeks=52, base_units=15, price_sd=0.2, seed=5)


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    scale=st.floats(min_value=1e-3, max_value=1e3),
    model=st.sampled_from(["ols", "poisson", "hierarchical", "iv"]),
)
def test_scaling_prices_leaves_elasticities_unchanged(small, scale, model):
    sales, items, _ = small
    kw = {"instrument": "unit_cost"} if model == "iv" else {}
    a = estimate(sales, model=model, items=items, **kw).elasticities
    b = estimate(
        sales.with_columns(pl.col("price") * scale), model=model, items=items, **kw
    ).elasticities
    np.testing.assert_allclose(b["elasticity"], a["elasticity"], rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(b["std_error"], a["std_error"], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("model", ["ols", "poisson"])
def test_duplicating_data_halves_the_variance(small, model):
    sales, _, _ = small
    a = estimate(sales, model=model, se="HC0").elasticities
    b = estimate(pl.concat([sales, sales]), model=model, se="HC0").elasticities
    np.testing.assert_allclose(b["elasticity"], a["elasticity"], rtol=1e-8)
    np.testing.assert_allclose(b["std_error"] ** 2, a["std_error"] ** 2 / 2, rtol=1e-8)


def _bad_groups():
    d0 = dt.date(2023, 1, 2)
    rows = []
    for w in range(30):
        day = d0 + dt.timedelta(weeks=w)
        rows += [
            ("FLAT", "US", day, 100.0, 3 + w % 2, 0),  # no price variation
            ("ZERO", "US", day, 100.0 + w, 0, 0),  # never sold
            ("GOOD", "US", day, 100.0 * (1 + 0.2 * np.sin(w)), int(20 - 8 * np.sin(w)), w % 5 == 0),
        ]
    rows += [("FEW", "US", d0 + dt.timedelta(weeks=w), 90.0 + w, 5, 0) for w in range(4)]
    return pl.DataFrame(
        rows,
        schema={
            "item_id": pl.String,
            "market": pl.String,
            "date": pl.Date,
            "price": pl.Float64,
            "quantity": pl.Int64,
            "promo": pl.Int8,
        },
        orient="row",
    )


@pytest.mark.parametrize("model", ["ols", "poisson", "iv", "hierarchical", "panel"])
def test_bad_groups_give_nan_and_flags_not_crashes(model):
    sales = _bad_groups().with_columns(unit_cost=pl.col("price") * 0.4)
    kw = {"instrument": "unit_cost"} if model == "iv" else {}
    t = estimate(sales, model=model, **kw).elasticities
    flags = dict(zip(t["item_id"], t["flags"], strict=True))
    e = dict(zip(t["item_id"], t["elasticity"], strict=True))
    if model in ("panel",):
        assert t.height >= 1
        return
    if model == "hierarchical":
        assert "no_price_variation" in flags["FLAT"] and "few_obs" in flags["FEW"]
        return
    assert np.isnan(e["FLAT"]) and "no_price_variation" in flags["FLAT"]
    assert np.isnan(e["FEW"]) and "few_obs" in flags["FEW"]
    assert np.isnan(e["ZERO"]) and "no_sales" in flags["ZERO"]
    assert np.isfinite(e["GOOD"]) and e["GOOD"] < 0


def test_usage_errors_name_the_culprit(small):
    sales, _, _ = small
    with pytest.raises(UsageError, match="'tobit'"):
        estimate(sales, model="tobit")
    with pytest.raises(UsageError, match="'region'"):
        estimate(sales, model="ols", by=["region"])
    with pytest.raises(UsageError, match="'landed_cost'"):
        estimate(sales, model="iv", instrument="landed_cost")
    with pytest.raises(UsageError, match="needs an instrument"):
        estimate(sales, model="iv")
    with pytest.raises(EmptyStoreError):
        estimate(sales.clear(), model="ols")
    with pytest.raises(DataError, match="price"):
        estimate(sales.with_columns(price=pl.lit(-1.0)), model="ols")


def test_predict_reproduces_poisson_fitted_means(small):
    sales, _, _ = small
    res = estimate(sales, model="poisson")
    pred = res.predict(sales)
    assert pred.height == sales.height and "expected_quantity" in pred.columns
    # Poisson score equations with an intercept: fitted total = observed total per group
    tot = pred.group_by(KEYS).agg(pl.col("quantity").sum(), pl.col("expected_quantity").sum())
    np.testing.assert_allclose(tot["expected_quantity"], tot["quantity"], rtol=1e-8)
    # a 10% price cut raises expected quantity by 1.1**-e exactly
    cut = res.predict(sales.with_columns(pl.col("price") * 0.9))
    e = sales.select(KEYS).join(
        res.elasticities.select([*KEYS, "elasticity"]), on=KEYS, how="left"
    )["elasticity"]
    np.testing.assert_allclose(
        cut["expected_quantity"] / pred["expected_quantity"], 0.9 ** e.to_numpy(), rtol=1e-10
    )


def test_fit_partition_same_numbers_for_pandas_arrow_polars(small):
    sales, _, _ = small
    spec = {"model": "poisson"}
    ref = estimate(sales, **spec).elasticities
    for frame in (sales.to_pandas(), sales.to_arrow(), sales):
        out = fit_partition(frame, spec)
        out = (
            out
            if isinstance(out, pl.DataFrame)
            else pl.from_pandas(out)
            if hasattr(out, "iloc")
            else pl.from_arrow(out)
        )
        np.testing.assert_allclose(out["elasticity"], ref["elasticity"], rtol=1e-12)
        assert "b_intercept" in out.columns and "b_promo" in out.columns


def test_results_object(small):
    sales, _, _ = small
    res = estimate(sales, model="ols", alpha=0.1)
    t = res.elasticities
    assert t.columns[:8] == [
        "item_id",
        "market",
        "elasticity",
        "std_error",
        "ci_low",
        "ci_high",
        "n_obs",
        "method",
    ]
    ci = res.conf_int(0.1)
    np.testing.assert_allclose(ci["ci_low"], t["ci_low"], rtol=1e-12)
    assert "model: ols" in str(res) and res.summary == str(res)
    assert res.parameters["controls"] == ["promo", "fourier", "trend"]
    with pytest.raises(AttributeError):
        res.elasticities = t  # type: ignore[misc]
