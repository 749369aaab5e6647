"""Elasticity draws from each estimate's sampling distribution (for --draws / --risk)."""

from __future__ import annotations

import numpy as np

#: draws are truncated below this value: a non-negative elasticity has no finite optimum
MAX_DRAW = -0.05


def elasticity_draws(
    elasticity: np.ndarray, std_error: np.ndarray, n_draws: int, *, seed: int = 0
) -> np.ndarray:
    """Sample elasticities e_s ~ Normal(elasticity, std_error), truncated at ``MAX_DRAW``.

    Parameters
    ----------
    elasticity, std_error : ndarray, shape (n,)
        Point estimates and their standard errors (NaN std_error = no uncertainty).
    n_draws : int
        Number of draws.
    seed : int
        Seed of numpy's default generator, so plans are reproducible.

    Returns
    -------
    ndarray, shape (n_draws, n)
        Draws are resampled (not clipped) while above ``MAX_DRAW``, up to 20 times,
        then clipped, so the draw distribution is the truncated normal.
    """
    e = np.asarray(elasticity, dtype=float)
    se = np.nan_to_num(np.asarray(std_error, dtype=float), nan=0.0)
    rng = np.random.default_rng(seed)
    out = e + se * rng.standard_normal((n_draws, e.size))
    for _ in range(20):
        bad = out > MAX_DRAW
        if not bad.any():
            break
        out[bad] = (e + se * rng.standard_normal((n_draws, e.size)))[bad]
    return np.minimum(out, MAX_DRAW)
