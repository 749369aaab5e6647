"""Sparse-series rules against statsmodels, separation, trend hold and the shrunk level."""

from __future__ import annotations

import datetime as dt
import warnings

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

from pricelab.elasticity import estimate
from pricelab.elasticity.design import YEAR_DAYS, build, resolve_controls
from pricelab.elasticity.synthetic import simulate_panel

KEYS = ["item_id", "market"]
BLOCKS = (("_c_promo",), ("_c_sin1", "_c_cos1"), ("_c_trend",))


def _reference_columns(X: np.ndarray, q: np.ndarray, names: list[str]) -> list[int]:
    """The documented rules, written out per group: events per parameter, then in-order VIF."""
    n_pos = int((q > 0).sum())
    varies = [j for j in range(X.shape[1]) if np.ptp(X[:, j]) > 0]
    allowed, used = set(), 0
    for block in BLOCKS:
        idx = [names.index(c) for c in block if names.index(c) in varies]
        if n_pos >= 10 * (used + len(idx)):
            allowed |= set(idx)
            used += len(idx)
    cols = [0]
    for j in range(1, X.shape[1]):
        if j not in varies or (names[j].startswith("_c_") and j not in allowed):
            continue
        if names[j].startswith("_c_"):
            fit = np.linalg.lstsq(X[:, cols], X[:, j], rcond=None)[0]
            resid = X[:, j] - X[:, cols] @ fit
            r2 = 1 - resid @ resid / ((X[:, j] - X[:, j].mean()) ** 2).sum()
            if 1 / (1 - r2) >= 10:  # variance inflation of 10 or more
                continue
        cols.append(j)
    return cols


@pytest.fixture(scope="module")
def sparse():
    # slow sellers (0.3-3 units/week), some launched late: the rules bite on many groups
    sales, items, truth = simulate_panel(
        n_items=80, weeks=60, base_units=0.8, price_sd=0.2, season_amp=0.3, seed=51
    )
    late = pl.col("item_id").is_in([f"I{i:06d}" for i in range(0, 80, 4)])
    sales = sales.filter(~late | (pl.col("date") >= dt.date(2022, 1, 3) + dt.timedelta(weeks=28)))
    return sales, items, truth


def test_rules_match_statsmodels_on_the_columns_they_keep(sparse):
    sales, _, _ = sparse
    res = estimate(sales, model="poisson", se="HC1")
    d = build(sales, KEYS, resolve_controls("default"))
    e, s = res.elasticities["elasticity"].to_numpy(), res.elasticities["std_error"].to_numpy()
    flags = res.elasticities["flags"].to_list()
    reduced = full = failed = rescued = 0
    for g in range(d.n_groups):
        idx = np.flatnonzero(d.codes == g)
        X, q = d.X[idx], d.q[idx]
        cols = _reference_columns(X, q, d.names)
        par = res.params.row(g, named=True)
        kept = [j for j, n in enumerate(d.names) if np.isfinite(par[n.removeprefix("_c_")])]
        if "failed" in flags[g]:
            assert np.isnan(e[g]) and "separated" in flags[g]
            failed += 1
            continue
        if "separated" in flags[g]:
            # ppmlhdfe-style: drop the zero weeks whose fitted mean collapsed, refit
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mu = sm.GLM(q, X[:, cols], family=sm.families.Poisson()).fit(maxiter=300).mu
            rows = ~((q == 0) & (mu < 1e-6 * q.mean()))
            assert (~rows).any()
            X, q = X[rows], q[rows]
            cols = _reference_columns(X, q, d.names)
            rescued += 1
        assert kept == cols, (g, d.names)
        r = sm.GLM(q, X[:, cols], family=sm.families.Poisson()).fit(cov_type="HC0", tol=1e-13)
        f = np.sqrt(len(q) / (len(q) - len(cols)))  # our HC1 factor
        assert e[g] == pytest.approx(r.params[1], abs=1e-6, rel=1e-6)
        assert s[g] == pytest.approx(r.bse[1] * f, abs=1e-6, rel=1e-6)
        reduced += len(cols) < 6
        full += len(cols) == 6
    assert reduced >= 40 and full >= 10  # both kinds are exercised
    assert rescued >= 3


def test_rules_off_keeps_every_column(sparse):
    sales, _, _ = sparse
    res = estimate(sales, model="poisson", events_per_param=0)
    assert res.parameters["events_per_param"] == 0
    ok = res.params.filter(pl.col("item_id") == "I000001")
    assert np.isfinite(ok.select("promo", "sin1", "cos1", "trend").to_numpy()).all()


