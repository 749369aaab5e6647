"""``ols`` with ``se="cluster"`` (the default) against statsmodels' hat matrix and numpy
block sums, and the prefix-sum block path against the general bincount path.

The fast ``ols`` kernel forms ``Z = C^-1 x_t`` once (``u_t = Z_0t``, leverage
``1/n + x_t'Z_t``) and sums consecutive weekly scores by prefix sums read at block
edges; these tests hold it to references computed another way.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

from pricelab.elasticity import estimate
from pricelab.elasticity.robust import CLUSTER_WEEKS, block_cluster_ss, block_codes, cluster_ss
from pricelab.elasticity.synthetic import simulate_panel
from tests import _realdata_refs as R


@pytest.fixture(scope="module")
def panel() -> pl.DataFrame:
    """Eight items, 60 weeks, sparse (zero weeks move each group's first used week);
    item I000002 loses weeks 20-29 (its weeks are not consecutive)."""
    sales, _, _ = simulate_panel(n_items=8, markets=("US",), weeks=60, base_units=1.5, seed=5)
    start = sales["date"].min()
    gap = (pl.col("item_id") == "I000002") & pl.col("date").is_between(
        start + dt.timedelta(weeks=20), start + dt.timedelta(weeks=29)
    )
    return sales.filter(~gap)


def _ols_cluster_reference(g: pl.DataFrame, origin: dt.date) -> float:
    g = g.filter(pl.col("quantity") > 0)
    X = R.with_const(
        np.log(g["price"].to_numpy()),
        g["promo"].to_numpy().astype(float),
        *R.fourier_trend(g, origin),
    )
    y = np.log(g["quantity"].to_numpy().astype(float))
    fit = sm.OLS(y, X).fit()
    h = fit.get_influence().hat_matrix_diag
    a = (X * (fit.resid / (1 - h))[:, None]) @ np.linalg.inv(X.T @ X)[:, 1]
    week = g["date"].to_physical().to_numpy() // 7
    return R.cluster_variance(a, week, CLUSTER_WEEKS)


def test_ols_cluster_is_statsmodels_hat_matrix_with_week_blocks(panel):
    origin = panel["date"].min()
    got = estimate(panel, model="ols").elasticities  # default se: cluster
    assert got.height == 8
    for row in got.iter_rows(named=True):
        g = panel.filter(pl.col("item_id") == row["item_id"])
        ref = _ols_cluster_reference(g, origin)
        assert row["std_error"] == pytest.approx(np.sqrt(ref), rel=1e-8), row["item_id"]


def _bincount_cluster_ss(a, week, w, size):
    g = a.shape[0]
    cid, nc, c = block_codes(week, w, size)
    flat = (np.arange(g)[:, None] * nc + cid).ravel()
    sums = np.bincount(flat, weights=(a * (w > 0)).ravel(), minlength=g * nc).reshape(g, nc)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(c > 1, c / (c - 1.0), np.nan) * (sums**2).sum(axis=1)


@pytest.mark.parametrize("T", [1, 13, 26, 52, 60])
def test_prefix_sum_blocks_equal_bincount_blocks(T):
    rng = np.random.default_rng(T)
    g = 200
    a = rng.normal(size=(g, T))
    w = (rng.random((g, T)) > 0.4).astype(float)
    w[:5] = 0.0  # groups without a used week
    w[5:10, : T // 2] = 0.0  # first used week late in the series
    week = 2000 + np.tile(np.arange(T), (g, 1))
    got = block_cluster_ss(a, week, w, CLUSTER_WEEKS)
    np.testing.assert_allclose(got, _bincount_cluster_ss(a, week, w, CLUSTER_WEEKS), rtol=1e-12)
    gapped = week + (np.arange(T) >= T // 2) * 3  # a gap: the general path
    np.testing.assert_allclose(
        block_cluster_ss(a, gapped, w, CLUSTER_WEEKS),
        _bincount_cluster_ss(a, gapped, w, CLUSTER_WEEKS),
        rtol=1e-12,
    )


def test_cluster_ss_is_two_way_over_more_than_a_year():
    # explicit cluster sums per group: blocks only within a year, blocks + weeks of the
    # year - single weeks beyond it (gaps and late first weeks included)
    rng = np.random.default_rng(7)
    g, T = 40, 130
    a = rng.normal(size=(g, T))
    w = (rng.random((g, T)) > 0.3).astype(float)
    w[:10, 50:] = 0.0  # ten groups within a year
    w[10:15, :40] = 0.0  # first used week late
    week = 3000 + np.tile(np.arange(T), (g, 1)) + (np.arange(T) >= 90) * 2
    got = np.fmax((a * a * w).sum(axis=1), cluster_ss(a, week, w, CLUSTER_WEEKS))
    for i in range(g):
        u = w[i] > 0
        ref = R.cluster_variance(a[i, u], week[i, u], CLUSTER_WEEKS)
        assert got[i] == pytest.approx(ref, rel=1e-10), i
    within = block_cluster_ss(a[:10], week[:10], w[:10], CLUSTER_WEEKS)
    np.testing.assert_array_equal(cluster_ss(a[:10], week[:10], w[:10], CLUSTER_WEEKS), within)
