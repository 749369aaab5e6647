"""Empirical-Bayes partial pooling of per-group Poisson elasticities.

Each group's Poisson estimate ``e_j`` (variance ``v_j``) is shrunk toward the mean
``mu_L`` of its pooling level ``L`` (category × market, else brand × market, else
market, else everything: the first level with at least ``min_members`` usable
estimates), with the between-group variance ``tau²_L`` estimated by REML (the
Viechtbauer fixed point of the random-effects meta-analysis model
``e_j ~ N(mu_L, v_j + tau²_L)``), vectorised over levels with ``bincount``:

    posterior mean = mu_L + B_j (e_j - mu_L),  B_j = tau²_L / (tau²_L + v_j)
    posterior var  = B_j v_j + (1 - B_j)² Var(mu_L)

``v_j`` is the model-based (Fisher) variance scaled by the level's median ratio of
robust to model variance when that exceeds 1 (overdispersion), which is more stable
than each group's own sandwich on sparse data. A group without a usable estimate
(no price variation, too few weeks, no sales, failed fit) gets the level prior
``N(mu_L, tau²_L + Var(mu_L))``, flagged ``shrunk`` beside the reason.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from .design import Design
from .groupfit import FLAG

SHRUNK_WEIGHT = 0.25  # flag "shrunk" when the prior gets at least this weight


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


def reml(e: np.ndarray, v: np.ndarray, lvl: np.ndarray, L: int, iters: int = 200
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-level REML ``(mu, tau2, var_mu, count)`` for estimates ``e`` with variances ``v``."""
    cnt = np.bincount(lvl, minlength=L).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        m0 = np.bincount(lvl, weights=e, minlength=L) / cnt
        s2 = np.bincount(lvl, weights=(e - m0[lvl]) ** 2, minlength=L) / np.maximum(cnt - 1, 1)
        tau2 = np.maximum(s2 - np.bincount(lvl, weights=v, minlength=L) / cnt, 0.0)
        for _ in range(iters):
            w = 1.0 / (v + tau2[lvl])
            sw = np.bincount(lvl, weights=w, minlength=L)
            mu = np.bincount(lvl, weights=w * e, minlength=L) / sw
            w2 = w * w
            num = np.bincount(lvl, weights=w2 * ((e - mu[lvl]) ** 2 - v), minlength=L)
            new = np.maximum(num / np.bincount(lvl, weights=w2, minlength=L) + 1.0 / sw, 0.0)
            if np.nanmax(np.abs(new - tau2), initial=0.0) < 1e-12:
                tau2 = new
                break
            tau2 = new
        w = 1.0 / (v + tau2[lvl])
        sw = np.bincount(lvl, weights=w, minlength=L)
        mu = np.bincount(lvl, weights=w * e, minlength=L) / sw
    return mu, tau2, 1.0 / sw, cnt


def shrink(out: dict[str, np.ndarray], d: Design, df: pl.DataFrame, pool: list[str] | None,
           min_members: int = 3) -> tuple[dict[str, np.ndarray], list[list[str]]]:
    """Replace per-group estimates by their empirical-Bayes posteriors (in place)."""
    G = d.n_groups
    first = np.flatnonzero(np.r_[True, np.diff(d.codes) != 0])
    attrs = d.frame[first]
    chain = [lv for lv in level_chain(attrs, pool) if all(c in attrs.columns for c in lv)]
    e = out["elasticity"]
    usable = np.isfinite(e) & np.isfinite(out["model_var"]) & (out["model_var"] > 0)
    ratio = out["std_error"] ** 2 / out["model_var"]
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
        phi = np.ones(L)
        for li in np.flatnonzero(cnt_all > 0):
            phi[li] = max(1.0, float(np.median(ratio[sel][lvl[sel] == li])))
        v = out["model_var"] * phi[np.where(okl, lvl, 0)]
        mu, tau2, var_mu, cnt = reml(e[sel], v[sel], lvl[sel], L)
        good_level = (cnt >= min_members) & np.isfinite(mu) & np.isfinite(tau2)
        take = ~assigned & okl & good_level[np.where(okl, lvl, 0)]
        li = lvl[take]
        has = usable[take]
        B = np.where(has, tau2[li] / (tau2[li] + np.where(has, v[take], 1.0)), 0.0)
        ej = np.where(has, e[take], 0.0)
        post[take] = mu[li] + B * (ej - mu[li])
        pvar[take] = np.where(has, B * v[take] + (1 - B) ** 2 * var_mu[li], tau2[li] + var_mu[li])
        weight_prior[take] = 1 - B
        assigned |= take
    shifted = np.where(np.isfinite(post) & np.isfinite(e), e - post, 0.0)
    params = out["params"]
    params[:, 0] = np.where(np.isfinite(params[:, 0]), params[:, 0] + shifted *
                            out["mean_log_price"], np.nan)
    # groups without an own fit: intercept from mean sales at the mean log price
    q = np.bincount(d.codes, weights=d.q, minlength=G) / np.maximum(
        np.bincount(d.codes, minlength=G), 1)
    nofit = ~np.isfinite(params[:, 1]) & np.isfinite(post) & (q > 0)
    with np.errstate(divide="ignore"):
        params[nofit, 0] = np.log(q[nofit]) - post[nofit] * out["mean_log_price"][nofit]
    params[:, 1] = post
    out["elasticity"] = post
    out["std_error"] = np.sqrt(pvar)
    out["flags"] |= np.where(assigned & (weight_prior >= SHRUNK_WEIGHT), FLAG["shrunk"], 0)
    out["flags"] &= ~np.where(np.isfinite(post), FLAG["failed"], 0)
    return out, [lv for lv in chain if lv]
