"""Per-row maximiser with a linear price penalty: the rows' problem under a budget multiplier.

With an average-change budget priced out (multiplier theta, dimensionless) every row
maximises

    g(p) = (p - k) q0 (p / p0) ** e - theta q0 p            on [lo, hi]

(k the effective unit cost, see closed_form.py). Its derivative is q0 (h(p) - theta) with
h(p) = (p / p0) ** e (1 + e - e k / p), and dh/dp = e x^e / p^2 ((1 + e) p - (e - 1) k), so
h is monotone on at most two pieces split at p_m = (e - 1) k / (1 + e). A local maximum
of g is a root of h = theta where h decreases; there is at most one:

- theta > 0, e < -1, k > 0: one root in (0, p_s), p_s = e k / (1 + e) (the concave case of
  optimization.md 1: -theta p(q) is concave in quantity space);
- theta > 0, -1 <= e < 0, k >= 0: one root in (0, inf) (section 2: concave in price);
- theta > 0, -1 < e < 0, k < 0: a root in (p_m, inf) when h(p_m) > theta;
- theta < 0, e < -1, k > 0: a root in (p_s, p_m) when h(p_m) < theta (not concave: the
  other candidate is the upper limit, g rising without bound beyond p_m);
- otherwise g is monotone or quasi-convex on each piece.

So the global maximum on [lo, hi] is the best of {lo, hi, root clipped into [lo, hi]}:
exact for every sign of theta and k. The root is found for all rows at once by safeguarded
Newton on log(sign(theta) h) - log|theta| in log price (nearly linear: one step when k = 0),
bracketed by the row's limits and the branch ends, with no per-row Python loop.
"""

from __future__ import annotations

import numpy as np

from pricelab.optimize.closed_form import argmax_interval, term

MAX_NEWTON = 80
EXPAND = 40
YTOL = 1e-13  # tolerance on log price


def penalised_term(
    p: np.ndarray, k: np.ndarray, theta: np.ndarray, p0: np.ndarray, q0: np.ndarray, e: np.ndarray
) -> np.ndarray:
    """g(p) = (p - k) q0 (p / p0) ** e - theta q0 p, with its limits at p = inf."""
    base = term(p, k, p0, q0, e)
    theta = np.broadcast_to(theta, np.shape(base))
    with np.errstate(invalid="ignore", over="ignore"):
        pen = theta * q0 * p
    inf = np.isinf(p) & (theta != 0)
    return np.where(
        inf, np.where(theta > 0, -np.inf, np.inf), np.where(theta == 0, base, base - pen)
    )


