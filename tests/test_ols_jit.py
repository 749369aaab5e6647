"""The compiled ``ols`` kernel (``pricelab/elasticity/ols_jit.py``, numba) against its
reference, the numpy block kernel, on the same rows: every output column, every variance
type it takes, ragged and sparse groups, constant prices, groups spanning two years (the
two-way clusters) and weeks missing inside groups; and the ``estimate`` command with it
(stored elasticities and coefficients) against the numpy path on a database, also after
an append sends estimate down the aggregate path (issue #20)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import statsmodels.api as sm

from pricelab import api
from pricelab.elasticity.compiled import JIT_ROWS, JIT_SE, use_compiled
from pricelab.elasticity.glm_blocks import fit_ols_runs
from pricelab.elasticity.groupfit import FLAG
from pricelab.elasticity.synthetic import simulate_panel
from pricelab.store import Store

KEY = ["item_id", "market"]


@pytest.fixture(scope="module")
def sales() -> pl.DataFrame:
    s = simulate_panel(n_items=60, weeks=120, base_units=2.0, seed=5)[0]
    s = s.sort(*KEY, "date").with_row_index("_r")
    item = pl.col("item_id")
    s = s.filter(
        # weeks missing inside groups (non-consecutive weeks), short groups (< min_obs)
        ((pl.col("_r") % 9 != 4) | item.str.ends_with("1"))
        & (~item.str.ends_with("2") | (pl.col("date") > pl.date(2023, 4, 1)))
    ).drop("_r")
    s = s.with_columns(
        # constant prices (no price variation), a group without sales
        price=pl.when(item.str.ends_with("5")).then(3.0).otherwise(pl.col("price")),
        quantity=pl.when(item.str.ends_with("8") & (pl.col("market") == "US"))
        .then(0)
        .otherwise(pl.col("quantity")),
    )
    assert (s["quantity"] == 0).sum() > 500
    return s


def _same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        x, y = a[k], b[k]
        if x.dtype.kind in "iub":
            assert np.array_equal(x, y), k
            continue
        assert np.array_equal(np.isnan(x), np.isnan(y)), k
        ok = ~np.isnan(x)
        np.testing.assert_allclose(y[ok], x[ok], rtol=1e-12, atol=1e-12, err_msg=k)


@pytest.mark.parametrize("se", JIT_SE)
@pytest.mark.parametrize(
    "controls",
    [["promo", "fourier", "trend"], [], ["promo", "unit_cost"], ["fourier2", "unit_cost", "trend"]],
)
def test_compiled_kernel_equals_numpy_kernel(sales, se, controls) -> None:
    ref, keys, names = fit_ols_runs(sales, KEY, controls, None, se=se, compiled=False)
    out, keys2, names2 = fit_ols_runs(sales, KEY, controls, None, se=se, compiled=True)
    assert keys.equals(keys2) and names == names2
    flags = np.bitwise_or.reduce(ref["flags"])
    assert flags & FLAG["no_price_variation"] and flags & FLAG["no_sales"]
    assert flags & FLAG["few_obs"]
    _same(ref, out)


def test_compiled_kernel_two_way_clusters_and_unsorted_rows(sales) -> None:
    """Groups spanning more than a year take the week-of-year clusters; rows out of date
    order within their group take the cluster codes instead of consecutive blocks."""
    shuffled = sales.with_columns(_o=pl.int_range(pl.len()).shuffle(seed=3).over(KEY))
    shuffled = shuffled.sort(*KEY, "_o").drop("_o")
    for df in (sales, shuffled):
        ref, *_ = fit_ols_runs(df, KEY, ["promo"], None, se="cluster", compiled=False)
        out, *_ = fit_ols_runs(df, KEY, ["promo"], None, se="cluster", compiled=True)
        _same(ref, out)
        hc3, *_ = fit_ols_runs(df, KEY, ["promo"], None, se="HC3", compiled=True)
        assert (out["std_error"] > hc3["std_error"] * (1 + 1e-9)).any()  # clusters count


def test_compiled_kernel_against_statsmodels(sales) -> None:
    out, keys, _ = fit_ols_runs(sales, KEY, ["promo"], None, se="HC1", compiled=True)
    for i in np.flatnonzero(out["flags"] == 0)[[0, 7, 30]]:
        item, market = keys.row(i)
        g = sales.filter((pl.col("item_id") == item) & (pl.col("market") == market))
        g = g.filter(pl.col("quantity") > 0)
        X = sm.add_constant(np.c_[np.log(g["price"].to_numpy()), g["promo"].to_numpy()])
        fit = sm.OLS(np.log(g["quantity"].to_numpy()), X).fit(cov_type="HC1")
        assert out["elasticity"][i] == pytest.approx(fit.params[1], rel=1e-10)
        assert out["std_error"][i] == pytest.approx(fit.bse[1], rel=1e-10)


def test_when_the_compiled_kernel_is_used(monkeypatch) -> None:
    monkeypatch.delenv("PRICELAB_JIT", raising=False)
    assert not use_compiled(JIT_ROWS - 1) and use_compiled(JIT_ROWS)
    assert use_compiled(True) and not use_compiled(False)
    monkeypatch.setenv("PRICELAB_JIT", "0")
    assert not use_compiled(10**9)
    monkeypatch.setenv("PRICELAB_JIT", "1")
    assert use_compiled(1)


def _stored(db: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    run = api.estimate(db, model="ols")
    with Store.open(db, read_only=True) as store:
        el = store.read_result("elasticities", run.run_id)
        par = store.read_result("elasticity_params", run.run_id)
    return el, par


def _frames_close(a: pl.DataFrame, b: pl.DataFrame) -> None:
    """Equal to 1e-10 (as the key-run and aggregate paths): the short groups of the
    appended weeks with the default six coefficients are ill-conditioned (standard
    errors near 8), where the two kernels' sums in another order differ by ~1e-11."""
    assert a.columns == b.columns and a.height == b.height
    num = [c for c, t in a.schema.items() if t.is_float()]
    assert a.drop(num).equals(b.drop(num))
    for c in num:
        u, v = a[c].to_numpy(), b[c].to_numpy()
        assert np.array_equal(np.isnan(u), np.isnan(v)), c
        ok = ~np.isnan(u)
        np.testing.assert_allclose(v[ok], u[ok], rtol=1e-10, atol=1e-12, err_msg=c)


def test_estimate_command_compiled_equals_numpy(sales, tmp_path, monkeypatch) -> None:
    """The stored run of the compiled path equals the numpy path's, on a fresh database
    (key runs) and after an append to stored groups (the aggregate path)."""
    first = sales.filter(pl.col("date") < pl.date(2023, 6, 1))
    later = sales.filter(pl.col("date") >= pl.date(2023, 6, 1))
    first.write_parquet(tmp_path / "a.parquet")
    later.write_parquet(tmp_path / "b.parquet")
    db = str(tmp_path / "shop.duckdb")
    api.ingest(db, sales=tmp_path / "a.parquet")
    for append in (False, True):
        if append:
            api.ingest(db, sales=tmp_path / "b.parquet")
        monkeypatch.setenv("PRICELAB_JIT", "0")
        ref = _stored(db)
        monkeypatch.setenv("PRICELAB_JIT", "1")
        out = _stored(db)
        for a, b in zip(ref, out, strict=True):
            _frames_close(a, b)
        assert ref[0].height == sales.select(KEY).unique().height
