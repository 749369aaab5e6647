"""Batched OLS on group blocks through centred cross-product sums (numpy); the Poisson
(IRLS) counterpart on the same layout is :mod:`.poisson_kernel`.

The fast ``ols`` path hands this module one block of whole groups at a time, laid out
as ``(g, p, T)``: ``g`` groups, ``p`` slope regressors (log price first, then controls)
and ``T`` rows per group (padding rows carry weight 0). Each regressor is shifted by
the group's first row, so the centred cross products ``C = X'X - n m m'`` are formed
from sums without cancellation, and a constant column is exactly zero. Columns that are
constant or collinear in a group are dropped by an in-order Cholesky
(:func:`masked_cholesky`, which also serves the padded path's
:func:`pricelab.elasticity.padded_kernels.independent_columns`): column ``j`` is kept when
its Schur complement on the kept earlier columns exceeds ``tol`` times its sum of squares. Robust
variances need only ``r = C^-1 e_1``: ``Var(e) = f * sum_t resid_t² (x_t - m)'r)²``.
Nothing here loops over groups in Python or knows which engine produced the block.
"""

from __future__ import annotations

import numpy as np

from .robust import CLUSTER_WEEKS, cluster_ss


def masked_cholesky(
    C: np.ndarray, tol: float | np.ndarray = 1e-10
) -> tuple[np.ndarray, np.ndarray]:
    """In-order Cholesky of stacked ``C (g, p, p)`` that drops dependent columns.

    Returns ``(L, keep)``: lower-triangular ``L`` with zero rows/columns for dropped
    columns, and ``keep (g, p)``. Column ``j`` is kept when ``C_jj > 0`` and its Schur
    complement on the kept earlier columns exceeds ``tol * C_jj`` (``tol`` a scalar or
    one value per column: ``1 / tol`` is then the largest variance inflation allowed).
    """
    g, p, _ = C.shape
    L = np.zeros_like(C)
    keep = np.zeros((g, p), dtype=bool)
    tols = np.broadcast_to(np.asarray(tol, dtype=np.float64), (p,))
    for j in range(p):
        cjj = C[:, j, j]
        s = cjj - (L[:, j, :j] ** 2).sum(axis=1)
        kj = np.isfinite(s) & (cjj > 0) & (s > tols[j] * cjj)
        keep[:, j] = kj
        d = np.sqrt(np.where(kj, s, 1.0))
        L[:, j, j] = np.where(kj, d, 0.0)
        for i in range(j + 1, p):
            v = (C[:, i, j] - (L[:, i, :j] * L[:, j, :j]).sum(axis=1)) / d
            L[:, i, j] = np.where(kj, v, 0.0)
    return L, keep


