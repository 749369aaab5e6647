"""Partial pooling of per-group Poisson elasticities, integrating over the between-group variance.

Each group's Poisson estimate ``e_j`` (sampling variance ``v_j``) is shrunk toward the
mean ``mu_L`` of its pooling level ``L`` (category × market, else brand × market, else
market, else everything: the first level with at least ``min_members`` usable
estimates) under the normal hierarchical model ``e_j ~ N(theta_j, v_j)``,
``theta_j ~ N(mu_L, tau_L²)`` with a flat prior on ``mu_L`` and a flat prior on ``tau_L``
over ``[0, 5 max(sd(e), sqrt(mean v))]`` of the level (Gelman et al., *Bayesian Data
Analysis*, 3rd ed., section 5.4). The bound makes the prior proper: it does not matter when
a level has more than a handful of groups (the likelihood has died out well before it),
but with 3-4 groups the flat prior to infinity leaves a tail in which the posterior mean of
``tau²`` and a new member's predictive variance diverge; the bound is part of the model
(tested against quadrature under this prior on real data). Each level has its own ``tau_L`` by
default; ``tau="common"`` shares one ``tau`` by all levels of a layer (the usual
random-slope mixed model): tighter when the spreads really are equal, but it under-covers
when they are not or when the sampling variances are off by level (measured on sparse
synthetic panels: per-level 95% coverage 0.92-0.98 over 20 seeds, common 0.72-0.99).
Given ``tau``:

    B_j = tau² / (tau² + v_j),   mu_hat = sum w_j e_j / sum w_j,   w_j = 1 / (v_j + tau²)
    E[theta_j | tau] = mu_hat + B_j (e_j - mu_hat)
    Var[theta_j | tau] = B_j v_j + (1 - B_j)² / sum w_j

and ``p(tau | e)`` is the restricted (REML) likelihood
``(sum w)^-1/2 prod (v_j + tau²)^-1/2 exp(-sum w_j (e_j - mu_hat)² / 2)``. The posterior
mean and variance of ``theta_j`` average these over ``p(tau | e)`` on a grid (vectorised
over levels with ``bincount``). Plugging in a single REML/moment estimate of ``tau²``
instead ignores its uncertainty; when that estimate sits at or near 0 (frequent with
sparse data and ~50 groups per level) every group is pulled onto the level mean with a
far too small variance. Averaging over ``tau`` is the exact form of the Morris correction
(the level-mean term ``(1 - B)² / sum w`` is the other half of it).

``v_j`` is the group's own robust variance (by default leverage-corrected and clustered
by 13-week blocks and weeks of the year, ``se="cluster"``), floored at its model-based
(Fisher) variance: the Poisson variance is what the data would show without
overdispersion, and the floor keeps a
sparse group whose sandwich happens to come out small from being over-trusted. (Until
0.x the Fisher variance was scaled by the level's *median* robust/Fisher ratio; on
scanner data that ratio runs from 48 to 66,000 across groups, so high-volume groups got
standard errors 2-3x too small and low-volume groups were over-shrunk: split-half RMS z
1.44 on Dominick's orange juice, 1.86 in the top volume quartile.) A group without a usable estimate
(no price variation, too few weeks, no sales, failed fit) gets the level's predictive
distribution for a new member, flagged ``shrunk`` beside the reason.

Groups of a level that share weekly shocks (one national promotion calendar, the weather,
holidays) have correlated sampling errors, and ``1 / sum w`` is then far too small a
variance for the level mean. With the groups' influence sums by calendar week
(``out["calendar"]``, :func:`.robust.calendar_sums`; the same weeks for every group) the
level mean's variance and each posterior add the cross-group covariances
(:func:`.robust.shared_covariance`: two-way clusters, 13-week blocks and, over more than a
year, weeks of the year, with a t(c-1) few-cluster factor), never going below the
independent-errors variance. Odd/even split-half RMS z on the 45 avocado regions: 1.40 with
independent errors, 1.21 with 13-week blocks, 1.11 with the week-of-year clusters too
(three of the four Super Bowl weeks, when avocado prices drop and sales jump everywhere,
are odd weeks), 1.08 with each group's own variance two-way as well
(:func:`.robust.cluster_ss`).

The other coefficients: :func:`shrink` sees only per-group summaries, so it moves the
intercept by ``(e_j - post_j) * mean log price`` (the mean over the group's fit weeks):
the expected log sales at the group's own typical price are unchanged. That is a first
step only: the intercept and the controls (promo, trend, Fourier terms) were estimated
together with ``e_j`` and absorbed part of its error (a promotion is also a price cut).
Given the group's weeks, :mod:`pricelab.elasticity.refit` re-estimates them by the
group's own Poisson likelihood with the slope fixed at ``post_j`` (``post_j * log price``
as an offset); :func:`shrink` keeps each group's own estimate in ``out["own_elasticity"]``
for it. The posterior standard deviation stays the only standard error (the refitted
coefficients are conditional point estimates). A group without an own fit gets
``log(mean weekly units) - post_j * mean log price`` and no controls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from .groupfit import FLAG
from .robust import Shared

#: key of ``out`` where :func:`shrink` keeps each group's own (unshrunk) estimate
OWN = "own_elasticity"
SHRUNK_WEIGHT = 0.25  # flag "shrunk" when the prior gets at least this weight
GRID = 48  # grid points per level for tau (two passes: locate, then refine)
SLICE = 4_096  # groups per pass over the (groups x grid) arrays (bounded memory)
_SPAN = 25.0  # log-density drop that bounds the refined grid


@dataclass
class LevelFit:
    """Per-level posterior summaries and per-group posterior moments."""

    mean: np.ndarray  # (n,) posterior mean of theta_j
    var: np.ndarray  # (n,) posterior variance of theta_j
    prior_weight: np.ndarray  # (n,) posterior mean of 1 - B_j
    mu: np.ndarray  # (L,) posterior mean of mu_L
    tau2: np.ndarray  # (L,) posterior mean of tau_L²
    new_mean: np.ndarray  # (L,) predictive mean of a new member's theta
    new_var: np.ndarray  # (L,) predictive variance of a new member's theta
    count: np.ndarray  # (L,) usable estimates per level


def level_chain(df: pl.DataFrame, pool: list[str] | None) -> list[list[str]]:
    """Pooling levels from most to least specific."""
    if pool:
        return [pool, []]
    chain = []
    if "category" in df.columns:
        chain.append(["category", "market"] if "market" in df.columns else ["category"])
    if "brand" in df.columns:
        chain.append(["brand", "market"] if "market" in df.columns else ["brand"])
    chain += [["market"], []]
    return chain


def _sum(lvl: np.ndarray, vals: np.ndarray, L: int) -> np.ndarray:
    """Per-level sums of ``vals (n, K)`` -> ``(L, K)``."""
    K = vals.shape[1]
    idx = (lvl[:, None] * K + np.arange(K)[None, :]).ravel()
    return np.bincount(idx, weights=vals.ravel(), minlength=L * K).reshape(L, K)


def _log_post(
    e: np.ndarray, v: np.ndarray, lvl: np.ndarray, L: int, tau: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Log restricted likelihood on the grid ``tau (L, K)``; also ``mu_hat`` and ``sum w``.

    Groups are taken :data:`SLICE` at a time (``(n, K)`` arrays of 300k groups were the
    peak memory of ``estimate --model hierarchical``)."""
    sw, swe, q = (np.zeros(tau.shape) for _ in range(3))
    for s in _slices(e.size):
        w = 1.0 / (v[s, None] + tau[lvl[s]] ** 2)
        sw += _sum(lvl[s], w, L)
        swe += _sum(lvl[s], w * e[s, None], L)
    mu = swe / sw
    for s in _slices(e.size):
        w = 1.0 / (v[s, None] + tau[lvl[s]] ** 2)
        q += _sum(lvl[s], w * (e[s, None] - mu[lvl[s]]) ** 2 - np.log(w), L)
    return -0.5 * (np.log(sw) + q), mu, sw


