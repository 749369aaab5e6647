"""Per-row closed forms for constant-elasticity demand (optimization.md 1, 2, 5b).

Every row's Lagrangian term is g(p) = (p - k) q0 (p / p0) ** e with an effective unit
cost k (cost minus volume multipliers plus stock multipliers). g has at most one
stationary point on p > 0, p_s = e k / (1 + e); it is the maximum when e < -1 and
k > 0 and a minimum when -1 < e < 0 and k < 0. So the global maximum of g on [lo, hi]
is the best of {lo, hi, clip(p_s, lo, hi)}: exact for any elasticity and cost.
"""

from __future__ import annotations

import numpy as np

from pricelab.demand.curves import ConstantElasticity


def unconstrained_price(k: np.ndarray, e: np.ndarray) -> np.ndarray:
    """p* = k e / (1 + e) where it is a maximum; inf where g keeps rising; 0 where it falls."""
    k = np.asarray(k, dtype=float)
    e = np.asarray(e, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ps = k * e / (1.0 + e)
    return np.where(e < -1, np.where(k > 0, ps, 0.0), np.inf)


def term(p: np.ndarray, k: np.ndarray, p0: np.ndarray, q0: np.ndarray, e: np.ndarray) -> np.ndarray:
    """g(p) = (p - k) q0 (p / p0) ** e, with the limit at p = inf (0 if e < -1)."""
    return ConstantElasticity(p0, q0, e).margin_term(p, k)


def argmax_interval(
    lo: np.ndarray, hi: np.ndarray, k: np.ndarray, p0: np.ndarray, q0: np.ndarray, e: np.ndarray
) -> np.ndarray:
    """Global maximiser of g on [lo, hi], vectorised (arrays broadcast together)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ps = k * e / (1.0 + e)
    ps = np.where(np.isfinite(ps) & (ps > 0), ps, lo)
    mid = np.clip(ps, lo, hi)
    cands = np.stack(np.broadcast_arrays(lo, hi, mid))
    vals = term(cands, k, p0, q0, e)
    vals = np.where(np.isnan(vals), -np.inf, vals)
    best = np.argmax(vals, axis=0)
    return np.take_along_axis(cands, best[None], axis=0)[0]


def clipped_optimum(
    unit_cost: np.ndarray, e: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> np.ndarray:
    """The textbook formula p = clip(c e / (1 + e), lo, hi) for elastic rows (e < -1)."""
    return np.clip(np.asarray(unit_cost) * e / (1.0 + e), lo, hi)