def cholesky_solve(L: np.ndarray, keep: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Solve ``C x = b`` on the kept columns for ``B (g, p, m)``; dropped columns get 0."""
    g, p, _ = L.shape
    z = np.zeros_like(B)
    diag = np.where(keep, np.diagonal(L, axis1=1, axis2=2), 1.0)
    for j in range(p):
        acc = B[:, j] - np.einsum("gi,gim->gm", L[:, j, :j], z[:, :j])
        z[:, j] = np.where(keep[:, j, None], acc / diag[:, j, None], 0.0)
    x = np.zeros_like(B)
    for j in range(p - 1, -1, -1):
        acc = z[:, j] - np.einsum("gi,gim->gm", L[:, j + 1 :, j], x[:, j + 1 :])
        x[:, j] = np.where(keep[:, j, None], acc / diag[:, j, None], 0.0)
    return x


def hac_lags(n: np.ndarray) -> np.ndarray:
    """Default Newey-West bandwidth ``floor(4 (n / 100)^(2/9))`` per group (as statsmodels)."""
    return np.floor(4 * (np.maximum(n, 0) / 100.0) ** (2.0 / 9.0)).astype(np.int64)


def newey_west(a: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """``sum_t a_t² + 2 sum_l (1 - l/(L+1)) sum_t a_t a_(t-l)`` per row of ``a (g, T)``.

    Rows are consecutive periods; ``lags (g,)`` is each row's bandwidth ``L`` (Bartlett).
    """
    out = (a * a).sum(axis=1)
    for lag in range(1, min(int(lags.max(initial=0)), a.shape[1] - 1) + 1):
        wl = np.where(lags >= lag, 1.0 - lag / (lags + 1.0), 0.0)
        out += 2.0 * wl * (a[:, lag:] * a[:, :-lag]).sum(axis=1)
    return out


def ols_block(
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    se: str = "HC1",
    min_obs: int = 1,
    lags: int | None = None,
    week: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """OLS of ``y`` on an intercept and ``X`` for every group of a block.

    Parameters
    ----------
    X:
        ``(g, p, T)`` slope regressors, column 0 the one whose variance is reported (log
        price). Padding rows may hold anything finite. Overwritten (shifted in place).
    y:
        ``(g, T)`` response, finite everywhere (0 where ``w`` is 0).
    w:
        ``(g, T)`` row weights in {0, 1} (0 for padding and excluded rows).
    se:
        ``HC1``, ``HC0``, ``nonrobust`` or ``HAC`` (Newey-West, Bartlett kernel, no
        small-sample factor, as statsmodels' ``cov_type="HAC"``; rows must be consecutive
        periods, rows of weight 0 count as periods with a zero score) variance of the
        coefficient of column 0.
    min_obs:
        Groups with fewer weighted rows are not fitted (only ``n``, means, spread).
    lags:
        ``HAC`` bandwidth; default :func:`hac_lags` of each group's number of rows.

    Returns
    -------
    dict
        ``n, params (g, 1 + p)`` (intercept first, NaN for dropped), ``keep (g, p)``,
        ``var`` (variance of the column-0 slope), ``rss, tss, smear`` (sum of
        ``w exp(resid)``), ``mean, spread`` (weighted mean and population variance of
        column 0), ``fitted`` (enough rows) and ``ok`` (finite solution, ``n > p_kept``).
    """
    g, p, T = X.shape
    shift = X[:, :, 0].copy()
    X -= shift[:, :, None]  # in place: the caller's block; constant columns become exact 0
    n = w.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mx = np.matmul(X, w[:, :, None])[:, :, 0] / n[:, None]
        my = (y * w).sum(axis=1) / n
    mx, my = np.nan_to_num(mx), np.nan_to_num(my)
    X -= mx[:, :, None]  # centred on the weighted rows (two passes: no cancellation)
    yc = (y - my[:, None]) * w
    # rows of weight 0 set to 0 (w is 0 or 1): X X' is then the weighted cross products,
    # term by term as (X w) X', and every later use of X is multiplied by w anyway
    X *= w[:, None, :]
    Cxx = np.matmul(X, X.transpose(0, 2, 1))
    Cxy = np.matmul(X, yc[:, :, None])[:, :, 0]
    tss = (yc * yc).sum(axis=1)
    fitted = n >= max(min_obs, 1)
    L, keep = masked_cholesky(np.where(fitted[:, None, None], Cxx, 0.0))
    rhs = np.zeros((g, p, 1 + p))  # C beta = Cxy and C^-1 (zero rows/columns for dropped)
    rhs[:, :, 0] = np.where(fitted[:, None], Cxy, 0.0)
    rhs[:, :, 1:] = np.eye(p)
    sol = cholesky_solve(L, keep, rhs)
    beta, inv = sol[:, :, 0], sol[:, :, 1:]
    r = inv[:, :, 0]
    resid = (yc - np.matmul(beta[:, None, :], X)[:, 0]) * w
    rss = (resid**2).sum(axis=1)
    p_kept = 1 + keep.sum(axis=1)
    dof = n - p_kept
    with np.errstate(divide="ignore", invalid="ignore"):
        if se in ("HC3", "cluster"):  # Z = C^-1 x_t: u_t = Z_0t, leverage 1/n + x_t'Z_t
            Z = np.matmul(inv, X)
            u = Z[:, 0]
            h = np.einsum("gkt,gkt->gt", X, Z) + 1.0 / np.maximum(n, 1.0)[:, None]
            del Z
            h = np.clip(h * (w > 0), 0.0, 1.0 - 1e-8)
        else:
            u = np.matmul(r[:, None, :], X)[:, 0]
        if se == "nonrobust":
            var = rss / dof * r[:, 0]
        elif se == "HAC":
            lag = hac_lags(n) if lags is None else np.full(g, int(lags))
            var = newey_west(resid * u, lag)
        else:
            factor = n / dof if se == "HC1" else np.ones_like(n)
            a = resid * u
            if se in ("HC3", "cluster"):
                a /= 1.0 - h
            var = factor * (a**2).sum(axis=1)
            if se == "cluster" and week is not None:
                var = np.fmax(var, cluster_ss(a, week, w, CLUSTER_WEEKS))
    params = np.empty((g, p + 1))
    params[:, 1:] = np.where(keep, beta, np.nan)
    params[:, 0] = my - (beta * (mx + shift)).sum(axis=1)
    finite = np.isfinite(beta).all(axis=1) & np.isfinite(var)
    return {
        "n": n,
        "params": params,
        "keep": keep,
        "var": np.where(dof > 0, var, np.nan),
        "rss": rss,
        "tss": tss,
        "smear": (np.exp(resid) * w).sum(axis=1),
        "mean": mx[:, 0] + shift[:, 0],
        "spread": Cxx[:, 0, 0] / np.where(n > 0, n, np.nan),
        "fitted": fitted,
        "ok": finite & (dof > 0),
    }
