"""Batched estimators against statsmodels / closed-form references on the same data (1e-6)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from pricelab.elasticity import estimate
from pricelab.elasticity.design import build, resolve_controls
from pricelab.elasticity.synthetic import simulate_panel

KEYS = ["item_id", "market"]


@pytest.fixture(scope="module")
def panel():
    # 150 items x 2 markets = 300 groups, with some sparse groups (zeros) and promos
    return simulate_panel(n_items=150, weeks=52, base_units=6.0, price_sd=0.2, seed=11)


def _groups(sales):
    d = build(sales, KEYS, resolve_controls("default"))
    return d, [np.flatnonzero(d.codes == g) for g in range(d.n_groups)]


def _varying(X):
    """Reference-side rank handling: keep the intercept and the columns that vary."""
    cols = [0] + [j for j in range(1, X.shape[1]) if np.ptp(X[:, j]) > 0]
    return X[:, cols], cols


def _check(res, d, rows, fit, tol=1e-6):
    t = res.elasticities
    assert t.select(KEYS).equals(d.keys)
    e, s = t["elasticity"].to_numpy(), t["std_error"].to_numpy()
    checked = 0
    for g, idx in enumerate(rows):
        ref = fit(d.X[idx], d.q[idx])
        if ref is None:
            continue
        beta, se1, cols = ref
        full = np.full(d.X.shape[1], np.nan)
        full[cols] = beta
        beta = full
        assert e[g] == pytest.approx(beta[1], abs=tol, rel=tol)
        assert s[g] == pytest.approx(se1, abs=tol, rel=tol)
        par = res.params.row(g, named=True)
        assert par["intercept"] == pytest.approx(beta[0], abs=1e-5, rel=1e-6)
        if np.isnan(beta[2]):
            assert np.isnan(par["promo"])
        else:
            assert par["promo"] == pytest.approx(beta[2], abs=tol, rel=tol)
        checked += 1
    assert checked >= 250


def test_ols_hc1_matches_statsmodels(panel):
    sales, _, _ = panel
    res = estimate(sales, model="ols", se="HC1")
    d, rows = _groups(sales)

    def fit(X, q):
        pos = q > 0
        Xv, cols = _varying(X[pos])
        r = sm.OLS(np.log(q[pos]), Xv).fit(cov_type="HC1")
        return r.params, r.bse[1], cols

    _check(res, d, rows, fit)
    n_zero = res.elasticities["n_zero"].to_numpy()
    assert n_zero.sum() > 0
    assert list(n_zero) == [int((d.q[i] == 0).sum()) for i in rows]


@pytest.mark.parametrize("se", ["HC0", "HC1", "nonrobust"])
def test_poisson_robust_matches_statsmodels_glm(panel, se):
    sales, _, _ = panel
    res = estimate(sales, model="poisson", se=se)
    d, rows = _groups(sales)

    def fit(X, q):
        cov = "nonrobust" if se == "nonrobust" else "HC0"
        Xv, cols = _varying(X)
        r = sm.GLM(q, Xv, family=sm.families.Poisson()).fit(cov_type=cov, tol=1e-13)
        # statsmodels' GLM applies no n/(n-k) factor for HC1; ours follows the OLS convention
        k = Xv.shape[1]
        f = np.sqrt(len(q) / (len(q) - k)) if se == "HC1" else 1.0
        return r.params, r.bse[1] * f, cols

    _check(res, d, rows, fit)


def test_2sls_matches_closed_form(panel):
    sales, _, _ = panel
    res = estimate(sales, model="iv", instrument="unit_cost")
    d, rows = _groups(sales)
    lc = np.log(d.frame["unit_cost"].to_numpy())

    e, s = res.elasticities["elasticity"].to_numpy(), res.elasticities["std_error"].to_numpy()
    F = res.elasticities["first_stage_f"].to_numpy()
    for g, idx in enumerate(rows):
        pos = d.q[idx] > 0
        X, _ = _varying(d.X[idx][pos])
        Z = X.copy()
        Z[:, 1] = lc[idx][pos]
        y = np.log(d.q[idx][pos])
        n, k = X.shape
        Pz = Z @ np.linalg.pinv(Z.T @ Z) @ Z.T
        Xh = Pz @ X
        b = np.linalg.solve(Xh.T @ X, Xh.T @ y)
        u = y - X @ b
        B = np.linalg.inv(Xh.T @ Xh)
        V = n / (n - k) * B @ (Xh.T * u**2) @ Xh @ B
        assert e[g] == pytest.approx(b[1], rel=1e-6, abs=1e-6)
        assert s[g] == pytest.approx(np.sqrt(V[1, 1]), rel=1e-6, abs=1e-6)
        fs = sm.OLS(X[:, 1], Z).fit()
        assert F[g] == pytest.approx(float(fs.tvalues[1] ** 2), rel=1e-6)


def _pandas(sales, items):
    df = (
        sales.join(items, on="item_id")
        .filter(pl.col("quantity") > 0)
        .with_columns(
            lq=pl.col("quantity").log(), lp=pl.col("price").log(), wk=pl.col("date").cast(pl.String)
        )
    )
    return df.to_pandas()


def test_panel_common_slope_clustered_matches_statsmodels_dummies():
    sales, items, _ = simulate_panel(n_items=16, markets=("US",), weeks=30, n_categories=2, seed=3)
    res = estimate(sales, model="panel", items=items, slope="common")
    df = _pandas(sales, items)
    t = res.elasticities.sort("category")
    for row, (_cat, sub) in zip(t.iter_rows(named=True), df.groupby("category"), strict=True):
        cl = pd.Categorical(sub["item_id"]).codes
        f = smf.ols("lq ~ lp + promo + C(item_id) + C(wk)", data=sub).fit(
            cov_type="cluster", cov_kwds={"groups": cl}
        )
        assert row["elasticity"] == pytest.approx(f.params["lp"], rel=1e-6)
        assert row["std_error"] == pytest.approx(f.bse["lp"], rel=1e-6)


def test_panel_item_slope_matches_statsmodels_dummies():
    sales, items, _ = simulate_panel(n_items=10, markets=("US",), weeks=30, n_categories=1, seed=4)
    res = estimate(sales, model="panel", items=items, slope="item")
    f = smf.ols(
        "lq ~ C(item_id) + C(item_id):lp + C(item_id):promo + C(wk)", data=_pandas(sales, items)
    ).fit()
    for row in res.elasticities.iter_rows(named=True):
        assert row["elasticity"] == pytest.approx(
            f.params[f"C(item_id)[{row['item_id']}]:lp"], rel=1e-6
        )


def test_absorbed_fixed_effects_hc1_matches_statsmodels():
    sales, _, _ = simulate_panel(n_items=12, markets=("US", "GB", "DE"), weeks=20, seed=8)
    res = estimate(sales, model="ols", by=["market"], controls=["promo"], fixed_effects=["item_id"])
    df = (
        sales.filter(pl.col("quantity") > 0)
        .with_columns(lq=pl.col("quantity").log(), lp=pl.col("price").log())
        .to_pandas()
    )
    for row in res.elasticities.iter_rows(named=True):
        sub = df[df.market == row["market"]]
        f = smf.ols("lq ~ lp + promo + C(item_id)", data=sub).fit(cov_type="HC1")
        assert row["elasticity"] == pytest.approx(f.params["lp"], rel=1e-6)
        assert row["std_error"] == pytest.approx(f.bse["lp"], rel=1e-6)
