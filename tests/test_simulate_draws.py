"""Aggregate intervals: near-normal group sums drawn as one variate per group and draw.

The reference is brute force: every row drawn (``exp(a z)`` per row and draw), many draws.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from pricelab.simulate import aggregate as agg_mod
from pricelab.simulate.aggregate import cornish_fisher, draw_sums, near_normal_groups


def _brute(group, a, w, n_groups, draws, seed):
    rng = np.random.default_rng(seed)
    out = np.zeros((draws, w.shape[1], n_groups))
    for s in range(0, a.size, 100):
        z = rng.standard_normal((draws, min(a.size, s + 100) - s))
        e = np.exp(z * a[s : s + 100])
        for g in np.unique(group[s : s + 100]):
            m = group[s : s + 100] == g
            out[:, :, g] += e[:, m] @ w[s : s + 100][m]
    return out


def _rows(n, amax, seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.2, 1.0, n) * amax * rng.choice([-1, 1], n)
    # units, revenue (positive) and profit (either sign) weights
    w = np.column_stack([rng.lognormal(0, 1, n), 50 * rng.lognormal(0, 1, n), rng.normal(1, 2, n)])
    return a, w


@pytest.mark.parametrize(("n", "amax"), [(600, 0.15), (100, 0.05), (3, 0.01)])
def test_cornish_fisher_quantiles_match_brute_force(n, amax):
    a, w = _rows(n, amax, seed=n)
    group = np.zeros(n, dtype=np.int64)
    ok, cum = near_normal_groups(group, a, w, 1)
    assert ok[0]
    exact = _brute(group, a, w, 1, draws=30_000, seed=1)
    q = np.quantile(exact, [0.05, 0.95], axis=0)[:, :, 0]
    cf = cornish_fisher(norm.ppf([0.05, 0.95])[:, None, None], cum)[:, :, 0]
    sd = np.sqrt(cum[1, :, 0])
    # 30k draws estimate a 5% quantile to ~0.013 sd; the expansion's error is far smaller
    assert (np.abs(q - cf) / sd).max() < 0.04
    # the exact mean and variance of the sum
    assert np.allclose(exact.mean(axis=0)[:, 0], cum[0, :, 0], rtol=2e-3)
    assert np.allclose(exact.var(axis=0)[:, 0], cum[1, :, 0], rtol=0.03)


def test_skewed_groups_are_drawn_row_by_row():
    # one row with a wide spread: a log-normal with sigma 0.4 is far from normal
    a = np.array([0.4, 0.01, 0.01])
    w = np.ones((3, 3))
    ok, _ = near_normal_groups(np.array([0, 1, 1]), a, w, 3)
    assert ok.tolist() == [False, True, False]  # group 2 has no rows: nothing to draw
    # spreads whose cumulants overflow (a huge price change): drawn row by row, no warning
    # (the suite turns warnings into errors)
    ok, _ = near_normal_groups(np.zeros(2, dtype=np.int64), np.array([30.0, 40.0]), w[:2], 1)
    assert not ok[0]
    # the skewed group's draws are the exact log-normal: quantiles exp(+-1.645 * 0.4)
    sums = draw_sums(np.array([0]), np.array([0.4]), np.ones((1, 1)), 1, draws=40_000, seed=0)
    lo, hi = np.quantile(sums[:, 0, 0], [0.05, 0.95])
    assert lo == pytest.approx(np.exp(-1.6448536 * 0.4), rel=0.01)
    assert hi == pytest.approx(np.exp(1.6448536 * 0.4), rel=0.01)


def test_mixed_groups_match_all_rows_drawn(monkeypatch):
    """Large near-normal groups and small skewed ones: the per-group and rolled-up
    quantiles agree with drawing every row (the code path with the shortcut off)."""
    sizes = [800, 300, 2, 1]
    group = np.repeat(np.arange(4), sizes)
    a, w = _rows(group.size, 0.15, seed=7)
    a[group >= 2] = 0.5
    ok, _ = near_normal_groups(group, a, w, 4)
    assert ok.tolist() == [True, True, False, False]
    roll = np.column_stack([np.eye(4), np.ones(4)])  # each group and the total
    fast = draw_sums(group, a, w, 4, draws=10_000, seed=3) @ roll
    monkeypatch.setattr(agg_mod, "NEAR_NORMAL", -1.0)  # every group drawn row by row
    slow = draw_sums(group, a, w, 4, draws=10_000, seed=4) @ roll
    qf = np.quantile(fast, [0.05, 0.5, 0.95], axis=0)
    qs = np.quantile(slow, [0.05, 0.5, 0.95], axis=0)
    sd = slow.std(axis=0)
    # 10k draws each: two estimates of a quantile differ by ~0.03 sd (more in the skewed
    # one-row groups' tails) by chance
    assert (np.abs(qf - qs) / sd).max() < 0.12


def test_same_seed_same_sums_other_seed_other_sums():
    group = np.repeat(np.arange(3), [3000, 2, 500])
    a, w = _rows(group.size, 0.1, seed=2)
    x = draw_sums(group, a, w, 3, draws=200, seed=11)
    assert np.array_equal(x, draw_sums(group, a, w, 3, draws=200, seed=11))
    assert not np.array_equal(x, draw_sums(group, a, w, 3, draws=200, seed=12))
