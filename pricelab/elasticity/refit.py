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
:func:`pricelab.elasticity.poisson_kernel.poisson_block` (:func:`refit_block`: batched IRLS
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
from collections.abc import Callable, Sequence

import numpy as np
import polars as pl

from .block_runs import Runs, blocks
from .compiled import GLM_JIT_ROWS, use_compiled
from .design import Design
from .groupfit import FLAG
from .hierarchical import OWN
from .padded_kernels import safe_solve
from .sparse import SEPARATION_MU

#: a Newton step below this (largest coefficient change) makes the next iteration try a
#: chord step with the same Hessian first (its own next step is then ~1e-6 or less)
LOOKAHEAD = 1e-3
#: cells per block of the refit (half the first stage's: its passes stay in cache; measured
#: 10% faster than 1e6 at 100k groups x 104 weeks, slower again below 2.5e5)
BLOCK_CELLS = 5e5
#: converged when the chord step is at most this times ``1 + max |coefficient|``
STEP_TOL = 1e-9


def refit_block(
    X: np.ndarray,
    y: np.ndarray,
    offset: np.ndarray,
    keep: np.ndarray,
    start: np.ndarray,
    maxiter: int = 50,
    tol: float = 1e-10,
    compiled: bool = False,
) -> dict[str, np.ndarray]:
    """Poisson GLM with an offset, by IRLS, for every group of a block.

    Parameters
    ----------
    X:
        ``(g, p, T)`` regressors besides the intercept (the controls; not log price).
        Overwritten (shifted in place by each group's first row; dropped columns zeroed).
    y:
        ``(g, T)`` counts; every row is used (a block holds whole groups, no padding).
    offset:
        ``(g, T)`` known part of the linear predictor (``post * log price``).
    keep:
        ``(g, p)`` columns that enter each group's model (the others get NaN).
    start:
        ``(g, 1 + p)`` starting coefficients, intercept first (NaN counts as 0).
    maxiter, tol:
        IRLS (Newton) stops when the relative change of the deviance is below ``tol``
        (statsmodels' GLM rule), when the next step is below :data:`STEP_TOL` (checked
        with the last Hessian, without a new pass over the weeks, once the steps are
        small), or after ``maxiter`` iterations.
    compiled:
        Run the Newton iterations compiled (:mod:`.glm_jit`, the same iterations one group
        at a time) instead of the numpy loop, their reference.

    Returns
    -------
    dict
        ``params (g, 1 + p)`` (intercept first, NaN for columns not kept), ``mu (g, T)``
        fitted means, ``deviance``, ``converged`` and ``ok`` (converged, finite, full
        rank on the kept columns and not separated, as :func:`.sparse.separated`).
    """
    g, p, T = X.shape
    m = p + 1
    shift = X[:, :, 0].copy()  # conditioning: origin at the first week
    X -= shift[:, :, None]
    if not keep.all():
        X *= keep[:, :, None]  # dropped columns: zero rows
    keep1 = np.c_[np.ones(g, dtype=bool), keep]
    beta = np.where(keep1, np.nan_to_num(start), 0.0)
    beta[:, 0] += (beta[:, 1:] * shift).sum(axis=1)
    drop = np.zeros((g, m, m))  # identity rows for dropped columns
    drop[:, np.arange(m), np.arange(m)] = ~keep1
    Xy = np.c_[y.sum(axis=1), np.matmul(X, y[:, :, None])[:, :, 0]]  # [1 X]'y
    ylogy = np.log(y, out=np.zeros_like(y), where=y > 0)  # the deviance's constant part
    ylogy *= y
    ylogy -= y * (1.0 + offset)
    c = 2.0 * ylogy.sum(axis=1)
    mu = _mean(X, beta, offset)
    # the intercept that maximises the likelihood given the other coefficients, in closed
    # form: the start's level error (the slope's shift times the typical log price) is gone
    # before the first Newton step, which then only has the controls' smaller moves left
    with np.errstate(divide="ignore", invalid="ignore"):
        level = y.sum(axis=1) / mu.sum(axis=1)
    level = np.where(np.isfinite(level) & (level > 0), level, 1.0)
    beta[:, 0] += np.log(level)
    mu *= level[:, None]
    dev = c - 2.0 * (beta * Xy).sum(axis=1) + 2.0 * mu.sum(axis=1)
    converged = np.zeros(g, dtype=bool)
    ok = np.isfinite(dev)
    act = np.flatnonzero(ok)
    hess = drop.copy()  # last [1 X]' diag(mu) [1 X] per group
    small = np.zeros(g, dtype=bool)  # last Newton step below LOOKAHEAD
    jit = _refit_jit(compiled)
    if jit is not None:  # the same iterations, compiled, one group at a time
        Xc, off = np.ascontiguousarray(X), np.ascontiguousarray(offset, dtype=np.float64)
        args = (Xc, off, Xy, keep1, beta, mu, dev, c, act, maxiter, tol, STEP_TOL, LOOKAHEAD)
        jit(*args, converged, ok)
        act = act[:0]
    for _ in range(maxiter):
        if act.size == 0:
            break
        if small[act].any():
            # look ahead with the last Hessian (a chord step, one mat-vec): a group whose
            # next step is negligible is done without another Gram pass. Its error after
            # the chord step is ~|last step| x |chord step|, far below STEP_TOL.
            i = act[small[act]]
            score = Xy[i].copy()
            score[:, 0] -= mu[i].sum(axis=1)
            score[:, 1:] -= np.matmul(X[i], mu[i][:, :, None])[:, :, 0]
            chord, solved = _solve(hess[i], score)
            tiny = solved & (
                np.abs(chord).max(axis=1) <= STEP_TOL * (1.0 + np.abs(beta[i]).max(axis=1))
            )
            beta[i[tiny]] += chord[tiny]
            converged[i[tiny]] = True
            act = act[~converged[act]]
            if act.size == 0:
                break
        full = act.size == g
        Xa, ma, oa = (X, mu, offset) if full else (X[act], mu[act], offset[act])
        XW = Xa * ma[:, None, :]
        A = drop if full else drop[act]
        A = A.copy()  # [1 X]' diag(mu) [1 X]
        A[:, 0, 0] += ma.sum(axis=1)
        A[:, 0, 1:] = A[:, 1:, 0] = XW.sum(axis=2)
        A[:, 1:, 1:] += np.matmul(XW, Xa.transpose(0, 2, 1))
        # Newton step on the score [1 X]'(y - mu) (row 0 of A is [1 X]'mu): the IRLS update
        step, solved = _solve(A, Xy[act] - A[:, 0, :])
        hess[act] = A
        small[act] = np.abs(step).max(axis=1) <= LOOKAHEAD
        ba = beta[act] + step
        ma = _mean(Xa, ba, oa)
        d = c[act] - 2.0 * (ba * Xy[act]).sum(axis=1) + 2.0 * ma.sum(axis=1)
        beta[act], mu[act] = ba, ma
        done = (np.abs(d - dev[act]) <= tol * (np.abs(d) + tol)) & solved
        dev[act] = d
        ok[act] = solved & np.isfinite(d)
        converged[act[done]] = True
        act = act[~done & ok[act]]
    params = np.where(keep1, beta, np.nan)
    params[:, 0] = beta[:, 0] - (beta[:, 1:] * shift).sum(axis=1)
    good = converged & ok & np.isfinite(params[:, 0])
    ybar = y.mean(axis=1, keepdims=True)  # .sparse.separated on whole blocks
    good &= ~((mu < SEPARATION_MU * ybar) & (y == 0)).any(axis=1)
    return {"params": params, "mu": mu, "deviance": dev, "converged": converged, "ok": good}


def _refit_jit(compiled: bool) -> Callable[..., None] | None:
    """The compiled refit loop (:mod:`.glm_jit`) when asked for, or None (or no numba)."""
    if not compiled:
        return None
    from .compiled import load_kernel

    return load_kernel("glm_jit", "refit_irls")


def _mean(X: np.ndarray, beta: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """``exp(b0 + X'b + offset)`` for ``X (g, p, T)``, ``beta (g, 1 + p)``."""
    eta = np.matmul(beta[:, None, 1:], X)[:, 0]
    eta += beta[:, :1]
    eta += offset
    np.clip(eta, -700.0, 700.0, out=eta)
    return np.exp(eta, out=eta)


def _solve(A: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Stacked ``A x = b`` (``ok`` False and ``x`` 0 where a system is singular or not finite)."""
    try:
        x = np.linalg.solve(A, b[:, :, None])[:, :, 0]
    except np.linalg.LinAlgError:
        x = safe_solve(A, b)[0]
    ok = np.asarray(np.isfinite(x).all(axis=1), dtype=bool)
    return np.where(ok[:, None], x, 0.0), ok


def refit_mask(out: dict[str, np.ndarray]) -> np.ndarray:
    """Groups to refit: an own fit (not separated) whose slope :func:`shrink` moved.

    ``out`` holds the shrunk arrays (``elasticity`` the posterior mean, ``params``) and
    :data:`OWN`, each group's own estimate (NaN without an own fit).
    """
    own, post = out[OWN], out["elasticity"]
    sep = (out["flags"] & FLAG["separated"]) > 0
    with np.errstate(invalid="ignore"):
        return (
            np.isfinite(own)
            & np.isfinite(post)
            & (own != post)
            & ~sep
            & np.isfinite(out["params"][:, 0])
        )


def _apply(
    out: dict[str, np.ndarray],
    todo: np.ndarray,
    pos: np.ndarray,
    X: np.ndarray,
    q: np.ndarray,
    maxiter: int,
    compiled: bool = False,
) -> int:
    """Refit the ``todo`` groups among sorted positions ``pos`` (block ``X (g, 1 + p, T)``,
    log price first); write their params in place; return how many kept the fallback."""
    sel = todo[pos]
    if not sel.any():
        return 0
    if sel.all():  # views, no copies
        at, Xc, lp, y = pos, X[:, 1:], X[:, 0], q
    else:
        i = np.flatnonzero(sel)
        at, Xc, lp, y = pos[i], X[i, 1:], X[i, 0], q[i]
    start = out["params"][at]
    ctrl = np.delete(start, 1, axis=1)  # intercept, controls
    offset, keep = out["elasticity"][at, None] * lp, np.isfinite(ctrl[:, 1:])
    r = refit_block(Xc, y, offset, keep, ctrl, maxiter=maxiter, compiled=compiled)
    new = start.copy()
    new[:, 0] = r["params"][:, 0]
    new[:, 2:] = r["params"][:, 1:]
    out["params"][at] = np.where(r["ok"][:, None], new, start)
    return int((~r["ok"]).sum())


def refit_runs(
    df: pl.DataFrame,
    by: Sequence[str],
    controls: Sequence[str],
    origin: dt.date | None,
    out: dict[str, np.ndarray],
    max_cells: float = 4e6,
    maxiter: int = 50,
    starts: np.ndarray | None = None,
    compiled: bool | None = None,
) -> int:
    """Refit every moved group of a shrunk fast-path fit (in place).

    Parameters
    ----------
    df, by, controls, origin:
        What :func:`pricelab.elasticity.glm_blocks.fit_poisson_runs` was given.
    out:
        Its per-group arrays (groups sorted by ``by``) after
        :func:`~pricelab.elasticity.hierarchical.shrink`; ``params`` is updated.
    max_cells, maxiter:
        Block size (at most :data:`BLOCK_CELLS`) and IRLS iteration cap.
    starts:
        Each group's first row when the caller knows the groups are contiguous.
    compiled:
        The Newton iterations compiled (:mod:`.glm_jit`); None: from
        :data:`.compiled.GLM_JIT_ROWS` rows (``$PRICELAB_JIT``).

    Returns
    -------
    int
        Number of moved groups whose refit failed and kept the shrunk coefficients.
    """
    runs = Runs(df, by, controls, origin, starts)
    G = runs.n_groups
    if runs.by:
        order = (
            runs.df[runs.starts].select(runs.by).with_row_index("_g").sort(runs.by)["_g"].to_numpy()
        )
    else:  # one group, or groups given by ``starts`` (already in order)
        order = np.arange(G, dtype=np.int64)
    sorted_pos = np.empty(G, dtype=np.int64)
    sorted_pos[order] = np.arange(G)
    failed = [0]
    todo = refit_mask(out)
    jit = use_compiled(df.height if compiled is None else compiled, GLM_JIT_ROWS)

    def fit(gs: np.ndarray, rows: object, X: np.ndarray, q: np.ndarray) -> None:
        failed.append(_apply(out, todo, sorted_pos[gs], X, q, maxiter, jit))

    runs.run(fit, min(max_cells, BLOCK_CELLS))
    return int(sum(failed))


def refit_design(
    d: Design, out: dict[str, np.ndarray], max_cells: float = BLOCK_CELLS, maxiter: int = 50
) -> int:
    """:func:`refit_runs` on a :class:`~pricelab.elasticity.design.Design` (in place).

    ``out`` is indexed by ``d``'s group codes (rows sorted by group, as ``d.keys``);
    returns the number of moved groups whose refit failed.
    """
    counts = np.bincount(d.codes, minlength=d.n_groups)  # every group has rows
    failed = 0
    todo = refit_mask(out)
    jit = use_compiled(d.X.shape[0], GLM_JIT_ROWS)
    for gs, rows, width in blocks(counts, d.X.shape[1] + 2, max_cells):
        idx = (
            rows
            if isinstance(rows, np.ndarray)
            else np.arange(rows.start, rows.stop).reshape(gs.size, width)
        )
        X = np.ascontiguousarray(d.X[idx, 1:].transpose(0, 2, 1))  # (g, k - 1, width)
        failed += _apply(out, todo, gs, X, d.q[idx], maxiter, jit)
    return failed
