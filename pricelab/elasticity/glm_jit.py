"""The Poisson IRLS loops of the block kernels compiled with numba: one group at a time.

:func:`pricelab.elasticity.poisson_kernel.poisson_block` (each group's own fit) and
:func:`pricelab.elasticity.refit.refit_block` (the hierarchical refit with the slope held)
iterate Newton steps on ``(g, m, T)`` blocks: each iteration of the numpy loops makes some
twenty passes over the block and copies the still-active groups. Here the same iterations
run per group with the group's ``m x T`` rows in cache: the same working weights and
response, the same in-order Cholesky that drops dependent columns
(:func:`~pricelab.elasticity.block_kernels.masked_cholesky` with ``tol = 0``), the same
solves and stopping rules (relative change of the deviance, statsmodels' GLM rule; the
refit's chord look-ahead). The numpy loops stay the reference (``PRICELAB_JIT=0``, or
numba missing) and the tests compare the two.

Compiled once per machine and cached (``cache=True``); imported only when a Poisson
kernel runs, so other commands never load numba.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_F3 = nb.float64[:, :, ::1]
_F2 = nb.float64[:, ::1]
_F1 = nb.float64[::1]
_R2 = nb.types.Array(nb.float64, 2, "C", readonly=True)  # inputs: polars' buffers are read-only
_R1 = nb.types.Array(nb.float64, 1, "C", readonly=True)


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _cholesky(A, L, kk):  # type: ignore[no-untyped-def]
    """In-order Cholesky of ``A (m, m)`` (lower triangle used) into ``L``, keeping column
    ``j`` when its Schur complement is finite and positive (``masked_cholesky``, tol 0)."""
    m = A.shape[0]
    for j in range(m):
        for i in range(m):
            L[i, j] = 0.0
    for j in range(m):
        cjj = A[j, j]
        s = cjj
        for i in range(j):
            s -= L[j, i] * L[j, i]
        kj = np.isfinite(s) and cjj > 0 and s > 0.0
        kk[j] = kj
        d = np.sqrt(s) if kj else 1.0
        L[j, j] = d if kj else 0.0
        for i in range(j + 1, m):
            v = A[i, j]
            for q in range(j):
                v -= L[i, q] * L[j, q]
            L[i, j] = v / d if kj else 0.0


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _solve(L, kk, b, z, x):  # type: ignore[no-untyped-def]
    """``cholesky_solve`` of one system ``L L' x = b`` on the kept columns (others 0)."""
    m = b.size
    for j in range(m):
        acc = b[j]
        for i in range(j):
            acc -= L[j, i] * z[i]
        z[j] = acc / L[j, j] if kk[j] else 0.0
    for j in range(m - 1, -1, -1):
        acc = z[j]
        for i in range(j + 1, m):
            acc -= L[i, j] * x[i]
        x[j] = acc / L[j, j] if kk[j] else 0.0


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _gram(X, wt, zt, XW, A, b):  # type: ignore[no-untyped-def]
    """``A = X diag(wt) X'`` (lower triangle) and ``b = X diag(wt) zt`` for ``X (m, T)``."""
    m, T = X.shape
    for j in range(m):
        for t in range(T):
            XW[j, t] = X[j, t] * wt[t]
    for j in range(m):
        acc = 0.0
        for t in range(T):
            acc += XW[j, t] * zt[t]
        b[j] = acc
        for k in range(j + 1):
            acc = 0.0
            for t in range(T):
                acc += XW[j, t] * X[k, t]
            A[j, k] = acc


@nb.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _linear(X, x, e):  # type: ignore[no-untyped-def]
    """``e = clip(x' X, -700, 700)`` for ``X (m, T)``."""
    m, T = X.shape
    for t in range(T):
        e[t] = 0.0
    for j in range(m):
        xj = x[j]
        for t in range(T):
            e[t] += xj * X[j, t]
    for t in range(T):
        e[t] = min(max(e[t], -700.0), 700.0)


