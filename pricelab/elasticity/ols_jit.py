"""``ols`` per group compiled with numba: one pass over each group's rows, in registers.

The same fit as :func:`pricelab.elasticity.block_kernels.ols_block` (the numpy reference
it is tested against, to 1e-12): each regressor shifted by the group's first row and
centred on the weighted rows, the in-order Cholesky that drops dependent columns
(:func:`~pricelab.elasticity.block_kernels.masked_cholesky`), the same solves, and the
``nonrobust``, ``HC0``, ``HC1``, ``HC3`` and ``cluster`` variances (leverage-corrected
scores summed in blocks of :data:`~pricelab.elasticity.robust.CLUSTER_WEEKS` weeks, two-way
with the week of the year when a group spans more than a year,
:func:`~pricelab.elasticity.robust.cluster_ss`). ``HAC`` stays on the numpy kernel.

The numpy kernel makes some forty passes over ``(groups × weeks)`` arrays (~110-130 ns per
row for the default six coefficients); this makes two over each group's rows, which stay
in cache (~35-45 ns per row, logarithms included, at 300k × 52 with the default controls
and ``cluster``). Controls of the date (trend, Fourier terms) are read from tables by day,
not as per-row columns. Compiled once per machine and cached (``cache=True``: next to
this module, or numba's user cache directory when that is read-only); imported only by
the ``ols`` paths that use it, so other commands never load numba.
"""

from __future__ import annotations

import math
from typing import Any

import numba as nb
import numpy as np

from .robust import CLUSTER_WEEKS, YEAR_WEEKS

#: sums in any order (vectorised; ~1e-16 relative), fused multiply-adds; no NaN/inf
#: assumptions (NaN and inf still flag a failed fit)
_FAST = {"reassoc", "contract"}
#: variance types this kernel computes (``HAC`` is the numpy kernel's)
SE_CODES = {"nonrobust": 0, "HC0": 1, "HC1": 2, "HC3": 3, "cluster": 4}


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _masked_cholesky(C, L, kp, diag):  # type: ignore[no-untyped-def]
    """:func:`~pricelab.elasticity.block_kernels.masked_cholesky` (``tol`` 1e-10) of one group."""
    p = C.shape[0]
    for j in range(p):
        cjj = C[j, j]
        s = 0.0
        for i in range(j):
            s += L[j, i] ** 2
        s = cjj - s
        kj = not (math.isnan(s) or math.isinf(s)) and cjj > 0 and s > 1e-10 * cjj
        kp[j] = kj
        d = math.sqrt(s) if kj else 1.0
        diag[j] = d
        L[j, j] = d if kj else 0.0
        for i in range(j + 1, p):
            v = 0.0
            for m in range(j):
                v += L[i, m] * L[j, m]
            L[i, j] = (C[i, j] - v) / d if kj else 0.0
        for i in range(j):
            L[i, j] = 0.0


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _solve(L, kp, diag, B, z, x):  # type: ignore[no-untyped-def]
    """:func:`~pricelab.elasticity.block_kernels.cholesky_solve` of one group into ``x``."""
    p, m = B.shape
    for j in range(p):
        for c in range(m):
            acc = 0.0
            for i in range(j):
                acc += L[j, i] * z[i, c]
            z[j, c] = (B[j, c] - acc) / diag[j] if kp[j] else 0.0
    for j in range(p - 1, -1, -1):
        for c in range(m):
            acc = 0.0
            for i in range(j + 1, p):
                acc += L[i, j] * x[i, c]
            x[j, c] = (z[j, c] - acc) / diag[j] if kp[j] else 0.0


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _dot(a, b, T):  # type: ignore[no-untyped-def]
    """``sum_t a_t b_t`` over the first ``T`` rows (vectorised)."""
    s = 0.0
    for t in range(T):
        s += a[t] * b[t]
    return s


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _combine(coef, X, out, T):  # type: ignore[no-untyped-def]
    """``out_t = sum_j coef_j X_jt`` over the first ``T`` rows."""
    for t in range(T):
        out[t] = 0.0
    for j in range(X.shape[0]):
        c = coef[j]
        for t in range(T):
            out[t] += c * X[j, t]


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def _variance(X, Z, a, h, w, xs, T, n, dof, rss, se):  # type: ignore[no-untyped-def]
    """The log-price slope's variance; turns ``a`` (residuals) into the scores."""
    p = X.shape[0]
    if se == 0:
        return rss / dof * xs[0, 1]
    if se >= 3:  # leverage: Z = C^-1 x_t, h_t = 1/n + x_t' Z_t
        for t in range(T):
            h[t] = 0.0
        for c in range(p):
            _combine(xs[c, 1:], X, Z[c], T)
            for t in range(T):
                h[t] += X[c, t] * Z[c, t]
        inv_n = 1.0 / max(n, 1.0)
        for t in range(T):
            ht = (h[t] + inv_n) * (1.0 if w[t] > 0 else 0.0)
            h[t] = min(max(ht, 0.0), 1.0 - 1e-8)
    else:
        _combine(xs[:, 1], X, Z[0], T)
    factor = n / dof if se == 2 else 1.0
    for t in range(T):
        a[t] *= Z[0, t]
    if se >= 3:
        for t in range(T):
            a[t] /= 1.0 - h[t]
    return factor * _dot(a, a, T)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _cluster_ss(a, week, w, T, bs, bu, ys, yu):  # type: ignore[no-untyped-def]
    """:func:`~pricelab.elasticity.robust.cluster_ss` of one group's scores (NaN when fewer
    than two blocks have used rows); ``bs, bu, ys, yu``: scratch for the block and
    week-of-year sums (a larger block buffer is made when a group's weeks need it)."""
    first = np.int64(0)
    last = np.int64(0)
    any_used = False
    for t in range(T):
        if w[t] > 0:
            if not any_used or week[t] < first:
                first = week[t]
            if not any_used or week[t] > last:
                last = week[t]
            any_used = True
    if not any_used:
        return np.nan
    nblk = (last - first) // CLUSTER_WEEKS + 1
    sums, used = (bs, bu) if nblk <= bs.size else (np.empty(nblk), np.empty(nblk, np.bool_))
    sums[:nblk] = 0.0
    used[:nblk] = False
    for t in range(T):
        if w[t] > 0:
            b = (week[t] - first) // CLUSTER_WEEKS
            sums[b] += a[t]
            used[b] = True
    c = 0.0
    ss = 0.0
    for b in range(nblk):
        c += 1.0 if used[b] else 0.0
        ss += sums[b] * sums[b]
    v = c / (c - 1.0) * ss if c > 1 else np.nan
    if last - first >= YEAR_WEEKS:  # two-way: also by week of the year, minus the weeks
        ys[:] = 0.0
        yu[:] = False
        own = 0.0
        for t in range(T):
            if w[t] > 0:
                b = (week[t] - first) % YEAR_WEEKS
                ys[b] += a[t]
                yu[b] = True
                own += a[t] * a[t]
        c2 = 0.0
        ss2 = 0.0
        for b in range(YEAR_WEEKS):
            c2 += 1.0 if yu[b] else 0.0
            ss2 += ys[b] * ys[b]
        v += (c2 / (c2 - 1.0) if c2 > 1 else np.nan) * ss2 - own
    return v