def _slices(n: int) -> list[slice]:
    """Consecutive slices of at most :data:`SLICE` groups covering ``range(n)``."""
    return [slice(i, min(i + SLICE, n)) for i in range(0, max(n, 1), SLICE)]


def _joint(logp: np.ndarray, common: bool) -> np.ndarray:
    """With a common ``tau`` every level gets the sum of the levels' log likelihoods."""
    if not common:
        return logp
    total = logp.sum(axis=0)
    return np.broadcast_to(total, logp.shape).copy()


def _weights(logp: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """Normalised trapezoid weights of a density known up to a constant on each row's grid."""
    p = np.exp(logp - logp.max(axis=1, keepdims=True))
    h = np.diff(tau, axis=1)
    trap = np.zeros_like(tau)
    trap[:, :-1] += h / 2
    trap[:, 1:] += h / 2
    p = p * trap
    s = p.sum(axis=1, keepdims=True)
    flat = (s[:, 0] <= 0) | ~np.isfinite(s[:, 0])
    p[flat] = 1.0 / tau.shape[1]
    return p / np.where(flat[:, None], 1.0, s)


def pool_level(
    e: np.ndarray,
    v: np.ndarray,
    lvl: np.ndarray,
    L: int,
    grid: int = GRID,
    common_tau: bool = False,
    calendar: np.ndarray | None = None,
    rows: np.ndarray | None = None,
) -> LevelFit:
    """Posterior moments of ``theta_j`` for estimates ``e`` with variances ``v`` in levels ``lvl``.

    Parameters
    ----------
    e, v:
        Usable estimates and their sampling variances (finite, ``v > 0``).
    lvl:
        Level code per estimate, in ``0..L-1``.
    L:
        Number of levels.
    grid:
        Points of the ``tau`` grid per level (a coarse pass over ``[0, 5 sd(e)]`` locates
        the posterior, a second pass of the same size refines it).
    common_tau:
        One ``tau`` shared by all levels (the usual mixed model: level means differ, the
        spread around them is common), its posterior the product of the levels' restricted
        likelihoods; ``False`` gives each level its own ``tau``.
    calendar:
        ``(n, nw)`` sums of each estimate's influence by calendar week (the same weeks
        for every group, :func:`.robust.calendar_sums`). With it the sampling errors of
        groups in a level may be correlated (shared weekly shocks): the level mean's
        variance and each posterior add the cross-group covariances
        ``c_ij`` (:func:`.robust.shared_covariance`). Without it the errors are
        independent.
    rows:
        The estimates' rows of ``calendar`` (default: all, in order): no copy of it.

    Returns
    -------
    LevelFit
        Per-level arrays have length ``L``; levels without estimates hold NaN.
    """
    present, lvl = np.unique(lvl, return_inverse=True)
    fit = _pool(e, v, lvl, present.size, grid, common_tau, calendar, rows)
    for name in ("mu", "tau2", "new_mean", "new_var", "count"):
        full = np.full(L, 0.0 if name == "count" else np.nan)
        full[present] = getattr(fit, name)
        setattr(fit, name, full)
    return fit


def _pool(
    e: np.ndarray,
    v: np.ndarray,
    lvl: np.ndarray,
    L: int,
    grid: int,
    common_tau: bool,
    calendar: np.ndarray | None = None,
    rows: np.ndarray | None = None,
) -> LevelFit:
    """:func:`pool_level` on compact level codes (every level has members)."""
    cnt = np.bincount(lvl, minlength=L).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):  # levels of one member: s2 = 0
        m0 = np.bincount(lvl, weights=e, minlength=L) / cnt
        s2 = np.bincount(lvl, weights=(e - m0[lvl]) ** 2, minlength=L) / np.maximum(cnt - 1, 1)
        vbar = np.bincount(lvl, weights=v, minlength=L) / cnt
    top = 5.0 * np.sqrt(np.nan_to_num(np.maximum(s2, vbar)))
    top = np.where(top > 0, top, 1.0)
    if common_tau:
        top = np.full(L, float(np.median(top)))
    steps = np.linspace(0.0, 1.0, grid)[None, :]
    tau = top[:, None] * steps
    logp = _joint(_log_post(e, v, lvl, L, tau)[0], common_tau)
    # refine: the part of [0, top] where the log density is within _SPAN of its maximum
    inside = logp >= logp.max(axis=1, keepdims=True) - _SPAN
    first = np.argmax(inside, axis=1)
    last = grid - 1 - np.argmax(inside[:, ::-1], axis=1)
    lo = tau[np.arange(L), np.maximum(first - 1, 0)]
    hi = tau[np.arange(L), np.minimum(last + 1, grid - 1)]
    tau = lo[:, None] + (hi - lo)[:, None] * steps
    logp, mu, sw = _log_post(e, v, lvl, L, tau)
    logp = _joint(logp, common_tau)
    p = _weights(logp, tau)  # (L, K)
    t2 = tau**2
    vmu = vmu0 = 1.0 / sw  # variance of the level mean's estimate (L, K)
    shared: Shared | None = None
    if calendar is not None:
        # never tighter than independent errors: negative cross terms from a few blocks
        # are mostly noise (the floor keeps coverage on panels without shared shocks)
        shared = Shared(calendar, v, lvl, L, t2, rows)
        vmu = vmu0 + np.maximum(shared.cross_mu, 0.0)
    mean, var, prior = _posterior(e, v, lvl, p, mu, t2, vmu0, shared)
    mu_mean = (p * mu).sum(axis=1)
    new_var = (p * (t2 + vmu + mu * mu)).sum(axis=1) - mu_mean**2
    return LevelFit(
        mean=mean,
        var=np.maximum(var, 0.0),
        prior_weight=prior,
        mu=mu_mean,
        tau2=(p * t2).sum(axis=1),
        new_mean=mu_mean,
        new_var=np.maximum(new_var, 0.0),
        count=cnt,
    )


