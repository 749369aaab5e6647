"""Batched numpy kernels on group-padded row arrays ``(G, T, k)`` (panel, IV, cross, groupfit).

Every estimator in :mod:`pricelab.elasticity` reduces to a handful of operations on
arrays of shape ``(G, T, k)``: ``G`` groups (item × market, or any ``by``), ``T`` rows
per group (padded; padding rows carry weight 0) and ``k`` regressors. A group-wise
sum is a batched matrix product, a per-group solve is one stacked
:func:`numpy.linalg.solve`. Nothing here loops over groups in Python, and nothing
here knows which engine (local, Spark) produced the arrays.

Columns that are constant or collinear inside a group are dropped *for that group*
(:func:`independent_columns`); their coefficients come back as 0 from the kernels and
the caller reports them as NaN.
"""

from __future__ import annotations

import numpy as np

from .block_kernels import masked_cholesky

_TINY = 1e-300


def pad(
    values: np.ndarray,
    codes: np.ndarray,
    pos: np.ndarray,
    n_groups: int,
    width: int,
    fill: float = 0.0,
) -> np.ndarray:
    """Scatter row values into a ``(n_groups, width, ...)`` array (padding = ``fill``)."""
    out = np.full((n_groups, width) + values.shape[1:], fill, dtype=np.float64)
    out[codes, pos] = values
    return out


def gram(X: np.ndarray, w: np.ndarray | None = None, Z: np.ndarray | None = None) -> np.ndarray:
    """Group-wise ``X' diag(w) Z`` for ``X (G,T,k)``, ``w (G,T)``; ``Z`` defaults to ``X``."""
    Z = X if Z is None else Z
    Xw = X if w is None else X * w[:, :, None]
    return np.matmul(Xw.transpose(0, 2, 1), Z)