_IN1 = nb.types.Array(nb.float64, 1, "C", readonly=True)  # inputs may be read-only views
_IN2 = nb.types.Array(nb.float64, 2, "C", readonly=True)
_INT = nb.types.Array(nb.int64, 1, "C", readonly=True)
_DAYS = nb.types.Array(nb.int32, 1, "C", readonly=True)
_SIG = nb.void(
    _IN1,  # log price (N,)
    _IN1,  # quantity (N,)
    _IN1,  # log quantity (N,), 0 where quantity <= 0
    _IN2,  # cols (kc, N): per-row controls (promo, sales columns)
    _DAYS,  # days (N,) since 1970-01-01 (unused without dates)
    _IN2,  # tab (kd, nd): day controls (trend, Fourier terms) by day - d0
    nb.int64,  # d0
    _INT,  # src (k,): control j is cols[src[j]] when src[j] >= 0, else tab[-src[j] - 1]
    nb.boolean,  # has_days
    _INT,  # starts (G,)
    _INT,  # counts (G,)
    nb.int64,  # se code
    nb.int64,  # min_obs
    nb.float64[:, ::1],  # out: n, var, rss, tss, smear, mean, spread (G, 7)
    nb.float64[:, ::1],  # out params (G, p + 1)
    nb.boolean[:, ::1],  # out keep (G, p)
    nb.boolean[:, ::1],  # out fitted, ok (G, 2)
)