def _posterior(
    e: np.ndarray,
    v: np.ndarray,
    lvl: np.ndarray,
    p: np.ndarray,
    mu: np.ndarray,
    t2: np.ndarray,
    vmu0: np.ndarray,
    shared: Shared | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior mean, variance and prior weight of each ``theta_j``: the moments given
    ``tau`` averaged over the grid (weights ``p (L, K)``), one grid point at a time."""
    mean, second, prior = (np.zeros(e.size) for _ in range(3))
    for k in range(t2.shape[1]):
        tk, mk = t2[lvl, k], mu[lvl, k]
        B = tk / (tk + v)
        m = mk + B * (e - mk)
        c = 1.0 - B
        s = B * v + c * c * vmu0[lvl, k]
        if shared is not None:
            y = shared.column(k)
            s += np.maximum(c * c * shared.cross_mu[lvl, k] + 2 * B * c * y, 0.0)
        pk = p[lvl, k]
        mean += pk * m
        second += pk * (s + m * m)
        prior += pk * c
    return mean, second - mean**2, prior


def shrink(
    out: dict[str, np.ndarray],
    groups: Any,
    mean_q: np.ndarray | None,
    pool: list[str] | None,
    min_members: int = 3,
    tau: str = "level",
) -> tuple[dict[str, np.ndarray], list[list[str]]]:
    """Replace per-group estimates by their hierarchical posteriors (in place).

    ``groups`` is either one row per group (a polars frame with its level columns:
    category, brand, market), ``mean_q`` then the group's mean weekly quantity, or a
    :class:`~pricelab.elasticity.design.Design` (anything with ``frame, codes, q``: rows
    sorted by group), from which both are taken (``mean_q`` is ignored). ``tau="level"`` estimates the
    between-group spread per level (e.g. per category ×
    market), ``"common"`` shares it by all levels of one pooling layer. Returns the
    updated ``out`` (``out["own_elasticity"]`` holds the estimates before pooling, what
    :func:`pricelab.elasticity.refit.refit_runs` needs) and the pooling levels used.
    """
    if isinstance(groups, pl.DataFrame):
        attrs, q = groups, np.asarray(mean_q, dtype=np.float64)
    else:
        first = np.flatnonzero(np.r_[True, np.diff(groups.codes) != 0])
        attrs = groups.frame[first]
        G0 = first.size
        q = np.bincount(groups.codes, weights=groups.q, minlength=G0) / np.maximum(
            np.bincount(groups.codes, minlength=G0), 1
        )
    G = attrs.height
    chain = [lv for lv in level_chain(attrs, pool) if all(c in attrs.columns for c in lv)]
    e = out["elasticity"]
    usable = np.isfinite(e) & np.isfinite(out["model_var"]) & (out["model_var"] > 0)
    post = np.full(G, np.nan)
    pvar = np.full(G, np.nan)
    weight_prior = np.full(G, np.nan)
    assigned = np.zeros(G, dtype=bool)
    for lv in chain:
        if lv:
            codes = attrs.select(pl.struct(lv).rank("dense").cast(pl.Int64) - 1).to_series()
            lvl = codes.fill_null(-1).to_numpy()
        else:
            lvl = np.zeros(G, dtype=np.int64)
        okl = lvl >= 0
        L = int(lvl.max()) + 1 if lvl.size else 0
        if L == 0:
            continue
        sel = usable & okl
        cnt_all = np.bincount(lvl[sel], minlength=L)
        good_level = cnt_all >= min_members
        take = ~assigned & okl & good_level[np.where(okl, lvl, 0)]
        if not take.any():
            continue
        fit_rows = sel & good_level[np.where(okl, lvl, 0)]
        # each group's own robust variance, never below its Fisher (Poisson) variance
        v = np.fmax(out["std_error"] ** 2, out["model_var"])
        cal = out.get("calendar")
        fit = pool_level(
            e[fit_rows],
            v[fit_rows],
            lvl[fit_rows],
            L,
            common_tau=tau == "common",
            calendar=cal,
            rows=None if cal is None else np.flatnonzero(fit_rows),
        )
        pos = np.full(G, -1)
        pos[fit_rows] = np.arange(int(fit_rows.sum()))
        own = take & fit_rows
        post[own] = fit.mean[pos[own]]
        pvar[own] = fit.var[pos[own]]
        weight_prior[own] = fit.prior_weight[pos[own]]
        new = take & ~fit_rows
        post[new] = fit.new_mean[lvl[new]]
        pvar[new] = fit.new_var[lvl[new]]
        weight_prior[new] = 1.0
        assigned |= take
    # no level with min_members usable estimates (e.g. two items in all): nothing to pool
    # with, so a group keeps its own estimate, flagged
    alone = ~assigned & usable
    post[alone] = e[alone]
    pvar[alone] = out["std_error"][alone] ** 2
    out[OWN] = e.copy()  # the group's own estimate, for the refit
    shifted = np.where(np.isfinite(post) & np.isfinite(e), e - post, 0.0)
    params = out["params"]
    params[:, 0] = np.where(
        np.isfinite(params[:, 0]), params[:, 0] + shifted * out["mean_log_price"], np.nan
    )
    # groups without an own fit: intercept from mean sales at the mean log price
    nofit = ~np.isfinite(params[:, 1]) & np.isfinite(post) & (q > 0)
    with np.errstate(divide="ignore"):
        params[nofit, 0] = np.log(q[nofit]) - post[nofit] * out["mean_log_price"][nofit]
    params[:, 1] = post
    out["elasticity"] = post
    out["std_error"] = np.sqrt(pvar)
    out["flags"] |= np.where(assigned & (weight_prior >= SHRUNK_WEIGHT), FLAG["shrunk"], 0)
    out["flags"] |= np.where(alone, FLAG["not_pooled"], 0)
    out["flags"] &= ~np.where(np.isfinite(post), FLAG["failed"], 0)
    return out, [lv for lv in chain if lv]
