"""The compiled posterior moments (:mod:`pricelab.elasticity.pool_jit`, numba) against the
numpy loop they replace (``_posterior``, the reference; itself checked against quadrature
and the dense covariance formulas in ``test_elasticity_hierarchical`` and
``test_hierarchical_shared``): levels of different sizes, one-member levels, a common
``tau``, weekly sums within a year and over two, estimates picked from the calendar rows."""

from __future__ import annotations

import numpy as np
import pytest

from pricelab.elasticity.pooling import pool_level

pytest.importorskip("numba")


def _case(seed: int, nw: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    n, L = 900, 7
    lvl = rng.choice(L, n, p=[0.4, 0.25, 0.15, 0.1, 0.07, 0.03 - 1e-3, 1e-3])
    lvl[0] = L - 1  # a level of one member or two
    e = -2.0 + 0.5 * rng.standard_normal(L)[lvl] + 0.3 * rng.standard_normal(n)
    v = rng.uniform(0.01, 0.3, n)
    cal = (rng.standard_normal((n + 50, nw)) + rng.standard_normal(nw)).astype(np.float32)
    rows = np.sort(rng.choice(n + 50, n, replace=False))
    return e, v, lvl, cal, rows


@pytest.mark.parametrize("nw", [0, 52, 104])
@pytest.mark.parametrize("common", [False, True])
def test_compiled_moments_equal_the_numpy_loop(nw, common, monkeypatch) -> None:
    monkeypatch.delenv("PRICELAB_JIT", raising=False)
    e, v, lvl, cal, rows = _case(nw + common, max(nw, 1))
    kw = {"common_tau": common}
    if nw:
        kw.update(calendar=cal, rows=rows)
    ref = pool_level(e, v, lvl, 9, **kw)
    got = pool_level(e, v, lvl, 9, compiled=True, **kw)
    assert (ref.prior_weight > 0.05).all() and (ref.prior_weight < 0.95).any()  # shrunk
    for name in ("mean", "var", "prior_weight", "mu", "tau2", "new_mean", "new_var", "count"):
        a, b = getattr(ref, name), getattr(got, name)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=name)
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-15, err_msg=name)
    np.testing.assert_array_equal(got.mean, ref.mean)  # the same sums in the same order


@pytest.mark.parametrize(
    ("env", "asked", "runs"), [("", True, 1), ("", False, 0), ("0", True, 0), ("1", False, 1)]
)
def test_when_the_compiled_moments_run(monkeypatch, env, asked, runs) -> None:
    """Asked for (the streamed fit, from :data:`.compiled.GLM_JIT_ROWS` rows), unless
    ``$PRICELAB_JIT`` says ``0`` / ``1`` (never / always)."""
    from pricelab.elasticity import pool_jit

    calls: list[int] = []
    real = pool_jit.run

    def spy(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(pool_jit, "run", spy)
    monkeypatch.setenv("PRICELAB_JIT", env)
    e, v, lvl, _, _ = _case(1, 1)
    pool_level(e, v, lvl, 9, compiled=asked)
    assert len(calls) == runs


@pytest.mark.parametrize("seed", range(4))
def test_compiled_log_posterior_sums_equal_the_numpy_loop(seed, monkeypatch) -> None:
    """:func:`pooling._log_post` with :mod:`.pool_jit`'s sums: the same numbers as its numpy
    loop, bit for bit (the same additions in the same order, numpy's logarithms), over
    several slices of groups and levels of very different sizes."""
    from pricelab.elasticity.pooling import SLICE, _log_post

    monkeypatch.delenv("PRICELAB_JIT", raising=False)
    rng = np.random.default_rng(seed)
    n, L = 2 * SLICE + 137 * (seed + 1), 3 + 5 * seed
    lvl = np.minimum(rng.geometric(0.3, n) - 1, L - 1)
    lvl[:L] = np.arange(L)  # every level has a member
    e = -2.0 + 0.5 * rng.standard_normal(L)[lvl] + 0.3 * rng.standard_normal(n)
    v = rng.uniform(1e-3, 0.5, n)
    tau = rng.uniform(0.0, 2.0, L)[:, None] * np.linspace(0.0, 1.0, 48)[None, :]
    ref = _log_post(e, v, lvl, L, tau)
    got = _log_post(e, v, lvl, L, tau, compiled=True)
    assert np.isfinite(ref[0]).all()
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_array_equal(b, a)
