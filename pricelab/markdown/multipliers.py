"""Each stock pool's multiplier: the minimum of its Lagrangian dual, all pools at once.

For a pool with stock ``S`` and per-unit multiplier ``nu``, the dual
``L(nu) = nu * S + sum_r DP_r(nu)`` (``DP_r`` the row's clipped DP value at weight
``w - nu``) is convex and piecewise linear in ``nu``, with subgradient ``S - U(nu)``
(``U`` the clipped units of the DP's paths). :func:`pool_multipliers` minimises it by
Kelley's cutting planes in one dimension: from a bracket ``a < b`` whose subgradients
have opposite signs, the next point is where the two lines cross; where ``L`` there is on
the lines, that point is the minimum (a kink: the path on either side of it is optimal
there). A piecewise-linear function has few pieces near its minimum, so this takes a
handful of DP passes where bisection takes one per bit; only pools still open are solved
again. :func:`bisect_pools` is the bisection it replaces (kept as the reference).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the solver passes its row DP
    from pricelab.markdown.solver import _Rows

METHOD = "kelley"  # or "bisect": the reference (tests compare the two)
BISECT_ITERS = 16
KELLEY_ITERS = 40
KINK_TOL = 1e-10  # relative distance of L above the cutting-plane model at a minimum
SIDE = 1e-9  # the bracket returned around a minimum: nu* -+ SIDE * max(|nu*|, 1)


def _dual(
    dp: _Rows, pool: np.ndarray, stock: np.ndarray, act: np.ndarray, nu: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(L, U) at ``nu`` for the pools where ``act`` (values elsewhere are 0)."""
    n = len(stock)
    rows = np.nonzero(act[pool])[0]
    _, val, units = dp.solve(rows, dp.w0[rows] - nu[pool[rows]][:, None])
    lag = nu * stock + np.bincount(pool[rows], weights=val, minlength=n)
    return lag, np.bincount(pool[rows], weights=units, minlength=n)


def _lower_end(
    dp: _Rows, pool: np.ndarray, stock: np.ndarray, binding: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A multiplier low enough that each binding pool's clipped units exceed its stock:
    (nu, L, U) there."""
    lo = -np.maximum(np.abs(hi), 1.0)
    lag, units = _dual(dp, pool, stock, binding, lo)
    for _ in range(12):
        short = binding & (units <= stock)
        if not short.any():
            break
        lo[short] *= 4.0
        lag_s, units_s = _dual(dp, pool, stock, short, lo)
        lag, units = np.where(short, lag_s, lag), np.where(short, units_s, units)
    return lo, lag, units


def pool_multipliers(
    dp: _Rows, pool: np.ndarray, stock: np.ndarray, binding: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Bracket [lo, hi] of each binding pool's dual minimiser ``nu*``: ``nu* -+`` a relative
    1e-9 where the cutting planes closed, else the last bracket.

    ``hi`` is at least every weight of the pool's rows (the DP sells nothing there).
    """
    a, la, ua = _lower_end(dp, pool, stock, binding, hi)
    ga = stock - ua
    b = hi.astype(float).copy()
    lb, gb = b * stock, stock.astype(float).copy()  # nothing sold at or above every weight
    lo, up = a.copy(), b.copy()
    active = binding & (ga < 0)
    for _ in range(KELLEY_ITERS):
        if not active.any():
            break
        den = np.where(active, ga - gb, -1.0)
        c = np.where(active, (lb - la + ga * a - gb * b) / den, a)
        c = np.clip(c, a, b)
        lc, uc = _dual(dp, pool, stock, active, c)
        gc = stock - uc
        model = np.maximum(la + ga * (c - a), lb + gb * (c - b))
        done = active & ((lc - model <= KINK_TOL * np.maximum(np.abs(lc), 1.0)) | (gc == 0))
        side = SIDE * np.maximum(np.abs(c), 1.0)
        lo = np.where(done, c - side, lo)
        up = np.where(done, c + side, up)
        left = active & ~done & (gc < 0)
        right = active & ~done & (gc >= 0)
        a, la, ga = np.where(left, c, a), np.where(left, lc, la), np.where(left, gc, ga)
        b, lb, gb = np.where(right, c, b), np.where(right, lc, lb), np.where(right, gc, gb)
        active &= ~done
    lo = np.where(active, a, lo)
    up = np.where(active, b, up)
    return lo, up


def bisect_pools(
    dp: _Rows, pool: np.ndarray, stock: np.ndarray, binding: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Bracket [lo, hi] of each binding pool's nu* by bisection on the clipped units
    (``BISECT_ITERS`` DP passes): the reference for :func:`pool_multipliers`."""
    n = len(stock)
    lo, _, _ = _lower_end(dp, pool, stock, binding, hi)
    active = binding.copy()
    for _ in range(BISECT_ITERS):
        active &= (hi - lo) > 1e-10 * np.maximum(1.0, np.abs(hi))
        if not active.any():
            break
        rows = np.nonzero(active[pool])[0]
        mid = 0.5 * (lo + hi)
        units = np.bincount(
            pool[rows], weights=dp.clipped_units(rows, mid[pool[rows]]), minlength=n
        )
        over = active & (units > stock)
        lo = np.where(over, mid, lo)
        hi = np.where(active & ~over, mid, hi)
    return lo, hi


def find_multipliers(
    dp: _Rows, pool: np.ndarray, stock: np.ndarray, binding: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`pool_multipliers`, or :func:`bisect_pools` when ``METHOD`` is "bisect"."""
    fn = bisect_pools if METHOD == "bisect" else pool_multipliers
    return fn(dp, pool, stock, binding, hi)