@nb.njit(_SIG, cache=True, nogil=True, error_model="numpy", fastmath=_FAST)
def ols_groups(
    price,
    qty,
    logq,
    cols,
    days,
    tab,
    d0,
    src,
    has_days,
    starts,
    counts,
    se,
    min_obs,
    res,
    params,
    keep,
    flags,
):  # type: ignore[no-untyped-def]  # noqa: E501
    """Fit every group ``g`` (rows ``starts[g] .. starts[g] + counts[g] - 1``); see module.

    Controls that are functions of the date (``tab``) are looked up by each row's day, the
    same values :func:`~pricelab.elasticity.block_runs.control_sources` gives per row."""
    k = src.size
    p = k + 1
    tmax = 1
    for g in range(starts.size):
        tmax = max(tmax, counts[g])
    X = np.empty((p, tmax))
    Z = np.empty((p, tmax))
    y = np.empty(tmax)
    w = np.empty(tmax)
    a = np.empty(tmax)
    h = np.empty(tmax)
    shift = np.empty(p)
    mx = np.empty(p)
    C = np.empty((p, p))
    L = np.empty((p, p))
    B = np.empty((p, p + 1))
    zs = np.empty((p, p + 1))
    xs = np.empty((p, p + 1))
    kp = np.empty(p, dtype=np.bool_)
    diag = np.empty(p)
    bs, bu = np.empty(tmax // CLUSTER_WEEKS + 2), np.empty(tmax // CLUSTER_WEEKS + 2, np.bool_)
    ys, yu = np.empty(YEAR_WEEKS), np.empty(YEAR_WEEKS, np.bool_)
    week = np.empty(tmax, np.int64)
    for g in range(starts.size):
        s0, T = starts[g], counts[g]
        # rows of the group: regressors shifted by its first row; response, weights
        lp0 = price[s0]
        for t in range(T):
            X[0, t] = price[s0 + t] - lp0
            q = qty[s0 + t]
            w[t] = 1.0 if q > 0 else 0.0
            y[t] = logq[s0 + t]
        shift[0] = lp0
        if has_days:
            for t in range(T):
                week[t] = np.int64(days[s0 + t]) // 7
        for j in range(k):
            if src[j] >= 0:
                col = cols[src[j]]
                c0 = col[s0]
                for t in range(T):
                    X[j + 1, t] = col[s0 + t] - c0
            else:
                row = tab[-src[j] - 1]
                c0 = row[days[s0] - d0]
                for t in range(T):
                    X[j + 1, t] = row[days[s0 + t] - d0] - c0
            shift[j + 1] = c0
        n = _dot(w, w, T)
        my = _dot(y, w, T) / n if n > 0 else 0.0
        for j in range(p):
            mx[j] = _dot(X[j], w, T) / n if n > 0 else 0.0
        # centred on the used rows, unused rows zeroed; cross products
        for t in range(T):
            y[t] = (y[t] - my) * w[t]
        for j in range(p):
            m = mx[j]
            for t in range(T):
                X[j, t] = (X[j, t] - m) * w[t]
        tss = _dot(y, y, T)
        for i in range(p):
            B[i, 0] = _dot(X[i], y, T)
            for j in range(i + 1):
                C[i, j] = _dot(X[i], X[j], T)
                C[j, i] = C[i, j]
        cxx00 = C[0, 0]
        fitted = n >= max(min_obs, 1)
        if not fitted:
            for i in range(p):
                B[i, 0] = 0.0
                for j in range(p):
                    C[i, j] = 0.0
        _masked_cholesky(C, L, kp, diag)
        for i in range(p):
            for j in range(p):
                B[i, j + 1] = 1.0 if i == j else 0.0
        _solve(L, kp, diag, B, zs, xs)  # xs: beta, then C^-1
        _combine(xs[:, 0], X, a, T)
        smear = 0.0
        for t in range(T):
            a[t] = (y[t] - a[t]) * w[t]  # the residual
            smear += math.exp(a[t]) * w[t]
        rss = _dot(a, a, T)
        p_kept = 1.0
        for j in range(p):
            p_kept += 1.0 if kp[j] else 0.0
        dof = n - p_kept
        var = _variance(X, Z, a, h, w, xs, T, n, dof, rss, se)
        if se == 4 and has_days:
            cv = _cluster_ss(a, week, w, T, bs, bu, ys, yu)
            if not math.isnan(cv) and (math.isnan(var) or cv > var):
                var = cv
        finite = not math.isnan(var) and not math.isinf(var)
        icpt = 0.0
        for j in range(p):
            b = xs[j, 0]
            finite = finite and not (math.isnan(b) or math.isinf(b))
            params[g, j + 1] = b if kp[j] else np.nan
            keep[g, j] = kp[j]
            icpt += b * (mx[j] + shift[j])
        params[g, 0] = my - icpt
        res[g, 0] = n
        res[g, 1] = var if dof > 0 else np.nan
        res[g, 2] = rss
        res[g, 3] = tss
        res[g, 4] = smear
        res[g, 5] = mx[0] + shift[0]
        res[g, 6] = cxx00 / n if n > 0 else np.nan
        flags[g, 0] = fitted
        flags[g, 1] = finite and dof > 0


def ols_runs(
    price: np.ndarray,
    qty: np.ndarray,
    cols: np.ndarray,
    days: np.ndarray | None,
    tab: np.ndarray,
    d0: int,
    src: np.ndarray,
    starts: np.ndarray,
    counts: np.ndarray,
    se: str,
    min_obs: int,
    workers: int = 2,
) -> dict[str, np.ndarray]:
    """:func:`~pricelab.elasticity.block_kernels.ols_block`'s results for every group
    (``starts``, ``counts``: rows of each, contiguous) of the rows ``price, qty``; control
    ``j`` is ``cols[src[j]]`` (a per-row column) when ``src[j] >= 0``, else the table row
    ``tab[-src[j] - 1]`` at each row's ``days - d0`` (a function of the date); ``days``
    also gives the cluster weeks (``days // 7``). ``workers`` threads on disjoint groups
    (the kernel releases the GIL)."""
    G, p = starts.size, src.size + 1
    res = np.empty((G, 7))
    params = np.empty((G, p + 1))
    keep = np.empty((G, p), dtype=bool)
    flags = np.empty((G, 2), dtype=bool)
    has_days = days is not None
    q = np.ascontiguousarray(qty, dtype=np.float64)
    args = (
        np.log(price),
        q,
        np.log(np.where(q > 0, q, 1.0)),
        np.ascontiguousarray(cols, dtype=np.float64).reshape(-1, price.size),
        np.ascontiguousarray(days, dtype=np.int32) if has_days else np.zeros(1, np.int32),
        np.ascontiguousarray(tab, dtype=np.float64).reshape(-1, max(tab.shape[-1], 1)),
        int(d0),
        np.ascontiguousarray(src, dtype=np.int64),
        has_days,
    )
    st, ct = starts.astype(np.int64), counts.astype(np.int64)
    code = SE_CODES[se]
    # contiguous ranges of groups with about equal rows per worker
    cut = np.searchsorted(np.cumsum(ct), np.linspace(0, ct.sum(), workers + 1)[1:-1])
    edges = [0, *sorted({int(c) for c in cut}), G] if G else [0, 0]

    def part(a: int, b: int) -> None:
        ols_groups(
            *args, st[a:b], ct[a:b], code, min_obs, res[a:b], params[a:b], keep[a:b], flags[a:b]
        )

    if workers > 1 and len(edges) > 2:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(edges) - 1) as ex:
            list(ex.map(part, edges[:-1], edges[1:]))
    else:
        part(0, G)
    return {
        "n": res[:, 0],
        "params": params,
        "keep": keep,
        "var": res[:, 1],
        "rss": res[:, 2],
        "tss": res[:, 3],
        "smear": res[:, 4],
        "mean": res[:, 5],
        "spread": res[:, 6],
        "fitted": flags[:, 0],
        "ok": flags[:, 1],
    }