def _psi(y, k, theta, sig, lp0, e):
    """Increasing function whose zero is the stationary point: -sig (log(sig h) - log|theta|)."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        ek = e * k * np.exp(-y)
        inner = sig * (1.0 + e - ek)
        psi = e * (y - lp0) + np.log(inner) - np.log(np.abs(theta))
        dpsi = e + ek / (1.0 + e - ek)
    return -sig * psi, -sig * dpsi


def stationary_max(
    lo: np.ndarray,
    hi: np.ndarray,
    k: np.ndarray,
    theta: np.ndarray,
    p0: np.ndarray,
    e: np.ndarray,
    guess: np.ndarray | None = None,
) -> np.ndarray:
    """The local maximiser of g clipped into [lo, hi] (lo where g has none); 1-D arrays."""
    with np.errstate(all="ignore"):
        return _stationary_max(lo, hi, k, theta, p0, e, guess)


def _stationary_max(lo, hi, k, theta, p0, e, guess):
    sig = np.sign(theta)
    with np.errstate(divide="ignore", invalid="ignore"):
        ps = e * k / (1.0 + e)
        pm = (e - 1.0) * k / (1.0 + e)
    case_a = (sig > 0) & (e < -1) & (k > 0)
    case_b = (sig > 0) & (e >= -1) & (k >= 0) & ~((e == -1) & (k == 0))
    case_c = (sig > 0) & (e > -1) & (k < 0)
    case_d = (sig < 0) & (e < -1) & (k > 0)
    has = case_a | case_b | case_c | case_d
    bl = np.where(case_c, pm, np.where(case_d, ps, 0.0))
    br = np.where(case_a, ps, np.where(case_d, pm, np.inf))
    a, z = np.maximum(bl, lo), np.minimum(br, hi)
    has &= a < z
    out = lo.copy()
    if not has.any():
        return out
    idx = np.flatnonzero(has)
    k, theta, sig, e, a, z = k[idx], theta[idx], sig[idx], e[idx], a[idx], z[idx]
    lp0 = np.log(p0[idx])
    with np.errstate(divide="ignore"):
        yl, yr = np.log(a), np.log(z)
    # sign of f at the ends: the branch end p_s is a zero of h (f = -inf on the left of
    # case d, +inf on the right of case a); open ends have the limits -inf / +inf
    fl = _psi(np.where(np.isfinite(yl), yl, 0.0), k, theta, sig, lp0, e)[0]
    fr = _psi(np.where(np.isfinite(yr), yr, 0.0), k, theta, sig, lp0, e)[0]
    fl = np.where(~np.isfinite(yl) | (case_d[idx] & (a == bl[idx])), -np.inf, fl)
    fr = np.where(~np.isfinite(yr) | (case_a[idx] & (z == br[idx])), np.inf, fr)
    res = np.where(fl >= 0, yl, yr)  # root left of a (g falls on [a, z]) or right of z
    act = (fl < 0) & (fr > 0)
    # close open ends by expansion from the finite one (or from log p0)
    step = np.ones(idx.size)
    for _ in range(EXPAND):
        open_ = act & (~np.isfinite(yl) | ~np.isfinite(yr))
        if not open_.any():
            break
        both = open_ & ~np.isfinite(yl) & ~np.isfinite(yr)
        t = np.where(both, lp0, np.where(np.isfinite(yl), yl + step, yr - step))
        ft = _psi(t, k, theta, sig, lp0, e)[0]
        yl = np.where(open_ & (ft < 0), t, yl)
        yr = np.where(open_ & (ft >= 0), t, yr)
        step = np.where(open_ & ~both, 2 * step, step)
    act &= np.isfinite(yl) & np.isfinite(yr)
    y = 0.5 * (yl + yr)
    if guess is not None:
        gy = np.log(np.where(guess[idx] > 0, guess[idx], 1.0))
        y = np.where((gy > yl) & (gy < yr), gy, y)
    ia = np.flatnonzero(act)  # Newton on the rows still moving only
    for _ in range(MAX_NEWTON):
        if not ia.size:
            break
        yi, li, ri = y[ia], yl[ia], yr[ia]
        f, df = _psi(yi, k[ia], theta[ia], sig[ia], lp0[ia], e[ia])
        li = np.where(f < 0, yi, li)
        ri = np.where(f >= 0, yi, ri)
        yn = yi - f / df
        bad = ~np.isfinite(yn) | (yn <= li) | (yn >= ri)
        yn = np.where(bad, 0.5 * (li + ri), yn)
        yn = np.where(f == 0, yi, yn)
        tol = YTOL * np.maximum(1.0, np.abs(yi))
        done = (np.abs(yn - yi) <= tol) | (ri - li <= tol)
        y[ia], yl[ia], yr[ia] = yn, li, ri
        ia = ia[~done]
    res = np.where((fl < 0) & (fr > 0), y, res)
    out[idx] = np.clip(np.exp(res), a, z)
    return out


def argmax_penalised(
    lo: np.ndarray,
    hi: np.ndarray,
    k: np.ndarray,
    theta: np.ndarray | None,
    p0: np.ndarray,
    q0: np.ndarray,
    e: np.ndarray,
    guess: np.ndarray | None = None,
) -> np.ndarray:
    """Global maximiser of g on [lo, hi], vectorised (arrays broadcast together).

    ``theta`` None or all zero is the closed form (:func:`argmax_interval`); ``guess``
    (e.g. the previous response) only speeds up the Newton iterations.
    """
    if theta is None or not np.any(theta):
        return argmax_interval(lo, hi, k, p0, q0, e)
    arrs = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (lo, hi, k, theta, p0, q0, e)))
    shape = arrs[0].shape
    lo_, hi_, k_, th, p0_, q0_, e_ = (x.ravel() for x in arrs)
    g = None if guess is None else np.broadcast_to(guess, shape).ravel()
    zero = th == 0
    if zero.all():
        mid = argmax_interval(lo_, hi_, k_, p0_, q0_, e_)
    else:
        mid = stationary_max(lo_, hi_, k_, th, p0_, e_, g)
        if zero.any():  # rows outside every budget: the closed form
            z = np.flatnonzero(zero)
            mid[z] = argmax_interval(lo_[z], hi_[z], k_[z], p0_[z], q0_[z], e_[z])

    def value(p: np.ndarray) -> np.ndarray:
        v = penalised_term(p, k_, th, p0_, q0_, e_)
        return np.where(np.isnan(v), -np.inf, v)

    # the first best of (lo, hi, mid), as argmax over the stacked candidates would pick
    v_lo, v_hi, v_mid = value(lo_), value(hi_), value(mid)
    best = np.where(v_hi > v_lo, hi_, lo_)
    best = np.where(v_mid > np.maximum(v_lo, v_hi), mid, best)
    return best.reshape(shape)