@nb.njit(
    nb.void(
        _F3,
        _R2,
        _R2,
        _R2,
        _F2,
        _F2,
        nb.int64[::1],
        nb.boolean[:, ::1],
        nb.int64,
        nb.float64,
        _F2,
        _F1,
        nb.boolean[::1],
    ),
    cache=True,
    nogil=True,
    error_model="numpy",
)
def poisson_irls(X, y, w, ylogy, mu, eta, groups, keep1, maxiter, tol, beta, dev, converged):  # type: ignore[no-untyped-def]  # noqa: E501
    """IRLS of ``poisson_block`` for ``groups``: ``X (g, m, T)`` with the intercept row
    (dropped columns zero rows), counts ``y``, weights ``w``, ``ylogy = y log y``; ``mu,
    eta`` hold the start and end as the fitted means; writes ``beta, dev, converged``."""
    m, T = X.shape[1], X.shape[2]
    A = np.empty((m, m))
    L = np.empty((m, m))
    XW = np.empty((m, T))
    b = np.empty(m)
    z = np.empty(m)
    x = np.empty(m)
    wt = np.empty(T)
    zt = np.empty(T)
    kk = np.empty(m, dtype=np.bool_)
    for gi in groups:
        Xg, yg, wg, lg, mg, eg = X[gi], y[gi], w[gi], ylogy[gi], mu[gi], eta[gi]
        d_old = np.inf
        for _ in range(maxiter):
            for t in range(T):
                wt[t] = mg[t] * wg[t]
                zt[t] = eg[t] + (yg[t] - mg[t]) / mg[t]
            _gram(Xg, wt, zt, XW, A, b)
            _cholesky(A, L, kk)
            ok = True
            for j in range(m):
                if kk[j] != keep1[gi, j]:
                    ok = False
            _solve(L, kk, b, z, x)
            _linear(Xg, x, eg)
            d = 0.0
            for t in range(T):
                mg[t] = np.exp(eg[t])
                d += (lg[t] - yg[t] * eg[t] - yg[t] + mg[t]) * wg[t]
            d *= 2.0
            for j in range(m):
                beta[gi, j] = x[j]
            done = abs(d - d_old) <= tol * (abs(d) + tol) and ok
            d_old = d
            if done:
                converged[gi] = True
                break
            if not ok or not np.isfinite(d):
                break
        dev[gi] = d_old


@nb.njit(cache=True, nogil=True, error_model="numpy")
def _newton(A, rhs, L, kk, z, x):  # type: ignore[no-untyped-def]
    """Solve ``A x = rhs`` (symmetric positive definite, lower triangle) by Cholesky;
    False (and ``x`` = 0) when a pivot is not positive or the solution not finite."""
    m = rhs.size
    _cholesky(A, L, kk)
    good = True
    for j in range(m):
        good = good and kk[j]
    if good:
        _solve(L, kk, rhs, z, x)
        for j in range(m):
            good = good and np.isfinite(x[j])
    if not good:
        x[:] = 0.0
    return good


@nb.njit(
    nb.void(
        _F3,
        _R2,
        _R2,
        nb.boolean[:, ::1],
        _F2,
        _F2,
        _F1,
        _R1,
        nb.int64[::1],
        nb.int64,
        nb.float64,
        nb.float64,
        nb.float64,
        nb.boolean[::1],
        nb.boolean[::1],
    ),
    cache=True,
    nogil=True,
    error_model="numpy",
)
def refit_irls(
    X, offset, Xy, keep1, beta, mu, dev, c, groups, maxiter, tol, step_tol, ahead, converged, ok
):  # type: ignore[no-untyped-def]  # noqa: E501
    """Newton iterations of ``refit_block`` for ``groups``: ``X (g, p, T)`` controls
    (shifted, dropped columns zero rows), ``offset``, ``Xy = [1 X]'y``, ``keep1`` (intercept
    first), the deviance's constant part ``c``; ``beta, mu, dev`` hold the start and end;
    a Newton step below ``ahead`` makes the next iteration try a chord step with the same
    Hessian first (done when it is below ``step_tol (1 + max |beta|)``)."""
    p, T = X.shape[1], X.shape[2]
    m = p + 1
    Xa = np.empty((m, T))
    XW = np.empty((m, T))
    A = np.empty((m, m))
    H = np.empty((m, m))
    L = np.empty((m, m))
    col = np.empty(m)
    rhs = np.empty(m)
    z = np.empty(m)
    x = np.empty(m)
    ones = np.ones(T)
    kk = np.empty(m, dtype=np.bool_)
    for gi in groups:
        Xa[0, :] = 1.0
        Xa[1:, :] = X[gi]
        mg, og, bg = mu[gi], offset[gi], beta[gi]
        small = False
        for _ in range(maxiter):
            if small:  # chord step with the last Hessian: done when it is negligible
                _gram(Xa, mg, ones, XW, A, col)
                for j in range(m):
                    rhs[j] = Xy[gi, j] - col[j]
                if _newton(H, rhs, L, kk, z, x):
                    big, top = 0.0, 0.0
                    for j in range(m):
                        big = max(big, abs(x[j]))
                        top = max(top, abs(bg[j]))
                    if big <= step_tol * (1.0 + top):
                        for j in range(m):
                            bg[j] += x[j]
                        converged[gi] = True
                        break
            _gram(Xa, mg, ones, XW, A, col)
            for j in range(m):
                if not keep1[gi, j]:
                    A[j, j] += 1.0
            for j in range(m):
                rhs[j] = Xy[gi, j] - col[j]
            solved = _newton(A, rhs, L, kk, z, x)
            H[:, :] = A
            big = 0.0
            for j in range(m):
                big = max(big, abs(x[j]))
                bg[j] += x[j]
            small = big <= ahead
            d = c[gi]
            for j in range(m):
                d -= 2.0 * bg[j] * Xy[gi, j]
            for t in range(T):
                e = 0.0
                for j in range(1, m):
                    e += bg[j] * Xa[j, t]
                e += bg[0]
                e += og[t]
                e = min(max(e, -700.0), 700.0)
                mg[t] = np.exp(e)
                d += 2.0 * mg[t]
            done = abs(d - dev[gi]) <= tol * (abs(d) + tol) and solved
            dev[gi] = d
            ok[gi] = solved and np.isfinite(d)
            if done:
                converged[gi] = True
                break
            if not ok[gi]:
                break


