"""The posterior moments of :mod:`.pooling` compiled with numba: one group at a time.

:func:`pricelab.elasticity.pooling._posterior` averages each group's moments given ``tau``
over the ``tau`` grid one grid point at a time, vectorised over the groups: some twenty
passes over ``n``-long arrays per grid point (gathers of the level's values included) and,
with shared weekly shocks, :meth:`.robust.Shared.column` per grid point. Here the same
formulas run per group and grid point with the group's values in registers: the same
operations in the same order, the grid points summed in the same order (only the dot
product of a group's weekly sums with its level's back-projection, a few terms, may round
differently). The numpy loop stays the reference (``PRICELAB_JIT=0``, or numba missing)
and the tests compare the two.

Compiled once per machine and cached (``cache=True``); imported only when ``hierarchical``
pools a big fit (:data:`.compiled.GLM_JIT_ROWS`), so other commands never load numba.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True, error_model="numpy")
def posterior_moments(  # type: ignore[no-untyped-def]
    e, v, lvl, p, mu, t2, vmu0, shared, order, a, back, ss, sw, f, cross_mu, mean, second, prior
):
    """``mean``, ``second`` (moment) and ``prior`` weight of every group (filled in).

    ``e, v, lvl`` per group, ``p, mu, t2, vmu0 (L, K)`` per level and grid point; with
    ``shared``, :class:`~pricelab.elasticity.robust.Shared`'s arrays: ``order`` (the
    groups in level order), ``a (n, nw)`` and ``ss`` in that order, ``back (L, K, nw)``,
    ``sw, cross_mu (L, K)`` and ``f (L,)``.
    """
    n = e.size
    K = t2.shape[1]
    nw = a.shape[1]
    for i in range(n):
        j = order[i] if shared else i
        lv = lvl[j]
        vj, ej = v[j], e[j]
        m1 = 0.0
        m2 = 0.0
        pr = 0.0
        for k in range(K):
            tk, mk = t2[lv, k], mu[lv, k]
            B = tk / (tk + vj)
            m = mk + B * (ej - mk)
            c = 1.0 - B
            s = B * vj + c * c * vmu0[lv, k]
            if shared:
                om = 1.0 / (vj + tk) / sw[lv, k]
                aA = 0.0
                for w in range(nw):
                    aA += a[i, w] * back[lv, k, w]
                y = f[lv] * (aA - om * ss[i])
                z = c * c * cross_mu[lv, k] + 2 * B * c * y
                if z < 0.0:
                    z = 0.0
                s += z
            pk = p[lv, k]
            m1 += pk * m
            m2 += pk * (s + m * m)
            pr += pk * c
        mean[j] = m1
        second[j] = m2
        prior[j] = pr


@nb.njit(cache=True, nogil=True, error_model="numpy")
def level_sums(e, v, lvl, tau, size, sw, swe):  # type: ignore[no-untyped-def]
    """:func:`~pricelab.elasticity.pooling._log_post`'s first sums, added into ``sw, swe``.

    The same terms as the numpy loop, ``w = 1 / (v + tau²)`` and ``w e``, summed per level
    and grid point in the groups' order within each slice of ``size`` groups (what
    ``np.bincount`` does), each slice's sums then added to the totals (what ``+=`` does):
    the same operations in the same order, the same numbers.
    """
    n = e.size
    L, K = tau.shape
    part = np.zeros((L, K))
    part2 = np.zeros((L, K))
    for s0 in range(0, max(n, 1), size):
        part[:] = 0.0
        part2[:] = 0.0
        for i in range(s0, min(s0 + size, n)):
            lv = lvl[i]
            vi, ei = v[i], e[i]
            for k in range(K):
                t = tau[lv, k]
                w = 1.0 / (vi + t * t)
                part[lv, k] += w
                part2[lv, k] += w * ei
        sw += part
        swe += part2


@nb.njit(cache=True, nogil=True, error_model="numpy")
def slice_weights(v, lvl, tau, s0, w):  # type: ignore[no-untyped-def]
    """``w (size, K)``: ``1 / (v + tau²)`` of the groups ``s0 ..`` (as the numpy loop)."""
    K = tau.shape[1]
    for r in range(w.shape[0]):
        vi, lv = v[s0 + r], lvl[s0 + r]
        for k in range(K):
            t = tau[lv, k]
            w[r, k] = 1.0 / (vi + t * t)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def slice_q(e, lvl, mu, w, logw, s0, q):  # type: ignore[no-untyped-def]
    """Add the slice's ``w (e - mu)² - log w`` per level and grid point into ``q``: summed
    in the groups' order, then added (``logw`` from numpy: its ``log`` is the loop's)."""
    L, K = mu.shape
    part = np.zeros((L, K))
    for r in range(w.shape[0]):
        lv, ei = lvl[s0 + r], e[s0 + r]
        for k in range(K):
            d = ei - mu[lv, k]
            part[lv, k] += w[r, k] * (d * d) - logw[r, k]
    q += part


def run(
    e: np.ndarray,
    v: np.ndarray,
    lvl: np.ndarray,
    p: np.ndarray,
    mu: np.ndarray,
    t2: np.ndarray,
    vmu0: np.ndarray,
    shared: object | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`posterior_moments` on :func:`~pricelab.elasticity.pooling._posterior`'s
    arguments: ``(mean, second moment, prior weight)`` per group."""
    n = e.size
    kernel: Callable[..., None] = posterior_moments
    mean, second, prior = np.empty(n), np.empty(n), np.empty(n)
    f64 = [np.ascontiguousarray(x, dtype=np.float64) for x in (e, v, p, mu, t2, vmu0)]
    lv = np.ascontiguousarray(lvl, dtype=np.int64)
    if shared is None:
        none1, none2 = np.zeros(1), np.zeros((1, 1))
        extra = (np.zeros(1, dtype=np.int64), none2, np.zeros((1, 1, 1)), none1, none2, none1)
        kernel(*f64[:2], lv, *f64[2:], False, *extra, none2, mean, second, prior)
    else:
        s: Any = shared
        arrays = (s.order, s.a, s.back, s.ss, s.sw, s.f, s.cross_mu)
        order, a, back, ss, sw, f, cm = (np.ascontiguousarray(x) for x in arrays)
        kernel(*f64[:2], lv, *f64[2:], True, order, a, back, ss, sw, f, cm, mean, second, prior)
    return mean, second, prior
