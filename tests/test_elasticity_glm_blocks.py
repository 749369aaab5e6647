"""The block-wise ``ols`` path against the padded kernel path and statsmodels."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

from pricelab.elasticity import design as D
from pricelab.elasticity import estimate
from pricelab.elasticity.block_kernels import cholesky_solve, masked_cholesky
from pricelab.elasticity.block_runs import blocks, group_runs
from pricelab.elasticity.groupfit import fit_ols
from pricelab.elasticity.synthetic import simulate_panel
from pricelab.errors import UsageError

KEYS = ["item_id", "market"]


@pytest.fixture(scope="module")
def awkward():
    """Sparse panel with a flat-price item, a short item, an unbalanced item and an all-zero one."""
    sales, _, _ = simulate_panel(n_items=120, weeks=52, base_units=3.0, price_sd=0.2, seed=12)
    item = pl.col("item_id")
    return (
        sales.filter(~((item == "I000003") & (pl.col("date") > dt.date(2022, 6, 1))))
        .filter(~((item == "I000007") & (pl.col("date") > dt.date(2022, 2, 1))))
        .with_columns(
            price=pl.when(item == "I000005").then(100.0).otherwise(pl.col("price")),
            quantity=pl.when(item == "I000009").then(0).otherwise(pl.col("quantity")),
            promo=pl.when(item == "I000011").then(1).otherwise(pl.col("promo")),
        )
    )


def _padded(sales, se, controls="default"):
    d = D.build(sales, KEYS, D.resolve_controls(controls))
    return d, fit_ols(d, se=se)


@pytest.mark.parametrize("se", ["HC1", "HC0", "nonrobust"])
@pytest.mark.parametrize("shuffle", [False, True])
def test_same_numbers_as_padded_path(awkward, se, shuffle):
    sales = awkward.sample(fraction=1.0, shuffle=True, seed=3) if shuffle else awkward
    res = estimate(sales, model="ols", se=se)
    d, ref = _padded(awkward, se)
    t = res.elasticities
    assert t.select(KEYS).equals(d.keys)
    for col in ("elasticity", "std_error", "fit_stat", "price_variation"):
        np.testing.assert_allclose(t[col].to_numpy(), ref[col], rtol=1e-8, atol=1e-10)
    assert t["n_obs"].to_list() == ref["n_obs"].tolist()
    assert t["n_zero"].to_list() == ref["n_zero"].tolist()
    from pricelab.elasticity.groupfit import flag_signs, flag_strings

    flag_signs(ref)
    assert t["flags"].to_list() == flag_strings(ref["flags"])
    par = res.params.drop(KEYS).to_numpy()
    np.testing.assert_allclose(par, np.c_[ref["params"], ref["smearing"]], rtol=1e-8, atol=1e-9)
    flags = dict(zip(t["item_id"], t["flags"], strict=False))
    assert "no_price_variation" in flags["I000005"] and "few_obs" in flags["I000007"]
    assert "no_sales" in flags["I000009"]
    # a promo column constant in a group is dropped (NaN), the slope still estimated
    row = res.params.filter(pl.col("item_id") == "I000011").row(0, named=True)
    assert np.isnan(row["promo"]) and np.isfinite(row["log_price"])


def test_matches_statsmodels_with_fourier2_and_custom_control(awkward):
    sales = awkward.with_columns(z=pl.col("unit_cost").log())
    res = estimate(sales, model="ols", se="HC1", controls=["promo", "fourier2", "trend", "z"])
    d = D.build(sales, KEYS, ["promo", "fourier2", "trend", "z"])
    e, s = res.elasticities["elasticity"].to_numpy(), res.elasticities["std_error"].to_numpy()
    checked = 0
    for g in range(d.n_groups):
        idx = np.flatnonzero((d.codes == g) & (d.q > 0))
        if len(idx) < 8:
            continue
        X = d.X[idx]
        cols = [0] + [j for j in range(1, X.shape[1]) if np.ptp(X[:, j]) > 0]
        if 1 not in cols:
            continue
        r = sm.OLS(np.log(d.q[idx]), X[:, cols]).fit(cov_type="HC1")
        assert e[g] == pytest.approx(r.params[1], rel=1e-8, abs=1e-10)
        assert s[g] == pytest.approx(r.bse[1], rel=1e-8, abs=1e-10)
        checked += 1
    assert checked >= 200


def test_pooled_and_other_groupings(awkward):
    pooled = estimate(awkward, model="ols", by=None, controls=["promo"], se="HC1")
    pos = awkward.filter(pl.col("quantity") > 0)
    X = np.c_[np.ones(pos.height), np.log(pos["price"].to_numpy()), pos["promo"].to_numpy()]
    r = sm.OLS(np.log(pos["quantity"].to_numpy()), X).fit(cov_type="HC1")
    assert pooled.elasticities["elasticity"][0] == pytest.approx(r.params[1], rel=1e-9)
    assert pooled.elasticities["std_error"][0] == pytest.approx(r.bse[1], rel=1e-9)
    by_market = estimate(awkward, model="ols", by="market", se="HC1")
    assert by_market.elasticities["market"].to_list() == ["GB", "US"]


def test_group_runs_reorders_only_split_groups():
    df = pl.DataFrame({"a": ["x", "x", "y", "y", "z"], "v": [1, 2, 3, 4, 5]})
    same, starts = group_runs(df, ["a"])
    assert same is df and starts.tolist() == [0, 2, 4]
    split = pl.DataFrame({"a": ["x", "y", "x", "z", "y"], "v": [1, 2, 3, 4, 5]})
    out, starts = group_runs(split, ["a"])
    assert starts.size == 3
    runs = np.split(out["a"].to_numpy(), starts[1:])
    assert sorted(r[0] for r in runs) == ["x", "y", "z"] and all(len(set(r)) == 1 for r in runs)
    assert sorted(out["v"].to_list()) == [1, 2, 3, 4, 5]


def test_blocks_cover_every_row_once():
    counts = np.array([3, 3, 3, 1, 5, 3, 2, 1])
    starts = np.cumsum(counts) - counts
    seen, slices = [], 0
    for gs, rows, width in blocks(counts, 2, 12):
        assert (counts[gs] == width).all() and gs.size * width * 2 <= max(12, width * 2)
        if isinstance(rows, slice):
            slices += 1
            rows = np.arange(rows.start, rows.stop).reshape(gs.size, width)
        assert (rows[:, 0] == starts[gs]).all()
        seen += rows.ravel().tolist()
    assert sorted(seen) == list(range(counts.sum())) and slices >= 2


def test_masked_cholesky_solves_and_drops_like_lstsq():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(50, 30, 4))
    A[:10, :, 2] = A[:10, :, 0] * 2.0 - A[:10, :, 1]  # collinear third column
    A[10:20, :, 0] = 0.0  # zero first column
    C = np.matmul(A.transpose(0, 2, 1), A)
    b = rng.normal(size=(50, 4, 1))
    L, keep = masked_cholesky(C)
    assert (~keep[:10, 2]).all() and keep[:10, [0, 1, 3]].all()
    assert (~keep[10:20, 0]).all() and keep[20:].all()
    x = cholesky_solve(L, keep, b)
    for g in range(50):
        k = keep[g]
        ref = np.linalg.solve(C[g][np.ix_(k, k)], b[g, k, 0])
        np.testing.assert_allclose(x[g, k, 0], ref, rtol=1e-9)
        assert (x[g, ~k, 0] == 0).all()


@pytest.mark.parametrize("lags", [None, 0, 3])
def test_hac_matches_statsmodels_newey_west(lags):
    sales, _, _ = simulate_panel(n_items=15, weeks=60, base_units=40.0, price_sd=0.2, seed=13)
    assert (sales["quantity"] > 0).all()  # lags in weeks = lags in rows
    shuffled = sales.sample(fraction=1.0, shuffle=True, seed=2)  # HAC sorts by date itself
    res = estimate(shuffled, model="ols", se="HAC", hac_lags=lags)
    d = D.build(sales, KEYS, D.resolve_controls("default"))
    e, s = res.elasticities["elasticity"].to_numpy(), res.elasticities["std_error"].to_numpy()
    for g in range(d.n_groups):
        idx = np.flatnonzero(d.codes == g)
        n = idx.size
        L = int(np.floor(4 * (n / 100) ** (2 / 9))) if lags is None else lags
        r = sm.OLS(np.log(d.q[idx]), d.X[idx]).fit(cov_type="HAC", cov_kwds={"maxlags": L})
        assert e[g] == pytest.approx(r.params[1], rel=1e-9)
        assert s[g] == pytest.approx(r.bse[1], rel=1e-8)
    hc0 = estimate(sales, model="ols", se="HC0").elasticities["std_error"].to_numpy()
    if lags == 0:
        np.testing.assert_allclose(s, hc0, rtol=1e-9)


def test_hac_usage_errors():
    sales, _, _ = simulate_panel(n_items=3, weeks=20, seed=14)
    with pytest.raises(UsageError, match="HAC"):
        estimate(sales, model="poisson", se="HAC")
    with pytest.raises(UsageError, match="hac_lags"):
        estimate(sales, model="ols", hac_lags=2)


@pytest.mark.parametrize("model", ["ols", "poisson", "hierarchical"])
def test_progress_callback_reaches_total(model):
    sales, _, _ = simulate_panel(n_items=50, weeks=30, seed=15)
    calls = []
    estimate(
        sales, model=model, max_cells=2000, progress=lambda done, total: calls.append((done, total))
    )
    assert len(calls) > 1 and calls[-1] == (100, 100)
    assert all(a[0] < b[0] for a, b in zip(calls, calls[1:], strict=False))


@pytest.mark.parametrize("se", ["HC1", "nonrobust"])
def test_poisson_blocks_same_numbers_as_padded_path(awkward, se):
    from pricelab.elasticity.groupfit import fit_poisson

    res = estimate(awkward.sample(fraction=1.0, shuffle=True, seed=4), model="poisson", se=se)
    d = D.build(awkward, KEYS, D.resolve_controls("default"))
    ref = fit_poisson(d, se=se)
    t = res.elasticities
    assert t.select(KEYS).equals(d.keys)
    for col in ("elasticity", "std_error", "fit_stat", "price_variation"):
        np.testing.assert_allclose(t[col].to_numpy(), ref[col], rtol=1e-8, atol=1e-10)
    assert t["n_obs"].to_list() == ref["n_obs"].tolist()
    assert t["n_zero"].to_list() == ref["n_zero"].tolist()
    from pricelab.elasticity.groupfit import flag_signs, flag_strings

    flag_signs(ref)
    assert t["flags"].to_list() == flag_strings(ref["flags"])
    par = res.params.drop([*KEYS, "smearing"]).to_numpy()
    np.testing.assert_allclose(par, ref["params"], rtol=1e-7, atol=1e-8)


def test_rich_progress_bar_shows_groups_done():
    import io

    from rich.console import Console

    from pricelab.elasticity.progress import rich_progress

    sales, _, _ = simulate_panel(n_items=30, weeks=20, seed=16)
    buf = io.StringIO()
    with rich_progress(
        "fitting",
        console=Console(file=buf, width=100, force_terminal=False),
        transient=False,
        disable=False,
    ) as cb:
        estimate(sales, model="ols", max_cells=500, progress=cb)
    assert "fitting" in buf.getvalue() and "60/60" in buf.getvalue()
    quiet = io.StringIO()  # not a terminal: nothing drawn by default
    with rich_progress(console=Console(file=quiet, force_terminal=False)) as cb:
        estimate(sales, model="ols", progress=cb)
    assert quiet.getvalue() == ""


@pytest.mark.parametrize(
    "bits",
    [
        np.zeros(0, np.int64),
        np.zeros(5, np.int64),
        np.array([3, 1, 3, 0, 2047, 1], np.int64),
        np.random.default_rng(7).integers(0, 2048, 50_000),
        np.random.default_rng(8).choice([0, 2, 6, 64, 1024], 10_000).astype(np.uint16),
        np.array([5, 4096, 5], np.int64),  # not flag sets: the general way
        np.array([-1, 2, 2], np.int64),
    ],
)
def test_flag_series_counts_the_distinct_sets_as_np_unique_would(bits) -> None:
    from pricelab.elasticity.groupfit import FLAG_NAMES, _distinct, flag_series

    values, inverse = _distinct(bits)
    ref_values, ref_inverse = np.unique(bits, return_inverse=True)
    np.testing.assert_array_equal(values, ref_values)
    np.testing.assert_array_equal(inverse, ref_inverse.ravel())
    assert values.dtype == ref_values.dtype
    if bits.size and bits.min() >= 0 and bits.max() < 1 << len(FLAG_NAMES):
        expect = [",".join(n for i, n in enumerate(FLAG_NAMES) if int(b) >> i & 1) for b in bits]
        assert flag_series(bits).to_list() == expect
