"""Within R² of the fixed-effect fits (ols with fixed_effects, panel) against statsmodels."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

from pricelab.elasticity import estimate


def panel_data(n_items: int = 5, weeks: int = 30, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    season = 0.3 * rng.standard_normal(weeks)
    rows = []
    for g in range(n_items):
        a, e = 3 + rng.standard_normal(), -1.5 - 0.3 * g
        for w in range(weeks):
            lp = np.log(100) + 0.15 * rng.standard_normal()
            q = np.exp(a + e * (lp - np.log(100)) + season[w] + 0.2 * rng.standard_normal())
            rows.append(
                (
                    f"I{g}",
                    "US",
                    dt.date(2024, 1, 1) + dt.timedelta(weeks=w),
                    float(np.exp(lp)),
                    max(int(round(q * 20)), 1),
                )
            )
    return pl.DataFrame(
        rows, schema=["item_id", "market", "date", "price", "quantity"], orient="row"
    )


def dummies(codes: np.ndarray, drop_first: bool) -> np.ndarray:
    levels = np.unique(codes)
    D = (codes[:, None] == levels[None, :]).astype(float)
    return D[:, 1:] if drop_first else D


def test_ols_with_item_effects_reports_the_within_r2():
    df = panel_data()
    row = estimate(
        df, model="ols", by=None, fixed_effects=["item_id"], controls=None
    ).elasticities.row(0, named=True)
    y, x = np.log(df["quantity"].to_numpy()), np.log(df["price"].to_numpy())
    item = df["item_id"].to_numpy()
    ref = sm.OLS(y, np.column_stack([x, dummies(item, False)])).fit()
    ybar = {i: y[item == i].mean() for i in np.unique(item)}
    tss = ((y - np.array([ybar[i] for i in item])) ** 2).sum()
    assert row["elasticity"] == pytest.approx(ref.params[0], abs=1e-9)
    assert row["fit_stat_name"] == "within_r2"
    assert row["fit_stat"] == pytest.approx(1 - ref.ssr / tss, abs=1e-9)
    assert 0 < row["fit_stat"] < 1


def test_panel_item_slopes_report_each_items_r2_given_the_week_effects():
    df = panel_data()
    res = estimate(df, model="panel", controls=None).elasticities.sort("item_id")
    y, x = np.log(df["quantity"].to_numpy()), np.log(df["price"].to_numpy())
    item, week = df["item_id"].to_numpy(), df["date"].to_numpy()
    U = dummies(item, False)
    ref = sm.OLS(y, np.column_stack([U, U * x[:, None], dummies(week, True)])).fit()
    n_items = U.shape[1]
    week_eff = np.r_[0.0, ref.params[2 * n_items :]][np.unique(week, return_inverse=True)[1]]
    for k, r in enumerate(res.iter_rows(named=True)):
        rows = item == r["item_id"]
        yw = y[rows] - week_eff[rows]
        rss = (ref.resid[rows] ** 2).sum()
        assert r["elasticity"] == pytest.approx(ref.params[n_items + k], abs=1e-7)
        assert r["fit_stat_name"] == "within_r2"
        assert r["fit_stat"] == pytest.approx(1 - rss / ((yw - yw.mean()) ** 2).sum(), abs=1e-7)


def test_common_slope_panel_keeps_its_within_r2():
    df = panel_data()
    row = estimate(df, model="panel", slope="common", controls=None).elasticities.row(0, named=True)
    y, x = np.log(df["quantity"].to_numpy()), np.log(df["price"].to_numpy())
    item, week = df["item_id"].to_numpy(), df["date"].to_numpy()
    FE = np.column_stack([dummies(item, False), dummies(week, True)])
    full = sm.OLS(y, np.column_stack([x, FE])).fit()
    fe_only = sm.OLS(y, FE).fit()
    assert row["fit_stat"] == pytest.approx(1 - full.ssr / fe_only.ssr, abs=1e-8)