@nb.njit(
    nb.void(
        _F3, _R2, _R2, _R2, nb.boolean[:, ::1], nb.boolean, nb.boolean, _F2, nb.boolean[::1], _F2
    ),
    cache=True,
    nogil=True,
    error_model="numpy",
)
def poisson_influence(X, y, w, mu, keep1, robust, lev, r, rank_ok, infl):  # type: ignore[no-untyped-def]  # noqa: E501
    """The variance part of ``poisson_block`` after IRLS, per group: the Fisher
    information ``[1 X]' diag(w mu) [1 X]`` by the in-order Cholesky (``rank_ok``: the
    kept columns are still the fit's), ``r`` = its inverse's slope column and, when
    ``robust``, each row's influence on the slope ``(r'x_t)(y_t - mu_t) w_t``, divided by
    ``1 - h_t`` (the row's leverage, clipped below 1) when ``lev``."""
    g, m, T = X.shape
    A = np.empty((m, m))
    L = np.empty((m, m))
    XW = np.empty((m, T))
    inv = np.zeros((m, m))
    e = np.zeros(m)
    z = np.empty(m)
    x = np.empty(m)
    col = np.empty(m)
    wt = np.empty(T)
    kk = np.empty(m, dtype=np.bool_)
    for gi in range(g):
        Xg = X[gi]
        for t in range(T):
            wt[t] = mu[gi, t] * w[gi, t]
        _gram(Xg, wt, wt, XW, A, col)
        _cholesky(A, L, kk)
        ok = True
        for j in range(m):
            if kk[j] != keep1[gi, j]:
                ok = False
        rank_ok[gi] = ok
        if lev:
            for k in range(m):
                e[:] = 0.0
                e[k] = 1.0
                _solve(L, kk, e, z, x)
                for j in range(m):
                    inv[j, k] = x[j]
        e[:] = 0.0
        e[1] = 1.0
        _solve(L, kk, e, z, x)
        for j in range(m):
            r[gi, j] = x[j]
        if not robust:
            continue
        for t in range(T):
            u = 0.0
            for j in range(m):
                u += x[j] * Xg[j, t]
            score = (y[gi, t] - mu[gi, t]) * w[gi, t]
            if lev:
                h = 0.0
                for j in range(m):
                    acc = 0.0
                    for k in range(m):
                        acc += inv[j, k] * Xg[k, t]
                    h += Xg[j, t] * acc
                h = min(max(h * wt[t], 0.0), 1.0 - 1e-8)
                score = score / (1.0 - h)
            infl[gi, t] = u * score


__all__ = ["poisson_influence", "poisson_irls", "refit_irls"]
