"""Pooled panel estimators: absorbed fixed effects (within transformation) and item slopes.

``panel`` pools the log-linear demand of all items of a pooling level (default
category × market) with unit (item × market) and week fixed effects. Fixed effects
are absorbed by alternating projections (:func:`demean`), never by dummy matrices.

* ``slope="common"``: one slope per pooling level, SEs clustered by unit
  (statsmodels' small-sample correction G/(G-1)·(N-1)/(N-K), K counting absorbed
  effects as units + weeks − 1, exact for a connected panel).
* ``slope="item"``: one slope per unit with common week effects, solved exactly by
  backfitting; the SE of a unit's slope is HC1 within the unit given the week
  effects (clustering by unit is undefined for a parameter seen by one cluster).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from . import padded_kernels as K
from .design import Design, build, chunks, group_means
from .groupfit import FLAG, _common, center, empty_out, finish, uncenter

SEASONAL = ("fourier", "fourier2", "trend")


def default_pool(df: pl.DataFrame) -> list[str]:
    """category × market when the items table gave a category, else market."""
    return ["category", "market"] if "category" in df.columns else ["market"]


def _codes(df: pl.DataFrame, cols: Sequence[str]) -> tuple[np.ndarray, int]:
    c = df.select(pl.struct(list(cols)).rank("dense").cast(pl.Int64) - 1).to_series().to_numpy()
    return c, int(c.max()) + 1 if c.size else 0


def demean(
    values: np.ndarray, fes: list[np.ndarray], tol: float = 1e-11, maxiter: int = 10_000
) -> np.ndarray:
    """Remove fixed effects from the columns of ``values (n, k)`` by alternating projections."""
    out = values.astype(np.float64, copy=True)
    counts = [np.bincount(c) for c in fes]
    scale = np.maximum(np.abs(values).max(axis=0), 1.0)
    for _ in range(maxiter):
        delta = 0.0
        for c, n in zip(fes, counts, strict=True):
            for j in range(out.shape[1]):
                mean = np.bincount(c, weights=out[:, j], minlength=n.size) / np.maximum(n, 1)
                out[:, j] -= mean[c]
                delta = max(delta, float(np.abs(mean).max() / scale[j]))
        if len(fes) == 1 or delta < tol:
            break
    return out


def _fe_dof(fes: list[np.ndarray], group: np.ndarray, G: int) -> np.ndarray:
    """Absorbed parameters per group: sum of levels minus (number of effects − 1)."""
    dof = np.zeros(G)
    for c in fes:
        first = np.unique(c, return_index=True)[1]
        dof += np.bincount(group[first], minlength=G)
    return dof - (len(fes) - 1)


def fit_absorbed_ols(
    d: Design, fe: Sequence[str], se: str = "HC1", min_obs: int = 8
) -> dict[str, np.ndarray]:
    """OLS per group (weeks with q > 0) with the levels of ``fe`` absorbed within groups."""
    G, k = d.n_groups, d.X.shape[1]
    pos = d.q > 0
    frame = d.frame.filter(pl.Series(pos))
    codes = d.codes[pos]
    grp = pl.Series("_g", codes)
    fes = [_codes(frame.with_columns(grp), ["_g", c])[0] for c in fe]
    vals = demean(np.column_stack([d.logq[pos], d.X[pos]]), fes)
    raw = d.X[pos]
    out = empty_out(G, k)
    out["n_zero"][:] = np.bincount(d.codes[~pos], minlength=G)
    extra = _fe_dof(fes, codes, G)
    ss_raw = np.column_stack(
        [
            np.bincount(
                codes,
                weights=(
                    raw[:, j] - group_means(raw[:, [j]], codes, np.ones(codes.size), G)[codes, 0]
                )
                ** 2,
                minlength=G,
            )
            for j in range(k)
        ]
    )
    for ch in chunks(codes, G, k):
        g = ch.groups
        valid = ch.pad(np.ones(codes.size))
        Xp, Xw, y = ch.pad(raw), ch.pad(vals[:, 1:]), ch.pad(vals[:, 0])
        fitted = _common(out, g, Xp, valid, y, min_obs)
        ss = K.gram(Xw, valid)
        usable = np.diagonal(ss, axis1=1, axis2=2) > 1e-9 * ss_raw[g]
        usable[:, 0] = False
        keep = K.independent_columns(ss, usable)
        keep[~fitted] = False
        r = K.ols_fit(Xw, y, valid, keep, se=se, extra_dof=extra[g])
        ok = r["ok"] & (r["n"] > r["p"])
        beta = np.where(keep, r["beta"], np.nan)
        finish(out, g, beta, r["cov"], keep | ~fitted[:, None], ok, fitted)
        _mark_absorbed(out, g, fitted, keep, ss_raw[g, 1])
        out["fit_stat"][g] = _r2(r["resid"], y, valid, ok & fitted)
    return out  # fit_stat: within R² (of the demeaned regression)


def _mark_absorbed(
    out: dict[str, np.ndarray], g: np.ndarray, fitted: np.ndarray, keep: np.ndarray, raw: np.ndarray
) -> None:
    """Price varies in the group (``raw``: sum of squares of log price about its mean, per
    row above 1e-12, i.e. a spread beyond rounding) but not net of the fixed effects: flag
    ``absorbed`` instead of ``no_price_variation``."""
    hit = fitted & ~keep[:, 1] & (raw > 1e-12 * out["n_obs"][g])
    out["flags"][g] = np.where(
        hit, (out["flags"][g] & ~FLAG["no_price_variation"]) | FLAG["absorbed"], out["flags"][g]
    )


def _r2(resid: np.ndarray, y: np.ndarray, valid: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """``1 - RSS / TSS`` per group of an already centred (or demeaned) outcome ``y``."""
    rss = ((resid**2) * valid).sum(axis=1)
    tss = ((y**2) * valid).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok & (tss > 0), 1 - rss / tss, np.nan)


def fit_panel(
    df: pl.DataFrame,
    by: list[str],
    pool: list[str],
    controls: list[str],
    fe: list[str],
    slope: str = "item",
    min_obs: int = 8,
) -> tuple[dict[str, np.ndarray], pl.DataFrame, list[str]]:
    """Panel estimate; returns per-group arrays, group keys and coefficient names."""
    ctrl = [c for c in controls if c not in SEASONAL]
    unit_cols = list(dict.fromkeys([*(by or ["item_id", "market"]), *pool]))
    df = df.filter(pl.col("quantity") > 0)
    d = build(df, pool, ctrl)
    unit, _ = _codes(d.frame, unit_cols)
    week, _ = _codes(d.frame, [*pool, "date"])
    extra_fe = [_codes(d.frame, [*pool, c])[0] for c in fe]
    if slope == "common":
        return (
            _common_slope(d, unit, [unit, week, *extra_fe], min_obs),
            d.keys,
            ["intercept", *d.names[1:]],
        )
    return _item_slope(d, unit, week, unit_cols, min_obs)


def _common_slope(
    d: Design, unit: np.ndarray, fes: list[np.ndarray], min_obs: int
) -> dict[str, np.ndarray]:
    G, k = d.n_groups, d.X.shape[1]
    vals = demean(np.column_stack([d.logq, d.X]), fes)
    ones = np.ones(d.codes.size)
    ss_raw = np.column_stack(
        [
            np.bincount(
                d.codes,
                weights=(d.X[:, j] - group_means(d.X[:, [j]], d.codes, ones, G)[d.codes, 0]) ** 2,
                minlength=G,
            )
            for j in range(k)
        ]
    )
    extra = _fe_dof(fes, d.codes, G)
    out = empty_out(G, k)
    _, ucode = np.unique(unit, return_inverse=True)
    for ch in chunks(d.codes, G, k):
        g = ch.groups
        valid = ch.pad(ones)
        Xp, Xw, y = ch.pad(d.X), ch.pad(vals[:, 1:]), ch.pad(vals[:, 0])
        fitted = _common(out, g, Xp, valid, y, min_obs)
        ss = K.gram(Xw, valid)
        usable = np.diagonal(ss, axis1=1, axis2=2) > 1e-9 * ss_raw[g]
        usable[:, 0] = False
        keep = K.independent_columns(ss, usable)
        keep[~fitted] = False
        r = K.ols_fit(Xw, y, valid, keep, se="HC0", extra_dof=extra[g])
        # local cluster codes within each pool group
        uc = ch.pad(ucode.astype(np.float64), fill=-1).astype(np.int64)
        local = np.zeros_like(uc)
        n_cl = np.zeros(g.size)
        for i in range(g.size):  # relabel clusters 0..C-1 per pool (cheap: O(rows))
            vals_i, inv = np.unique(uc[i][valid[i] > 0], return_inverse=True)
            local[i, : inv.size] = inv
            n_cl[i] = vals_i.size
        scores = Xw * r["resid"][:, :, None]
        cs = K.cluster_scores(scores, local, int(max(n_cl.max(), 1)))
        n, p = r["n"], r["p"]
        with np.errstate(divide="ignore", invalid="ignore"):  # one cluster: no variance
            factor = np.where((n_cl > 1) & (n > p), n_cl / (n_cl - 1) * (n - 1) / (n - p), np.nan)
        cov = K.sandwich(r["bread"], cs, factor)
        ok = r["ok"] & (n > p) & (n_cl > 1)
        beta = np.where(keep, r["beta"], np.nan)
        finish(out, g, beta, cov, keep | ~fitted[:, None], ok, fitted)
        _mark_absorbed(out, g, fitted, keep, ss_raw[g, 1])
        tss = ((y**2) * valid).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["fit_stat"][g] = 1 - (r["resid"] ** 2).sum(axis=1) / tss
    out["params"][:, 0] = np.nan
    return out


def _item_slope(
    d: Design,
    unit: np.ndarray,
    week: np.ndarray,
    unit_cols: list[str],
    min_obs: int,
    tol: float = 1e-10,
    maxiter: int = 2000,
) -> tuple[dict[str, np.ndarray], pl.DataFrame, list[str]]:
    """Backfitting: per-unit OLS on y − week effect, then week effect = mean residual."""
    order = np.argsort(unit, kind="stable")
    U = int(unit.max()) + 1
    ucodes = unit[order]
    X, y0, wk = d.X[order], d.logq[order], week[order]
    keys = d.frame[order].select(unit_cols)[np.flatnonzero(np.r_[True, np.diff(ucodes) != 0])]
    out = empty_out(U, X.shape[1])
    out["n_zero"][:] = 0
    W = int(wk.max()) + 1
    wcount = np.bincount(wk, minlength=W)
    blocks = []
    for ch in chunks(ucodes, U, X.shape[1]):
        valid = ch.pad(np.ones(ucodes.size))
        Xp = ch.pad(X)
        fitted = _common(out, ch.groups, Xp, valid, None, min_obs)
        Xc, m = center(Xp, valid)
        keep = K.independent_columns(K.gram(Xc, valid))
        keep[~fitted] = False
        keep[~fitted, 0] = True
        blocks.append((ch, valid, Xp, Xc, m, keep, fitted))
    dwk = np.zeros(W)
    for _ in range(maxiter):
        fit_rows = np.zeros(ucodes.size)
        for ch, valid, _Xp, Xc, _m, keep, _f in blocks:
            b, _, _ = K.wls(Xc, ch.pad(y0 - dwk[wk]), valid, keep)
            fit_rows[ch.rows] = np.einsum("gtk,gk->gt", Xc, np.nan_to_num(b))[ch.codes, ch.pos]
        new = np.bincount(wk, weights=y0 - fit_rows, minlength=W) / np.maximum(wcount, 1)
        step = float(np.abs(new - dwk).max())
        dwk = new
        if step < tol:
            break
    for ch, valid, _Xp, Xc, m, keep, fitted in blocks:
        yw = ch.pad(y0 - dwk[wk])
        r = K.ols_fit(Xc, yw, valid, keep, se="HC1")
        ok = r["ok"] & (r["n"] > r["p"])
        finish(out, ch.groups, uncenter(r["beta"], m, keep), r["cov"], keep, ok, fitted)
        # R² of the unit's regression given the week effects (outcome centred in the unit)
        n = np.maximum(valid.sum(axis=1, keepdims=True), 1)
        out["fit_stat"][ch.groups] = _r2(
            r["resid"],
            (yw - (yw * valid).sum(axis=1, keepdims=True) / n) * valid,
            valid,
            ok & fitted,
        )
    return out, keys, d.names
