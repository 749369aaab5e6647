"""Pick one of a pool's two candidate paths, keeping every sell-through target met."""

from __future__ import annotations

import numpy as np

from pricelab.errors import SolverError
from pricelab.markdown.fluid import FluidOutcome


def choose_and_repair(
    a: FluidOutcome, b: FluidOutcome, mu_pool: np.ndarray, of_pool: np.ndarray, units: np.ndarray
) -> np.ndarray:
    """True where pool p takes candidate b.

    Each pool takes the candidate with the higher Lagrangian value (value + mu * units sold).
    A target still short then moves the pools that sell more under the other candidate,
    cheapest value lost per extra unit first (one sort per target, no loop over pools).
    """
    score_a = a.value + mu_pool * a.sold
    score_b = b.value + mu_pool * b.sold
    pick_b = score_b > score_a
    for g in range(len(units)):
        sel = of_pool == g
        sold = np.where(pick_b, b.sold, a.sold)[sel].sum()
        short = units[g] - sold
        if short <= 1e-9 * max(units[g], 1.0):
            continue
        idx = np.nonzero(sel)[0]
        extra = np.where(pick_b[idx], a.sold[idx] - b.sold[idx], b.sold[idx] - a.sold[idx])
        loss = np.where(pick_b[idx], b.value[idx] - a.value[idx], a.value[idx] - b.value[idx])
        ok = extra > 0
        idx, extra, loss = idx[ok], extra[ok], loss[ok]
        order = np.argsort(loss / extra, kind="stable")
        cum = np.cumsum(extra[order])
        k = int(np.searchsorted(cum, short * (1 - 1e-12))) + 1
        if k > len(order) and (not len(cum) or cum[-1] < short * (1 - 1e-6)):
            raise SolverError(f"could not meet the sell-through target of target {g}")
        flip = idx[order[:k]]
        pick_b[flip] = ~pick_b[flip]
    return pick_b


def valid_paths(path: np.ndarray, min_weeks: int, *, monotone: bool = True) -> np.ndarray:
    """(R,) True where a path never goes up (if monotone) and changes no sooner than
    min_weeks apart."""
    full = np.concatenate([np.zeros((path.shape[0], 1), dtype=path.dtype), path], axis=1)
    step = np.diff(full.astype(np.int16), axis=1)
    ok = (step >= 0).all(axis=1) if monotone else np.ones(path.shape[0], dtype=bool)
    if min_weeks > 1:
        t_len = path.shape[1]
        changed = step != 0
        last = np.full(path.shape[0], -(10**6))
        for t in range(t_len):
            c = changed[:, t]
            ok &= ~c | (t - last >= min_weeks)
            last = np.where(c, t, last)
    return np.asarray(ok)
