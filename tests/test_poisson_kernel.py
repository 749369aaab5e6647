"""``poisson_block`` leaves its arguments as they were: a second call on the same arrays
gives the same numbers as the first (it used to shift ``X`` in place by each group's first
row, so a second call got other intercepts and means)."""

from __future__ import annotations

import numpy as np
import pytest

from pricelab.elasticity.poisson_kernel import poisson_block

NAMES = ["log_price", "_c_promo", "_c_trend"]


def _block(g: int = 24, T: int = 52) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log prices, promo weeks and a trend far from 0 (the shift matters); group 0 never
    sells on promotion (separated by the promo control: the refit without those weeks)."""
    rng = np.random.default_rng(7)
    logp = np.log(rng.uniform(2.0, 3.0, (g, T)))
    promo = (rng.uniform(size=(g, T)) < 0.25).astype(float)
    trend = np.broadcast_to(3.0 + np.arange(T) / 52.0, (g, T))
    X = np.ascontiguousarray(np.stack([logp, promo, trend], axis=1))
    y = rng.poisson(np.exp(4.0 - 1.8 * logp + 0.4 * promo + 0.1 * trend)).astype(float)
    y[0, promo[0] > 0] = 0.0
    w = np.ones((g, T))
    w[1, :10] = 0.0  # a group with padding weeks
    return X, y, w


@pytest.mark.parametrize("compiled", [False, True])
def test_a_second_call_on_the_same_arrays_gives_the_same_numbers(compiled: bool) -> None:
    if compiled:
        pytest.importorskip("numba")
    X, y, w = _block()
    before = [a.copy() for a in (X, y, w)]
    first = poisson_block(X, y, w, se="HC1", names=NAMES, compiled=compiled)
    for a, b in zip((X, y, w), before, strict=True):
        np.testing.assert_array_equal(a, b)  # the arguments are unchanged
    again = poisson_block(X, y, w, se="HC1", names=NAMES, compiled=compiled)
    fresh = poisson_block(before[0].copy(), y, w, se="HC1", names=NAMES, compiled=compiled)
    assert first["separated"][0] and first["rescued"][0]  # the refit path ran
    assert set(again) == set(first) == set(fresh)
    for k in first:
        np.testing.assert_array_equal(again[k], first[k], err_msg=k)
        np.testing.assert_array_equal(fresh[k], first[k], err_msg=k)
    # the shift is undone: the mean log price is the data's, not the shifted one's
    np.testing.assert_allclose(first["mean"], (X[:, 0] * w).sum(1) / w.sum(1), rtol=1e-12)
