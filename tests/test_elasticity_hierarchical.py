"""Hierarchical pooling: interval coverage on known truth and the tau-integration reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import stats

from pricelab.elasticity import estimate
from pricelab.elasticity.pooling import pool_level
from pricelab.elasticity.synthetic import simulate_panel
from pricelab.errors import UsageError
from tests._panels import KEYS, score, sparse_categories

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


@pytest.mark.parametrize("seed", [31, 32, 34, 35, 37, 38])
def test_sparse_coverage_and_gain_over_poisson(seed):
    sales, items, truth = sparse_categories(seed)
    mae_p, _ = score(estimate(sales, model="poisson"), truth)
    res = estimate(sales, model="hierarchical", items=items)
    mae_h, cover = score(res, truth)
    assert cover >= 0.88
    assert mae_h <= 0.6 * mae_p
    assert res.elasticities["elasticity"].is_nan().sum() == 0
    assert res.elasticities["flags"].str.contains("shrunk").any()
    assert res.parameters["pool_by"][0] == ["category", "market"]


def test_common_tau_option_is_tighter_on_equal_spreads():
    # equal spread in every category: the common tau pools 12 levels' information
    sales, items, truth = sparse_categories(31)
    lvl = estimate(sales, model="hierarchical", items=items)
    com = estimate(sales, model="hierarchical", items=items, tau="common")
    assert lvl.parameters["tau"] == "level" and com.parameters["tau"] == "common"
    assert com.elasticities["std_error"].median() < lvl.elasticities["std_error"].median()
    with pytest.raises(UsageError, match="tau"):
        estimate(sales, model="hierarchical", tau="item")


def test_sample_truth_coverage():
    sales = pl.read_csv(SAMPLE / "sales.csv", try_parse_dates=True)
    items = pl.read_csv(SAMPLE / "items.csv")
    truth = pl.read_csv(SAMPLE / "true_elasticities.csv").select(
        *KEYS, pl.col("elasticity").alias("true_elasticity")
    )
    mae_p, _ = score(estimate(sales, model="poisson", items=items), truth)
    mae_h, cover = score(estimate(sales, model="hierarchical", items=items), truth)
    assert cover >= 0.88
    assert mae_h <= 0.6 * mae_p


def _brute_force(e, v, lvl, i, n_mu=801, n_tau=801):
    """Posterior mean/var of theta_i by quadrature over (mu_L, tau) of the model density."""
    sel = lvl == lvl[i]
    es, vs = e[sel], v[sel]
    lo, hi = es.min() - 3 * np.sqrt(vs.max()), es.max() + 3 * np.sqrt(vs.max())
    mu = np.linspace(lo, hi, n_mu)[:, None, None]
    tau = np.linspace(0, 6 * np.std(es) + 3 * np.sqrt(vs.mean()), n_tau)[None, :, None]
    logf = stats.norm.logpdf(es[None, None, :], mu, np.sqrt(vs[None, None, :] + tau**2)).sum(-1)
    w = np.exp(logf - logf.max())
    w /= w.sum()
    t2 = tau[..., 0] ** 2
    vi, ei = v[i], e[i]
    m = (ei * t2 + mu[..., 0] * vi) / (t2 + vi)  # conjugate normal given (mu, tau)
    s = t2 * vi / (t2 + vi)
    mean = (w * m).sum()
    return mean, (w * (s + m * m)).sum() - mean**2


def test_level_tau_matches_quadrature_over_mu_and_tau():
    rng = np.random.default_rng(7)
    lvl = np.repeat([0, 1], [6, 9])
    theta = np.where(lvl == 0, -1.5, -2.5) + 0.4 * rng.standard_normal(lvl.size)
    v = rng.uniform(0.05, 0.6, lvl.size)
    e = theta + np.sqrt(v) * rng.standard_normal(lvl.size)
    fit = pool_level(e, v, lvl, 2, grid=400, common_tau=False)
    for i in (0, 3, 7, 14):
        mean, var = _brute_force(e, v, lvl, i)
        assert fit.mean[i] == pytest.approx(mean, abs=2e-3)
        assert fit.var[i] == pytest.approx(var, rel=1e-2)
    assert fit.count.tolist() == [6, 9]


def test_common_tau_is_the_product_of_level_likelihoods():
    rng = np.random.default_rng(8)
    lvl = np.repeat([0, 1, 2], 5)
    e = np.array([-1.0, -2.0, -3.0])[lvl] + 0.3 * rng.standard_normal(15)
    v = np.full(15, 0.05)
    common = pool_level(e, v, lvl, 3, grid=300, common_tau=True)
    # the common tau's posterior mean against a direct 1-D quadrature of the product of the
    # three levels' restricted likelihoods
    tau = np.linspace(1e-6, 3, 6001)
    ll = np.zeros_like(tau)
    for g in range(3):
        es, vs = e[lvl == g], v[lvl == g]
        w = 1 / (vs[:, None] + tau**2)
        mu = (w * es[:, None]).sum(0) / w.sum(0)
        ll += -0.5 * (np.log(w.sum(0)) - np.log(w).sum(0) + (w * (es[:, None] - mu) ** 2).sum(0))
    p = np.exp(ll - ll.max())
    p /= p.sum()
    assert common.tau2[0] == pytest.approx((p * tau**2).sum(), rel=1e-3)
    assert np.allclose(common.tau2, common.tau2[0])


def test_groups_without_estimate_get_the_level_predictive():
    sales, items, _ = simulate_panel(n_items=60, weeks=40, base_units=3, seed=36)
    flat = sales.with_columns(
        pl.when(pl.col("item_id") == "I000000")
        .then(500.0)
        .otherwise(pl.col("price"))
        .alias("price")
    )
    res = estimate(flat, model="hierarchical", items=items)
    row = res.elasticities.filter(pl.col("item_id") == "I000000").row(0, named=True)
    assert "no_price_variation" in row["flags"] and "shrunk" in row["flags"]
    others = res.elasticities.filter(pl.col("item_id") != "I000000")
    assert np.isfinite(row["elasticity"])
    # the predictive sd includes tau: wider than most groups that have their own data (with
    # each group's own robust variance, groups far from the level mean have posterior sds
    # of the same size: their shrinkage is uncertain over tau)
    assert row["std_error"] > others["std_error"].quantile(0.25)


def test_shrink_accepts_a_design_or_group_rows():
    # the engines' driver step passes a design-like object (frame, codes, q) per group
    from types import SimpleNamespace

    from pricelab.elasticity import design as D
    from pricelab.elasticity.glm_blocks import fit_poisson_runs
    from pricelab.elasticity.hierarchical import shrink

    sales, items, _ = simulate_panel(n_items=40, weeks=30, base_units=3, seed=37)
    df = D.with_items(sales, items)
    out, _, _, first = fit_poisson_runs(df, KEYS, D.resolve_controls("default"), df["date"].min())
    a, used = shrink({k: v.copy() for k, v in out.items()}, first, out["mean_quantity"], None)
    G = first.height
    like = SimpleNamespace(frame=first, codes=np.arange(G), q=out["mean_quantity"], n_groups=G)
    b, _ = shrink({k: v.copy() for k, v in out.items()}, like, None, None)
    np.testing.assert_array_equal(a["elasticity"], b["elasticity"])
    np.testing.assert_array_equal(a["params"], b["params"])
    assert used[0] == ["category", "market"]