def fit_runs(runs: Any, se: str, min_obs: int) -> dict[str, np.ndarray]:
    """:func:`ols_runs` on a :class:`~pricelab.elasticity.block_runs.Runs`: its per-row
    controls as columns, its controls of the date as tables over the date range (each
    value computed as the row's own would be)."""
    from .block_runs import ByDay

    N = runs.price.size
    days = runs.days
    per_row = [f for _, f in runs.srcs if not isinstance(f, ByDay)]
    by_day = [f for _, f in runs.srcs if isinstance(f, ByDay)]
    d0, tab = 0, np.zeros((0, 1))
    if by_day and N:
        assert days is not None  # controls of the date come with dates (control_sources)
        d0 = int(days.min())
        span = np.arange(d0, int(days.max()) + 1, dtype=days.dtype)
        tab = np.stack([f.f(span) for f in by_day])
    cols = np.empty((len(per_row), N))
    for j, f in enumerate(per_row):
        cols[j] = f(slice(None))
    src = np.empty(len(runs.srcs), dtype=np.int64)
    a = b = 0
    for j, (_, f) in enumerate(runs.srcs):
        if isinstance(f, ByDay):
            src[j], b = -b - 1, b + 1
        else:
            src[j], a = a, a + 1
    return ols_runs(
        runs.price, runs.qty, cols, days, tab, d0, src, runs.starts, runs.counts, se, min_obs
    )


__all__ = ["SE_CODES", "fit_runs", "ols_groups", "ols_runs"]
