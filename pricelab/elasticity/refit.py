"""Refit a group's other coefficients given its shrunk elasticity (``hierarchical``).

:func:`pricelab.elasticity.hierarchical.shrink` moves each group's price slope from its
own Poisson estimate ``e_j`` to the posterior mean ``post_j``. The intercept and the
controls (promo, Fourier terms, trend, numeric columns) were estimated jointly with
``e_j``: a control correlated with price (a promotion is a price cut) absorbed part of
the slope's error, and the intercept absorbed ``e_j`` times the level of log price.
Paired with ``post_j`` they predict badly wherever the price departs from the fit
window's typical price. Here they are re-estimated by the group's own likelihood with
the slope held at ``post_j``: a Poisson GLM of the weekly units on the intercept and the
group's kept controls with ``post_j * log(price)`` as an offset (the conditional maximum
likelihood estimate given the slope). The columns are the ones the group's own fit kept
(:mod:`.sparse` rules), so the refit never adds a parameter its data could not support.

The refit runs block by block on the same ``(g, p, T)`` layout as
:func:`pricelab.elasticity.sumkernels.poisson_block` (:func:`refit_block`: batched IRLS
with an offset, started from the shrunk coefficients, which are already close), through
the fast path's group runs (:func:`refit_runs`) or a sorted
:class:`~pricelab.elasticity.design.Design` (:func:`refit_design`, what a partition
holds). Groups are refitted when they have an own fit whose slope moved and whose fit
was not separated; a refit that does not converge, or separates, keeps the shrunk
coefficients (the slope shift moved into the intercept at the mean log price, the
fallback :func:`~pricelab.elasticity.hierarchical.shrink` writes). A group whose slope
did not move keeps its own coefficients exactly.

Standard errors: only the elasticity has one (its posterior standard deviation). The
refitted intercept and controls are point estimates conditional on the slope; their
conditional Fisher standard errors would ignore the slope's uncertainty and are not
reported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import polars as pl

from .design import Design
from .fastols import Runs, blocks
from .groupfit import FLAG
from .hierarchical import OWN
from .sparse import separated
from .sumkernels import cholesky_solve, masked_cholesky


def refit_block(X: np.ndarray, y: np.ndarray, offset: np.ndarray, keep: np.ndarray,
                start: np.ndarray, maxiter: int = 50, tol: float = 1e-10
                ) -> dict[str, np.ndarray]:
    """Poisson GLM with an offset, by IRLS, for every group of a block.

    Parameters
    ----------
    X:
        ``(g, p, T)`` regressors besides the intercept (the controls; not log price).
        Not modified.
    y:
        ``(g, T)`` counts; every row is used (a block holds whole groups, no padding).
    offset:
        ``(g, T)`` known part of the linear predictor (``post * log price``).
    keep:
        ``(g, p)`` columns that enter each group's model (the others get NaN).
    start:
        ``(g, 1 + p)`` starting coefficients, intercept first (NaN counts as 0).
    maxiter, tol:
        IRLS stops when the relative change of the deviance is below ``tol``
        (statsmodels' GLM rule) or after ``maxiter`` iterations.

    Returns
    -------
    dict
        ``params (g, 1 + p)`` (intercept first, NaN for columns not kept), ``mu (g, T)``
        fitted means, ``deviance``, ``converged`` and ``ok`` (converged, finite, full
        rank on the kept columns and not separated, :func:`.sparse.separated`).
    """
    g, p, T = X.shape
    shift = X[:, :, 0].copy()                         # conditioning: origin at the first week
    Xf = np.empty((g, p + 1, T))
    Xf[:, 0] = 1.0
    Xf[:, 1:] = (X - shift[:, :, None]) * keep[:, :, None]
    keep1 = np.c_[np.ones(g, dtype=bool), keep]
    beta = np.where(keep1, np.nan_to_num(start), 0.0)
    beta[:, 0] += (beta[:, 1:] * shift).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0)
    eta = np.clip(np.matmul(beta[:, None, :], Xf)[:, 0] + offset, -700.0, 700.0)
    mu = np.exp(eta)
    dev = 2.0 * (ylogy - y * eta - y + mu).sum(axis=1)
    converged = np.zeros(g, dtype=bool)
    rank_ok = np.ones(g, dtype=bool)
    act = np.flatnonzero(np.isfinite(dev))
    for _ in range(maxiter):
        if act.size == 0:
            break
        Xa, ya, ma, ea, oa = Xf[act], y[act], mu[act], eta[act], offset[act]
        XW = Xa * ma[:, None, :]
        A = np.matmul(XW, Xa.transpose(0, 2, 1))
        b = np.matmul(XW, (ea - oa + (ya - ma) / ma)[:, :, None])
        L, kk = masked_cholesky(A, tol=0.0)
        ok = (kk == keep1[act]).all(axis=1)
        ba = cholesky_solve(L, kk, b)[:, :, 0]
        ea = np.clip(np.matmul(ba[:, None, :], Xa)[:, 0] + oa, -700.0, 700.0)
        ma = np.exp(ea)
        d = 2.0 * (ylogy[act] - ya * ea - ya + ma).sum(axis=1)
        beta[act], mu[act], eta[act] = ba, ma, ea
        done = (np.abs(d - dev[act]) <= tol * (np.abs(d) + tol)) & ok
        dev[act] = d
        rank_ok[act] = ok
        converged[act[done]] = True
        act = act[~done & ok & np.isfinite(d)]
    params = np.where(keep1, beta, np.nan)
    params[:, 0] = beta[:, 0] - (beta[:, 1:] * shift).sum(axis=1)
    good = converged & rank_ok & np.isfinite(params[:, 0]) & np.isfinite(dev)
    good &= ~separated(y, mu, np.ones_like(y))
    return {"params": params, "mu": mu, "deviance": dev, "converged": converged, "ok": good}


def refit_mask(out: dict[str, np.ndarray]) -> np.ndarray:
    """Groups to refit: an own fit (not separated) whose slope :func:`shrink` moved.

    ``out`` holds the shrunk arrays (``elasticity`` the posterior mean, ``params``) and
    :data:`OWN`, each group's own estimate (NaN without an own fit).
    """
    own, post = out[OWN], out["elasticity"]
    sep = (out["flags"] & FLAG["separated"]) > 0
    with np.errstate(invalid="ignore"):
        return np.isfinite(own) & np.isfinite(post) & (own != post) & ~sep \
            & np.isfinite(out["params"][:, 0])


def _apply(out: dict[str, np.ndarray], pos: np.ndarray, X: np.ndarray, q: np.ndarray,
           maxiter: int) -> int:
    """Refit the groups at sorted positions ``pos`` (block ``X (g, 1 + p, T)``, log price
    first); write their params in place; return how many kept the fallback."""
    sel = refit_mask(out)[pos]
    if not sel.any():
        return 0
    i, at = np.flatnonzero(sel), pos[sel]
    post = out["elasticity"][at]
    start = out["params"][at]
    ctrl = np.delete(start, 1, axis=1)                        # intercept, controls
    r = refit_block(X[i, 1:], q[i], post[:, None] * X[i, 0], np.isfinite(ctrl[:, 1:]), ctrl,
                    maxiter=maxiter)
    new = start.copy()
    new[:, 0] = r["params"][:, 0]
    new[:, 2:] = r["params"][:, 1:]
    out["params"][at] = np.where(r["ok"][:, None], new, start)
    return int((~r["ok"]).sum())


def refit_runs(df: pl.DataFrame, by: Sequence[str], controls: Sequence[str],
               origin: dt.date | None, out: dict[str, np.ndarray], max_cells: float = 4e6,
               maxiter: int = 50) -> int:
    """Refit every moved group of a shrunk fast-path fit (in place).

    Parameters
    ----------
    df, by, controls, origin:
        What :func:`pricelab.elasticity.fastols.fit_poisson_runs` was given.
    out:
        Its per-group arrays (groups sorted by ``by``) after
        :func:`~pricelab.elasticity.hierarchical.shrink`; ``params`` is updated.
    max_cells, maxiter:
        Block size and IRLS iteration cap.

    Returns
    -------
    int
        Number of moved groups whose refit failed and kept the shrunk coefficients.
    """
    runs = Runs(df, by, controls, origin)
    G = runs.n_groups
    if runs.by:
        order = runs.df[runs.starts].select(runs.by).with_row_index("_g").sort(
            runs.by)["_g"].to_numpy()
    else:
        order = np.zeros(1, dtype=np.int64)
    sorted_pos = np.empty(G, dtype=np.int64)
    sorted_pos[order] = np.arange(G)
    failed = [0]

    def fit(gs: np.ndarray, X: np.ndarray, q: np.ndarray) -> None:
        failed.append(_apply(out, sorted_pos[gs], X, q, maxiter))

    runs.run(fit, max_cells)
    return int(sum(failed))


def refit_design(d: Design, out: dict[str, np.ndarray], max_cells: float = 1e6,
                 maxiter: int = 50) -> int:
    """:func:`refit_runs` on a :class:`~pricelab.elasticity.design.Design` (in place).

    ``out`` is indexed by ``d``'s group codes (rows sorted by group, as ``d.keys``);
    returns the number of moved groups whose refit failed.
    """
    counts = np.bincount(d.codes, minlength=d.n_groups)    # every group has rows
    failed = 0
    for gs, rows, width in blocks(counts, d.X.shape[1] + 2, max_cells):
        idx = rows if isinstance(rows, np.ndarray) else \
            np.arange(rows.start, rows.stop).reshape(gs.size, width)
        X = np.ascontiguousarray(d.X[idx, 1:].transpose(0, 2, 1))   # (g, k - 1, width)
        failed += _apply(out, gs, X, d.q[idx], maxiter)
    return failed
