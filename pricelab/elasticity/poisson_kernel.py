"""Batched Poisson regression (IRLS) on group blocks, laid out as ``block_kernels`` lays
out OLS: ``(g, p, T)`` with padding rows of weight 0, columns dropped per group by the
in-order Cholesky (:func:`.block_kernels.masked_cholesky`). The iterations and the variance
part run batched in numpy, or compiled one group at a time (:mod:`.glm_jit`, the same
iterations and sums) when asked for; the numpy path is the compiled one's reference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .block_kernels import cholesky_solve, masked_cholesky
from .robust import CLUSTER_WEEKS, cluster_ss, leverage
from .sparse import EVENTS_PER_PARAM, collapsed, column_tol, events_mask, rescued, separated


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
        Not changed: the fit works on a copy shifted by each group's first row, written
        into the intercept-augmented design it needs anyway (no extra memory).
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
    Xf = np.empty((g, p + 1, T))  # intercept row, then the shifted slopes (dropped: zeroed)
    Xf[:, 0] = 1.0
    Xs = Xf[:, 1:]
    np.subtract(X, shift[:, :, None], out=Xs)
    n = w.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mx = (Xs * w[:, None, :]).sum(axis=2) / n[:, None]
        Cxx = (
            np.matmul(Xs * w[:, None, :], Xs.transpose(0, 2, 1))
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
    Xs *= keep[:, :, None]
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
        r2 = poisson_block(  # shifts X[i] by the same first rows: its intercepts are final
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
        out["rescued"][j] = True
    return out
