"""Batched OLS and Poisson (IRLS) on group blocks through centred cross-product sums (numpy).

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

from collections.abc import Callable, Sequence

import numpy as np

from .robust import CLUSTER_WEEKS, cluster_ss, leverage
from .sparse import EVENTS_PER_PARAM, collapsed, column_tol, events_mask, rescued, separated


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


def _inverse(L: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``C^-1`` on the kept columns from :func:`masked_cholesky`'s ``L, keep``."""
    g, k, _ = L.shape
    return cholesky_solve(L, keep, np.broadcast_to(np.eye(k), (g, k, k)).copy())


def _wgram(X: np.ndarray, W: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``X W X'`` and ``X W z`` for ``X (g, k, T)`` (contiguous in ``T``), ``W, z (g, T)``."""
    XW = X * W[:, None, :]
    return np.matmul(XW, X.transpose(0, 2, 1)), np.matmul(XW, z[:, :, None])[:, :, 0]


def _influence(
    Xf: np.ndarray,
    y: np.ndarray,
    wf: np.ndarray,
    mu: np.ndarray,
    keep1: np.ndarray,
    robust: bool,
    lev: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """After IRLS: the inverse Fisher information's slope column ``r (g, 1 + p)``, whether
    the kept columns are still the fit's, and each row's influence on the slope
    ``(r'x_t)(y_t - mu_t) w_t`` (over ``1 - h_t`` with ``lev``; zeros unless ``robust``)."""
    g, m, T = Xf.shape
    A, _ = _wgram(Xf, mu * wf, y)
    L, kk = masked_cholesky(A, tol=0.0)
    e1 = np.zeros((g, m, 1))
    e1[:, 1] = 1.0
    r = cholesky_solve(L, kk, e1)[:, :, 0]
    infl = np.zeros((g, T))
    if robust:
        with np.errstate(divide="ignore", invalid="ignore"):
            score = (y - mu) * wf
            if lev:
                score = score / (1.0 - leverage(Xf, mu * wf, _inverse(L, kk)))
            infl = np.matmul(r[:, None, :], Xf)[:, 0] * score
    return r, (kk == keep1).all(axis=1), infl


def _influence_jit(
    Xf: np.ndarray,
    y: np.ndarray,
    wf: np.ndarray,
    mu: np.ndarray,
    keep1: np.ndarray,
    robust: bool,
    lev: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_influence` compiled (:func:`.glm_jit.poisson_influence`)."""
    from .glm_jit import poisson_influence

    kernel: Callable[..., None] = poisson_influence
    g, m, T = Xf.shape
    r, rank_ok, infl = np.empty((g, m)), np.empty(g, dtype=bool), np.zeros((g, T))
    f64 = [np.ascontiguousarray(a, dtype=np.float64) for a in (y, wf, mu)]
    kernel(Xf, *f64, np.ascontiguousarray(keep1), robust, lev, r, rank_ok, infl)
    return r, rank_ok, infl


def _irls_jit(compiled: bool) -> Callable[..., None] | None:
    """The compiled IRLS loop (:mod:`.glm_jit`) when asked for, or None (or no numba)."""
    if not compiled:
        return None
    from .compiled import load_kernel

    return load_kernel("glm_jit", "poisson_irls")


def poisson_block(
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    se: str = "HC1",
    min_obs: int = 1,
    maxiter: int = 100,
    tol: float = 1e-10,
    names: Sequence[str] | None = None,
    events_per_param: float = EVENTS_PER_PARAM,
    refit: bool = True,
    week: np.ndarray | None = None,
    compiled: bool = False,
) -> dict[str, np.ndarray]:
    """Poisson PML (log link) by IRLS for every group of a block.

    Parameters
    ----------
    X:
        ``(g, p, T)`` slope regressors, column 0 the one whose variance is reported.
        Overwritten (shifted in place by each group's first row).
    y, w:
        ``(g, T)`` counts and row weights in {0, 1}.
    se:
        ``HC1`` (factor ``n / (n - p_kept)``), ``HC0`` or ``nonrobust``.
    min_obs, maxiter, tol:
        Groups with fewer rows (or no sales) are not fitted; IRLS stops when the relative
        change of the deviance is below ``tol`` (statsmodels' GLM rule).
    names, events_per_param:
        Column names of ``X`` (``log_price, _c_promo, ...``): with them, the nuisance
        controls a group's data cannot support are left out (:mod:`.sparse`: events per
        parameter and variance inflation). Without names every column may enter.
    refit:
        With ``names``: refit separated groups without their collapsed zero weeks
        (:func:`.sparse.refit_separated`), once.
    compiled:
        Run the IRLS iterations compiled (:mod:`.glm_jit`: the same iterations, one
        group at a time) instead of the numpy loop, their reference.

    Returns
    -------
    dict
        ``n, params (g, 1 + p)`` (intercept first, 0 for dropped), ``keep (g, p)``,
        ``var`` (robust variance of the column-0 slope), ``model_var`` (its Fisher
        variance), ``deviance, null_deviance, mean, spread, fitted, converged`` and
        ``separated`` (fitted means collapsing on zero weeks, :func:`.sparse.separated`),
        ``rescued`` (separated by a nuisance control, refitted without those weeks) and
        ``influence (g, T)``: each row's contribution to the slope's robust variance
        (``var`` is its sum of squares for ``HC0``/``HC3``), what the calendar sums of
        :func:`.robust.calendar_sums` are made of.
    """
    g, p, T = X.shape
    shift = X[:, :, 0].copy()
    X -= shift[:, :, None]
    n = w.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mx = (X * w[:, None, :]).sum(axis=2) / n[:, None]
        Cxx = (
            np.matmul(X * w[:, None, :], X.transpose(0, 2, 1))
            - n[:, None, None] * mx[:, :, None] * mx[:, None, :]
        )
        ybar = (y * w).sum(axis=1) / np.maximum(n, 1)
        ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0)
        null_dev = 2 * ((ylogy - y * np.log(ybar)[:, None]) * w).sum(axis=1)
    fitted = (n >= max(min_obs, 1)) & ((y * w).sum(axis=1) > 0)
    C = np.where(fitted[:, None, None], Cxx, 0.0)
    ctol: float | np.ndarray = 1e-10
    if names is not None:
        present = np.diagonal(C, axis1=1, axis2=2) > 0
        allow = events_mask(names, ((y > 0) & (w > 0)).sum(axis=1), present, events_per_param)
        C = C * (allow[:, :, None] & allow[:, None, :])
        ctol = column_tol(names)
    _, keep = masked_cholesky(C, tol=ctol)
    Xf = np.empty((g, p + 1, T))  # intercept row, dropped rows zeroed
    Xf[:, 0] = 1.0
    Xf[:, 1:] = X * keep[:, :, None]
    keep1 = np.c_[np.ones(g, dtype=bool), keep]
    wf = w * fitted[:, None]
    mu = np.where(wf > 0, (y + ybar[:, None]) / 2.0, 1.0)
    eta = np.log(np.maximum(mu, 1e-10))
    beta = np.zeros((g, p + 1))
    dev = np.full(g, np.inf)
    converged = np.zeros(g, dtype=bool)
    act = np.flatnonzero(fitted)
    jit = _irls_jit(compiled)
    if jit is not None:  # the same iterations, compiled, one group at a time
        f64 = [np.ascontiguousarray(a, dtype=np.float64) for a in (y, wf, ylogy)]
        jit(Xf, *f64, mu, eta, act, np.ascontiguousarray(keep1), maxiter, tol, beta, dev, converged)
        act = act[:0]
    for _ in range(maxiter):
        if act.size == 0:
            break
        full = act.size == g
        Xa = Xf if full else Xf[act]
        ya, wa, ma = (y, wf, mu) if full else (y[act], wf[act], mu[act])
        A, b = _wgram(Xa, ma * wa, (eta if full else eta[act]) + (ya - ma) / ma)
        L, kk = masked_cholesky(A, tol=0.0)
        ok = (kk == keep1[act]).all(axis=1)
        ba = cholesky_solve(L, kk, b[:, :, None])[:, :, 0]
        ea = np.clip(np.matmul(ba[:, None, :], Xa)[:, 0], -700.0, 700.0)
        ma = np.exp(ea)
        d = 2.0 * ((ylogy[act] - ya * ea - ya + ma) * wa).sum(axis=1)
        beta[act], mu[act], eta[act] = ba, ma, ea
        done = (np.abs(d - dev[act]) <= tol * (np.abs(d) + tol)) & ok
        dev[act] = d
        converged[act[done]] = True
        act = act[~done & ok & np.isfinite(d)]
    lev = se in ("HC3", "cluster")
    if jit is not None:  # the variance part compiled too (same sums, one group at a time)
        r, rank_ok, infl = _influence_jit(Xf, y, wf, mu, keep1, se != "nonrobust", lev)
    else:
        r, rank_ok, infl = _influence(Xf, y, wf, mu, keep1, se != "nonrobust", lev)
    model_var = r[:, 1]
    p_kept = keep1.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if se == "nonrobust":
            var = model_var
        else:
            factor = n / (n - p_kept) if se == "HC1" else np.ones_like(n)
            var = factor * (infl**2).sum(axis=1)
            if se == "cluster" and week is not None:
                var = np.fmax(var, cluster_ss(infl, week, wf, CLUSTER_WEEKS))
    params = beta.copy()
    params[:, 0] -= (beta[:, 1:] * shift).sum(axis=1)
    converged &= rank_ok
    out = {
        "n": n,
        "params": params,
        "keep": keep,
        "var": var,
        "model_var": model_var,
        "deviance": dev,
        "null_deviance": null_dev,
        "mean": mx[:, 0] + shift[:, 0],
        "spread": Cxx[:, 0, 0] / np.where(n > 0, n, np.nan),
        "fitted": fitted,
        "converged": converged,
        "separated": fitted & separated(y, mu, wf),
        "rescued": np.zeros(g, dtype=bool),
        "influence": infl,
    }
    if names is not None and refit and out["separated"].any():
        i = np.flatnonzero(out["separated"])
        r2 = poisson_block(
            X[i],
            y[i],
            wf[i] * ~collapsed(y[i], mu[i], wf[i]),
            se=se,
            min_obs=min_obs,
            maxiter=maxiter,
            tol=tol,
            names=names,
            events_per_param=events_per_param,
            refit=False,
            week=None if week is None else week[i],
            compiled=compiled,
        )
        ok = rescued(
            names,
            keep[i],
            r2["keep"],
            r2["fitted"] & r2["converged"] & ~r2["separated"] & np.isfinite(r2["var"]),
        )
        j = i[ok]
        for key in ("params", "keep", "var", "model_var", "deviance", "converged", "influence"):
            out[key][j] = r2[key][ok]
        out["params"][j, 0] -= (r2["params"][ok, 1:] * shift[j]).sum(axis=1)
        out["rescued"][j] = True
    return out