def _separated_panel() -> pl.DataFrame:
    """30 ordinary items, one that never sold on promotion, one that sold only in the sale."""
    sales, _, _ = simulate_panel(
        n_items=30, markets=("US",), weeks=60, base_units=2.0, price_sd=0.2, seed=52
    )
    rng = np.random.default_rng(5)
    d0 = dt.date(2022, 1, 3)
    promo = (np.arange(60) % 6 == 0).astype(np.int8)
    sale = (np.arange(60) % 10 < 2).astype(np.int8)
    frames = []
    for name, flag, price, q in (
        (
            "PROMO",
            promo,
            500.0 * np.exp(rng.normal(0, 0.1, 60)) * (1 - 0.2 * promo),
            np.where(promo == 1, 0, rng.poisson(0.6, 60)),
        ),
        ("SALE", sale, np.where(sale == 1, 400.0, 500.0), sale * rng.integers(1, 3, 60)),
    ):
        frames.append(
            pl.DataFrame(
                {
                    "item_id": name,
                    "market": "US",
                    "date": [d0 + dt.timedelta(weeks=w) for w in range(60)],
                    "price": price,
                    "quantity": q.astype(np.int64),
                    "promo": flag,
                    "unit_cost": 200.0,
                }
            )
        )
    return pl.concat([sales, *frames], how="vertical_relaxed")


def test_separation_by_a_control_is_refitted_without_it():
    sales = _separated_panel()
    one = sales.filter(pl.col("item_id") == "PROMO")
    d = build(one, KEYS, resolve_controls("default"))
    ref = sm.GLM(d.q, d.X, family=sm.families.Poisson()).fit(maxiter=200)
    assert ref.params[2] < -15  # statsmodels: promo runs off to -inf
    res = estimate(sales, model="poisson")
    row = res.elasticities.filter(pl.col("item_id") == "PROMO").row(0, named=True)
    assert "separated" in row["flags"] and "failed" not in row["flags"]
    # reference: the promotion weeks (all zero, all collapsed) dropped, promo with them
    rows = d.X[:, 2] == 0
    cols = _reference_columns(d.X[rows], d.q[rows], d.names)
    assert 2 not in cols
    ok = sm.GLM(d.q[rows], d.X[rows][:, cols], family=sm.families.Poisson()).fit(
        cov_type="HC0", tol=1e-13
    )
    assert row["elasticity"] == pytest.approx(ok.params[1], rel=1e-6)
    assert np.isnan(res.params.filter(pl.col("item_id") == "PROMO")["promo"][0])


def test_separation_by_price_fails_and_gets_the_level_prior():
    sales = _separated_panel()
    row = estimate(sales, model="poisson").elasticities.filter(pl.col("item_id") == "SALE")
    assert np.isnan(row["elasticity"][0]) and row["flags"][0] == "failed,separated"
    h = estimate(sales, model="hierarchical").elasticities.filter(pl.col("item_id") == "SALE")
    assert np.isfinite(h["elasticity"][0])
    assert set(h["flags"][0].split(",")) >= {"separated", "shrunk"}
    assert "failed" not in h["flags"][0]


def test_trend_is_held_after_the_fit_window():
    sales, _, _ = simulate_panel(
        n_items=5, markets=("US",), weeks=80, base_units=20, trend=0.5, seed=53
    )
    res = estimate(sales, model="poisson")
    end = sales["date"].max()
    assert res.parameters["end"] == str(end)
    later = sales.filter(pl.col("date") == end).with_columns(
        pl.col("date") + dt.timedelta(weeks=30), pl.lit(0).cast(pl.Int8).alias("promo")
    )
    pred = res.predict(later).join(res.params, on=KEYS)
    t_end = (end - sales["date"].min()).days / YEAR_DAYS
    angle = 2 * np.pi * pred["date"].dt.ordinal_day().to_numpy() / YEAR_DAYS
    eta = (
        pred["intercept"]
        + pred["log_price"] * pred["price"].log()
        + pred["sin1"] * np.sin(angle)
        + pred["cos1"] * np.cos(angle)
        + pred["trend"] * t_end
    ).to_numpy()
    np.testing.assert_allclose(pred["expected_quantity"].to_numpy(), np.exp(eta), rtol=1e-10)
    # inside the window the trend runs as fitted: fitted totals equal observed totals
    fit = res.predict(sales).group_by(KEYS).agg(pl.col("quantity", "expected_quantity").sum())
    np.testing.assert_allclose(fit["expected_quantity"], fit["quantity"], rtol=1e-8)


def test_shrinking_keeps_the_level_at_the_groups_mean_price(sparse):
    # shrink alone (the first step, and what a group keeps when its refit fails: see
    # tests/test_hierarchical_refit.py for the refit) moves the intercept so the level at
    # the group's mean log price stays; the controls are the group's own
    from pricelab.elasticity.design import with_items
    from pricelab.elasticity.glm_blocks import fit_poisson_runs
    from pricelab.elasticity.hierarchical import shrink

    sales, items, _ = sparse
    df = with_items(sales, items)
    out, _, names, first = fit_poisson_runs(df, KEYS, resolve_controls("default"), df["date"].min())
    own = out["params"].copy()
    m = out["mean_log_price"].copy()
    out, _ = shrink(out, first, out["mean_quantity"], None)
    fit = np.isfinite(own[:, 1])
    assert fit.sum() >= 100
    assert np.abs(own[fit, 1] - out["params"][fit, 1]).max() > 0.5  # slopes really moved
    at_mean = own[fit, 0] + own[fit, 1] * m[fit]
    at_mean_h = out["params"][fit, 0] + out["params"][fit, 1] * m[fit]
    np.testing.assert_allclose(at_mean_h, at_mean, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(out["params"][fit, 2:], own[fit, 2:])
    assert names[2:] == ["_c_promo", "_c_sin1", "_c_cos1", "_c_trend"]
