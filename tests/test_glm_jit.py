"""The compiled Poisson loops (numba) against the numpy loops they replace (``PRICELAB_JIT=0``;
``1`` forces the compiled ones on these small panels).

The numpy kernels are themselves checked against statsmodels (``test_elasticity_sparse``,
``test_elasticity_glm_blocks``, ``test_hierarchical_refit``), which now run the compiled
loops by default; here the two paths are compared group by group on panels where the
sparse-series rules drop columns, fits separate and are rescued, and groups are not fitted.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from pricelab.elasticity import design as D
from pricelab.elasticity.glm_blocks import fit_poisson_runs
from pricelab.elasticity.groupfit import FLAG
from pricelab.elasticity.synthetic import simulate_panel

pytest.importorskip("numba")

KEYS = ["item_id", "market"]


@pytest.fixture(scope="module")
def panel() -> pl.DataFrame:
    """Slow sellers, some launched late, one all-zero item, one flat price, one that never
    sold on promotion (separated by the promo control), one short item."""
    sales, _, _ = simulate_panel(
        n_items=120, weeks=60, base_units=0.8, price_sd=0.2, season_amp=0.3, seed=51
    )
    item = pl.col("item_id")
    late = item.is_in([f"I{i:06d}" for i in range(0, 120, 4)])
    start = dt.date(2022, 1, 3) + dt.timedelta(weeks=28)
    return sales.filter(~late | (pl.col("date") >= start)).with_columns(
        quantity=pl.when(item == "I000009")
        .then(0)
        .when((item == "I000013") & (pl.col("promo") == 1))
        .then(0)
        .otherwise(pl.col("quantity")),
        price=pl.when(item == "I000005").then(100.0).otherwise(pl.col("price")),
    )


def _fit(df: pl.DataFrame, monkeypatch: pytest.MonkeyPatch, jit: str, **kw):
    monkeypatch.setenv("PRICELAB_JIT", jit)
    ctrl = D.resolve_controls("default")
    return fit_poisson_runs(df, KEYS, ctrl, df["date"].min(), max_cells=2e4, **kw)[0]


@pytest.mark.parametrize("se", ["cluster", "HC1", "nonrobust"])
def test_compiled_irls_equals_numpy_irls(panel, monkeypatch, se):
    ref = _fit(panel, monkeypatch, "0", se=se, calendar=True)
    new = _fit(panel, monkeypatch, "1", se=se, calendar=True)
    flags = ref["flags"]
    # the panel exercises the rules: separated (rescued or failed), columns dropped, unfitted
    assert ((flags & FLAG["separated"]) > 0).sum() >= 3
    assert (~np.isfinite(ref["params"][:, 2:]) & np.isfinite(ref["params"][:, :1])).any()
    assert ((flags & FLAG["no_sales"]) > 0).any() and np.isnan(ref["elasticity"]).any()
    np.testing.assert_array_equal(new["flags"], flags)
    for k in ("elasticity", "std_error", "model_var", "fit_stat", "params", "calendar"):
        a, b = ref[k].astype(np.float64), new[k].astype(np.float64)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=k)
        np.testing.assert_allclose(b, a, rtol=1e-7, atol=1e-9, err_msg=k)


def test_when_the_compiled_loops_run(monkeypatch):
    from pricelab.elasticity.compiled import GLM_JIT_ROWS, prepare_compiled, use_compiled
    from pricelab.elasticity.poisson_kernel import _irls_jit

    monkeypatch.delenv("PRICELAB_JIT", raising=False)
    assert not use_compiled(GLM_JIT_ROWS - 1, GLM_JIT_ROWS)  # numba's load does not pay
    assert use_compiled(GLM_JIT_ROWS, GLM_JIT_ROWS)
    assert not prepare_compiled(GLM_JIT_ROWS - 1, "cluster", "hierarchical")
    assert prepare_compiled(GLM_JIT_ROWS, "HAC", "poisson")  # no HAC rule for Poisson
    monkeypatch.setenv("PRICELAB_JIT", "0")
    assert not use_compiled(10**9, GLM_JIT_ROWS)
    monkeypatch.setenv("PRICELAB_JIT", "1")
    assert use_compiled(10, GLM_JIT_ROWS)
    assert _irls_jit(False) is None and _irls_jit(True) is not None


def test_compiled_refit_equals_numpy_refit(panel, monkeypatch):
    from pricelab.elasticity.hierarchical import shrink
    from pricelab.elasticity.refit import refit_mask, refit_runs

    ctrl = D.resolve_controls("default")
    origin = panel["date"].min()
    monkeypatch.setenv("PRICELAB_JIT", "0")
    out, _, _, first = fit_poisson_runs(panel, KEYS, ctrl, origin, calendar=True)
    out, _ = shrink(out, first, out["mean_quantity"], None)
    moved = refit_mask(out)
    assert moved.sum() > 50
    params = {}
    for jit in ("0", "1"):
        monkeypatch.setenv("PRICELAB_JIT", jit)
        part = {k: v.copy() for k, v in out.items()}
        assert refit_runs(panel, KEYS, ctrl, origin, part, max_cells=2e4) == 0
        params[jit] = part["params"]
    np.testing.assert_array_equal(np.isnan(params["1"]), np.isnan(params["0"]))
    np.testing.assert_allclose(params["1"], params["0"], rtol=0, atol=1e-9)
    # the refit moved the intercept and controls of the moved groups
    assert np.nanmax(np.abs(params["1"][moved] - out["params"][moved])) > 1e-2