def xty(X: np.ndarray, y: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Group-wise ``X' diag(w) y`` -> ``(G, k)``."""
    yw = y if w is None else y * w
    return np.matmul(X.transpose(0, 2, 1), yw[:, :, None])[:, :, 0]


def masked_system(A: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Replace dropped rows/columns of stacked ``A`` by the identity (keeps it solvable)."""
    both = keep[:, :, None] & keep[:, None, :]
    eye = np.eye(A.shape[-1], dtype=bool)[None]
    return np.where(both, A, np.where(eye & ~keep[:, :, None], 1.0, 0.0))


def safe_solve(A: np.ndarray, B: np.ndarray, rcond: float = 1e-13) -> tuple[np.ndarray, np.ndarray]:
    """Batched solve ``A x = B``; returns ``(x, ok)`` with NaN where ``A`` is singular.

    ``B`` is ``(G, k)`` or ``(G, k, m)``. Never raises on a singular member of the stack.
    """
    vec = B.ndim == 2
    Bm = B[:, :, None] if vec else B
    finite = np.isfinite(A).all(axis=(1, 2)) & np.isfinite(Bm).all(axis=(1, 2))
    A_use = np.where(finite[:, None, None], A, np.eye(A.shape[-1])[None])
    B_use = np.where(finite[:, None, None], Bm, 0.0)
    ok = finite.copy()
    try:
        x = np.linalg.solve(A_use, B_use)
    except np.linalg.LinAlgError:
        s = np.linalg.svd(A_use, compute_uv=False)
        bad = s[:, -1] <= rcond * np.maximum(s[:, 0], _TINY)
        ok &= ~bad
        A_use = np.where(bad[:, None, None], np.eye(A.shape[-1])[None], A_use)
        x = np.linalg.solve(A_use, B_use)
    x[~ok] = np.nan
    return (x[:, :, 0] if vec else x), ok


def independent_columns(
    A: np.ndarray, usable: np.ndarray | None = None, tol: float | np.ndarray = 1e-10
) -> np.ndarray:
    """Per group, which columns of a Gram matrix ``A (G,k,k)`` are linearly independent.

    Columns are examined in order (so earlier columns have priority: put the intercept
    and log price first). Column ``j`` is kept when its residual sum of squares after
    projection on the kept earlier columns exceeds ``tol`` times its own sum of squares:
    the in-order Cholesky of :func:`pricelab.elasticity.block_kernels.masked_cholesky`,
    the one implementation of this rule. Use centred columns for a meaningful relative
    tolerance (a scalar, or one per column). ``usable`` (G,k) pre-excludes columns.
    """
    if usable is not None:
        A = np.where(usable[:, :, None] & usable[:, None, :], A, 0.0)
    return masked_cholesky(A, tol)[1]


def wls(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batched weighted least squares on kept columns.

    Returns ``(beta (G,k), bread (G,k,k) = (X'WX)^-1 on kept columns, ok (G,))``;
    dropped columns get coefficient 0 and zero rows/columns in ``bread``.
    """
    A = masked_system(gram(X, w), keep)
    b = xty(X, y, w) * keep
    beta, ok = safe_solve(A, b)
    eye = np.broadcast_to(np.eye(X.shape[-1]), A.shape)
    bread, ok2 = safe_solve(A, eye.copy())
    both = keep[:, :, None] & keep[:, None, :]
    bread = np.where(both, bread, 0.0)
    return np.where(keep, beta, 0.0), bread, ok & ok2


def sandwich(bread: np.ndarray, scores: np.ndarray, factor: np.ndarray | float = 1.0) -> np.ndarray:
    """``factor * B (S'S) B`` with per-row scores ``S (G,T,k)`` (HC0 meat when rows are units)."""
    meat = gram(scores)
    V = np.matmul(np.matmul(bread, meat), bread)
    return V * np.asarray(factor, dtype=np.float64).reshape(-1, 1, 1)


def cluster_scores(scores: np.ndarray, cluster: np.ndarray, n_clusters: int) -> np.ndarray:
    """Sum padded row scores ``(G,T,k)`` within clusters; ``cluster (G,T)`` codes < n_clusters.

    Returns ``(G, n_clusters, k)`` so that :func:`sandwich` gives the cluster-robust meat.
    """
    G, T, k = scores.shape
    flat = (np.arange(G)[:, None] * n_clusters + cluster).ravel()
    out = np.zeros((G * n_clusters, k))
    for j in range(k):
        out[:, j] = np.bincount(flat, weights=scores[:, :, j].ravel(), minlength=G * n_clusters)
    return out.reshape(G, n_clusters, k)


def ols_fit(
    X: np.ndarray,
    y: np.ndarray,
    valid: np.ndarray,
    keep: np.ndarray,
    se: str = "HC1",
    extra_dof: np.ndarray | float = 0.0,
) -> dict[str, np.ndarray]:
    """Batched OLS with ``nonrobust``, ``HC0`` or ``HC1`` covariance.

    ``valid (G,T)`` is 1 for real rows and 0 for padding; ``extra_dof`` counts absorbed
    fixed effects (added to the number of parameters in degrees-of-freedom corrections).
    """
    w = valid.astype(np.float64)
    beta, bread, ok = wls(X, y, w, keep)
    resid = (y - np.einsum("gtk,gk->gt", X, beta)) * w
    n = w.sum(axis=1)
    p = keep.sum(axis=1) + extra_dof
    dof = n - p
    with np.errstate(divide="ignore", invalid="ignore"):
        if se == "nonrobust":
            s2 = (resid**2).sum(axis=1) / dof
            cov = bread * s2[:, None, None]
        else:
            factor = n / dof if se == "HC1" else np.ones_like(n)
            cov = sandwich(bread, X * resid[:, :, None], factor)
    cov[dof <= 0] = np.nan
    return {"beta": beta, "cov": cov, "resid": resid, "ok": ok, "n": n, "p": p, "bread": bread}


def poisson_irls(
    X: np.ndarray,
    y: np.ndarray,
    valid: np.ndarray,
    keep: np.ndarray,
    offset: np.ndarray | None = None,
    maxiter: int = 100,
    tol: float = 1e-10,
) -> dict[str, np.ndarray]:
    """Batched Poisson PML (log link) by iteratively reweighted least squares.

    Each iteration is one weighted Gram pass and one stacked solve over the groups
    still active. Convergence: relative change of the deviance below ``tol`` (as
    statsmodels' GLM). Returns ``beta, mu, converged, iterations``.
    """
    G, T, k = X.shape
    w0 = valid.astype(np.float64)
    off = np.zeros_like(y) if offset is None else offset
    n = np.maximum(w0.sum(axis=1), 1.0)
    ybar = (y * w0).sum(axis=1) / n
    mu = np.where(w0 > 0, (y + ybar[:, None]) / 2.0, 1.0)
    eta = np.log(np.maximum(mu, 1e-10))
    beta = np.zeros((G, k))
    dev = np.full(G, np.inf)
    converged = np.zeros(G, dtype=bool)
    iters = np.zeros(G, dtype=np.int64)
    active = np.flatnonzero(w0.sum(axis=1) > 0)
    for it in range(1, maxiter + 1):
        if active.size == 0:
            break
        Xa, ya, wa, ka, ma, ea = (
            X[active],
            y[active],
            w0[active],
            keep[active],
            mu[active],
            eta[active],
        )
        z = ea - off[active] + (ya - ma) / ma
        b, _, ok = wls(Xa, z, ma * wa, ka)
        ea = np.clip(np.einsum("gtk,gk->gt", Xa, b) + off[active], -700.0, 700.0)
        ma = np.exp(ea)
        with np.errstate(divide="ignore", invalid="ignore"):
            term = np.where(ya > 0, ya * np.log(ya / ma), 0.0) - (ya - ma)
        d = 2.0 * (term * wa).sum(axis=1)
        beta[active], mu[active], eta[active] = b, ma, ea
        iters[active] = it
        done = (np.abs(d - dev[active]) <= tol * (np.abs(d) + tol)) & ok
        dev[active] = d
        converged[active[done]] = True
        failed = ~ok | ~np.isfinite(d)
        active = active[~done & ~failed]
    return {"beta": beta, "mu": mu, "converged": converged, "iterations": iters, "deviance": dev}


def poisson_cov(
    X: np.ndarray,
    y: np.ndarray,
    mu: np.ndarray,
    valid: np.ndarray,
    keep: np.ndarray,
    se: str = "HC1",
    week: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Robust and model-based covariances of a Poisson fit.

    ``se``: ``HC0``, ``HC1``, ``HC3`` (scores divided by ``1 - h_t``, the leverage of the
    weighted hat matrix) or ``cluster`` (HC3-corrected scores summed in blocks of
    :data:`~pricelab.elasticity.robust.CLUSTER_WEEKS` weeks given ``week (G,T)``,
    factor ``c / (c - 1)``, or HC3 when that is larger; without ``week`` as ``HC3``).
    """
    w = valid.astype(np.float64)
    A = masked_system(gram(X, mu * w), keep)
    eye = np.broadcast_to(np.eye(X.shape[-1]), A.shape).copy()
    bread, _ = safe_solve(A, eye)
    bread = np.where(keep[:, :, None] & keep[:, None, :], bread, 0.0)
    if se == "nonrobust":
        return bread, bread
    n = w.sum(axis=1)
    p = keep.sum(axis=1)
    score = (y - mu) * w
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = n / (n - p) if se == "HC1" else np.ones_like(n)
    if se in ("HC3", "cluster"):
        h = np.einsum("gtk,gkl,gtl->gt", X, bread, X) * mu * w
        score = score / (1.0 - np.clip(h, 0.0, 1.0 - 1e-8))
    S = X * score[:, :, None]
    cov = sandwich(bread, S, factor)
    if se == "cluster" and week is not None:  # the larger of HC3 and the block cluster
        from .robust import CLUSTER_WEEKS, block_codes

        cid, nc, c = block_codes(week, w, CLUSTER_WEEKS)
        with np.errstate(divide="ignore", invalid="ignore"):
            cf = np.where(c > 1, c / (c - 1.0), np.nan)
        cl = sandwich(bread, cluster_scores(S, cid, nc), cf)
        cov = np.where((cl[:, 1, 1] > cov[:, 1, 1])[:, None, None], cl, cov)
    return cov, bread


def first_stage_f(
    Z: np.ndarray, x: np.ndarray, valid: np.ndarray, keep_z: np.ndarray, excluded: np.ndarray
) -> np.ndarray:
    """Homoskedastic first-stage F of the excluded instruments, per group.

    ``Z (G,T,m)`` holds exogenous controls and instruments; ``excluded (m,)`` marks the
    instrument columns. F = ((RSS_r - RSS_u) / q) / (RSS_u / (n - m_kept)).
    """
    w = valid.astype(np.float64)
    fu = ols_fit(Z, x, valid, keep_z, se="nonrobust")
    fr = ols_fit(Z, x, valid, keep_z & ~excluded[None, :], se="nonrobust")
    rss_u = (fu["resid"] ** 2).sum(axis=1)
    rss_r = (fr["resid"] ** 2).sum(axis=1)
    q = (keep_z & excluded[None, :]).sum(axis=1)
    dof = w.sum(axis=1) - keep_z.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        F = ((rss_r - rss_u) / q) / (rss_u / dof)
    return np.where((q > 0) & (dof > 0), F, np.nan)


def robust_first_stage_f(
    Z: np.ndarray, x: np.ndarray, valid: np.ndarray, keep_z: np.ndarray, excluded: np.ndarray
) -> np.ndarray:
    """Heteroskedasticity-robust (HC1) Wald F of the excluded instruments, per group.

    ``F = pi' V^-1 pi / q`` with ``pi`` the first-stage coefficients of the ``q`` kept
    excluded instruments and ``V`` their HC1 covariance: with one endogenous regressor, the
    Kleibergen-Paap rk Wald F (as ``ivreg2``/``linearmodels`` report it, up to their
    small-sample factor) and the effective F of Montiel Olea and Pflueger's rule of thumb
    uses the same robust covariance.
    """
    fu = ols_fit(Z, x, valid, keep_z, se="HC1")
    sel = keep_z & excluded[None, :]
    q = sel.sum(axis=1)
    pi = np.where(sel, np.nan_to_num(fu["beta"]), 0.0)
    V = masked_system(np.nan_to_num(fu["cov"]), sel)
    sol, ok = safe_solve(V, pi)
    with np.errstate(divide="ignore", invalid="ignore"):
        F = np.einsum("gk,gk->g", pi, np.nan_to_num(sol)) / q
    return np.where((q > 0) & ok & np.isfinite(fu["cov"][:, 0, 0]), F, np.nan)


def tsls(
    X: np.ndarray,
    Z: np.ndarray,
    y: np.ndarray,
    valid: np.ndarray,
    keep_x: np.ndarray,
    keep_z: np.ndarray,
    se: str = "HC1",
) -> dict[str, np.ndarray]:
    """Batched two-stage least squares with ``nonrobust``/``HC0``/``HC1`` covariance.

    ``X (G,T,k)`` holds the regressors (endogenous and exogenous), ``Z (G,T,m)`` the
    exogenous regressors and excluded instruments. The second stage regresses ``y`` on
    the fitted ``X_hat = Z (Z'Z)^-1 Z'X``; residuals use the original ``X``.
    """
    w = valid.astype(np.float64)
    A = masked_system(gram(Z, w), keep_z)
    B = gram(Z, w, X) * keep_z[:, :, None]
    Pi, ok1 = safe_solve(A, B)
    Xhat = np.matmul(Z, np.nan_to_num(Pi)) * w[:, :, None]
    beta, bread, ok2 = wls(Xhat, y, w, keep_x)
    resid = (y - np.einsum("gtk,gk->gt", X, beta)) * w
    n = w.sum(axis=1)
    p = keep_x.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if se == "nonrobust":
            cov = bread * ((resid**2).sum(axis=1) / (n - p))[:, None, None]
        else:
            factor = n / (n - p) if se == "HC1" else np.ones_like(n)
            cov = sandwich(bread, Xhat * resid[:, :, None], factor)
    cov[n - p <= 0] = np.nan
    return {"beta": beta, "cov": cov, "resid": resid, "ok": ok1 & ok2, "n": n, "p": p, "xhat": Xhat}
