"""Per-group fits (ols, poisson) on a padded :class:`~pricelab.elasticity.design.Design`.

Each function takes a Design and returns a dict of per-group numpy arrays
(``elasticity, std_error, n_obs, n_zero, price_variation, fit_stat, first_stage_f,
flags`` and ``params``), the common currency of the models. ``estimate`` now runs
``ols``/``poisson``/``hierarchical`` through the block path of :mod:`.glm_blocks` (same
numbers, faster); these padded versions stay as its tested reference and serve the
engines' partition step. The flag helpers are shared by every model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from . import padded_kernels as K
from .design import Design, chunks
from .sparse import EVENTS_PER_PARAM, collapsed, column_tol, events_mask, rescued, separated

FLAG_NAMES = (
    "positive",
    "inelastic",
    "no_price_variation",
    "few_obs",
    "weak_instrument",
    "shrunk",
    "failed",
    "no_sales",
    "separated",
    "not_pooled",
    "absorbed",
)
FLAG = {name: 1 << i for i, name in enumerate(FLAG_NAMES)}


def empty_out(G: int, k: int) -> dict[str, np.ndarray]:
    """Per-group output arrays filled with NaN / zero."""
    nan = np.full(G, np.nan)
    return {
        "elasticity": nan.copy(),
        "std_error": nan.copy(),
        "n_obs": np.zeros(G, np.int64),
        "n_zero": np.zeros(G, np.int64),
        "price_variation": nan.copy(),
        "fit_stat": nan.copy(),
        "first_stage_f": nan.copy(),
        "first_stage_f_robust": nan.copy(),
        "flags": np.zeros(G, np.int64),
        "params": np.full((G, k), np.nan),
        "smearing": np.ones(G),
        "model_var": nan.copy(),
        "mean_log_price": nan.copy(),
    }


def center(Xp: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Subtract weighted group means from columns 1.. (column 0 is the intercept)."""
    n = np.maximum(valid.sum(axis=1), 1e-300)
    m = (Xp * valid[:, :, None]).sum(axis=1) / n[:, None]
    m[:, 0] = 0.0
    Xc = (Xp - m[:, None, :]) * valid[:, :, None]
    Xc[:, :, 0] = valid
    return Xc, m


def uncenter(beta: np.ndarray, m: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Coefficients of the uncentred design (intercept absorbs the means); dropped -> NaN."""
    out = beta.copy()
    out[:, 0] = beta[:, 0] - (m[:, 1:] * beta[:, 1:]).sum(axis=1)
    return np.where(keep, out, np.nan)


def _common(
    out: dict, g: np.ndarray, Xp: np.ndarray, valid: np.ndarray, q: np.ndarray | None, min_obs: int
) -> np.ndarray:
    """Fill n_obs, n_zero, price_variation; return mask of groups with enough data."""
    n = valid.sum(axis=1)
    out["n_obs"][g] = n.astype(np.int64)
    lp = Xp[:, :, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = (lp * valid).sum(axis=1) / n
        var = (((lp - mean[:, None]) ** 2) * valid).sum(axis=1) / n
    out["price_variation"][g] = np.sqrt(var)
    out["mean_log_price"][g] = mean
    few = n < min_obs
    out["flags"][g] |= np.where(few, FLAG["few_obs"], 0)
    return ~few


def finish(
    out: dict[str, np.ndarray],
    g: np.ndarray,
    beta_u: np.ndarray,
    cov: np.ndarray,
    keep: np.ndarray,
    ok: np.ndarray,
    fitted: np.ndarray,
) -> None:
    """Write elasticity, SE, params and the rank / failure flags for chunk groups ``g``."""
    price_ok = keep[:, 1]
    out["flags"][g] |= np.where(fitted & ~price_ok, FLAG["no_price_variation"], 0)
    good = fitted & price_ok & ok
    out["flags"][g] |= np.where(fitted & price_ok & ~ok, FLAG["failed"], 0)
    se = np.sqrt(cov[:, 1, 1])
    out["elasticity"][g] = np.where(good, beta_u[:, 1], np.nan)
    out["std_error"][g] = np.where(good, se, np.nan)
    out["params"][g] = np.where(good[:, None], beta_u, np.nan)


def fit_ols(
    d: Design, se: str = "HC1", min_obs: int = 8, max_cells: float = 4e6
) -> dict[str, np.ndarray]:
    """log q on log p and controls per group, weeks with q > 0 only."""
    G, k = d.n_groups, d.X.shape[1]
    out = empty_out(G, k)
    pos_rows = (d.q > 0).astype(np.float64)
    y_rows = np.nan_to_num(d.logq)
    for ch in chunks(d.codes, G, k, max_cells):
        g = ch.groups
        valid = ch.pad(pos_rows)
        out["n_zero"][g] = (ch.pad(np.ones_like(pos_rows)) - valid).sum(axis=1).astype(np.int64)
        Xp = ch.pad(d.X)
        y = ch.pad(y_rows)
        fitted = _common(out, g, Xp, valid, y, min_obs)
        out["flags"][g] |= np.where(valid.sum(axis=1) == 0, FLAG["no_sales"], 0)
        Xc, m = center(Xp, valid)
        keep = K.independent_columns(K.gram(Xc, valid))
        keep[~fitted] = False
        keep[~fitted, 0] = True
        r = K.ols_fit(Xc, y, valid, keep, se=se)
        ok = r["ok"] & (r["n"] > r["p"])
        finish(out, g, uncenter(r["beta"], m, keep), r["cov"], keep, ok, fitted)
        n = np.maximum(r["n"], 1)
        ybar = (y * valid).sum(axis=1) / n
        tss = (((y - ybar[:, None]) ** 2) * valid).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["fit_stat"][g] = np.where(
                ok & fitted, 1 - (r["resid"] ** 2).sum(axis=1) / tss, np.nan
            )
            smear = (np.exp(r["resid"]) * valid).sum(axis=1) / n
            share = valid.sum(axis=1) / np.maximum(ch.pad(np.ones_like(pos_rows)).sum(axis=1), 1)
        out["smearing"][g] = smear * share
    return out


def fit_poisson(
    d: Design,
    se: str = "HC1",
    min_obs: int = 8,
    max_cells: float = 4e6,
    maxiter: int = 100,
    progress: Callable[[int, int], None] | None = None,
    events_per_param: float = EVENTS_PER_PARAM,
) -> dict[str, np.ndarray]:
    """Poisson PML (log link) per group on all weeks, zeros included.

    Nuisance controls a group's data cannot support are left out and separated fits
    are flagged ``failed,separated`` (the rules of :mod:`.sparse`; ``events_per_param=0``
    switches the events rule off). ``progress(done, total)`` is called after each chunk.
    """
    done = 0
    G, k = d.n_groups, d.X.shape[1]
    out = empty_out(G, k)
    ones = np.ones(d.q.shape[0])
    has_date = "date" in d.frame.columns
    weeks = d.frame["date"].to_physical().to_numpy() // 7 if has_date else None
    for ch in chunks(d.codes, G, k, max_cells):
        g = ch.groups
        valid = ch.pad(ones)
        week = None if weeks is None else ch.pad(weeks).astype(np.int64)
        Xp = ch.pad(d.X)
        y = ch.pad(d.q)
        out["n_zero"][g] = ((y == 0) & (valid > 0)).sum(axis=1)
        fitted = _common(out, g, Xp, valid, y, min_obs)
        nosales = (y * valid).sum(axis=1) == 0
        out["flags"][g] |= np.where(nosales, FLAG["no_sales"], 0)
        fitted &= ~nosales
        Xc, m = center(Xp, valid)
        valid_fit = valid * fitted[:, None]
        keep, r, cov, model_cov = _poisson_fit(
            Xc, y, valid_fit, fitted, d.names, events_per_param, se, maxiter, week
        )
        sep = fitted & keep[:, 1] & separated(y, r["mu"], valid_fit)
        good = np.zeros(g.size, dtype=bool)
        if sep.any():  # once more without the collapsed weeks (see sparse.rescued)
            i = np.flatnonzero(sep)
            vf = valid_fit[i] * ~collapsed(y[i], r["mu"][i], valid_fit[i])
            k2, r2, c2, m2 = _poisson_fit(
                Xc[i],
                y[i],
                vf,
                fitted[i],
                d.names,
                events_per_param,
                se,
                maxiter,
                None if week is None else week[i],
            )
            ok2 = rescued(
                d.names,
                keep[i],
                k2,
                r2["converged"] & np.isfinite(c2[:, 1, 1]) & ~separated(y[i], r2["mu"], vf),
            )
            j = i[ok2]
            keep[j], cov[j], model_cov[j] = k2[ok2], c2[ok2], m2[ok2]
            for key in ("beta", "converged", "deviance"):
                r[key][j] = r2[key][ok2]
            good[j] = True
        out["flags"][g] |= np.where(sep, FLAG["separated"], 0)
        ok = r["converged"] & np.isfinite(cov[:, 1, 1]) & ~(sep & ~good)
        finish(out, g, uncenter(r["beta"], m, keep), cov, keep, ok, fitted)
        out["model_var"][g] = np.where(ok & fitted & keep[:, 1], model_cov[:, 1, 1], np.nan)
        ybar = (y * valid).sum(axis=1) / np.maximum(valid.sum(axis=1), 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            t0 = np.where(y > 0, y * np.log(y / ybar[:, None]), 0.0) * valid
            null_dev = 2 * t0.sum(axis=1)
            out["fit_stat"][g] = np.where(ok & fitted, 1 - r["deviance"] / null_dev, np.nan)
        done += g.size
        if progress is not None:
            progress(done, G)
    return out


def _poisson_fit(
    Xc: np.ndarray,
    y: np.ndarray,
    vf: np.ndarray,
    fitted: np.ndarray,
    names: list[str],
    events_per_param: float,
    se: str,
    maxiter: int,
    week: np.ndarray | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Columns (:mod:`.sparse` rules), IRLS and covariances on rows weighted ``vf``."""
    A = K.gram(Xc, vf)
    diag = np.diagonal(A, axis1=1, axis2=2)
    with np.errstate(divide="ignore", invalid="ignore"):  # varies around the intercept
        spread = diag - A[:, 0, :] ** 2 / A[:, 0, 0][:, None]
    present = np.nan_to_num(spread) > 1e-12 * diag
    usable = events_mask(names, ((y > 0) & (vf > 0)).sum(axis=1), present, events_per_param)
    keep = K.independent_columns(A, usable=usable, tol=column_tol(names))
    keep[~fitted] = False
    keep[~fitted, 0] = True
    r = K.poisson_irls(Xc, y, vf, keep, maxiter=maxiter)
    cov, model_cov = K.poisson_cov(Xc, y, r["mu"], vf, keep, se=se, week=week)
    return keep, r, cov, model_cov


def flag_signs(out: dict[str, np.ndarray]) -> None:
    """Add ``positive`` / ``inelastic`` flags from the point estimates."""
    e = out["elasticity"]
    with np.errstate(invalid="ignore"):
        out["flags"] |= np.where(e >= 0, FLAG["positive"], 0)
        out["flags"] |= np.where((e > -1) & (e < 0), FLAG["inelastic"], 0)


def flag_strings(bits: np.ndarray) -> list[str]:
    """Comma-joined flag names per group."""
    return flag_series(bits).to_list()


def flag_series(bits: np.ndarray) -> pl.Series:
    """:func:`flag_strings` as a String series ``flags``: one text per distinct set of
    flags, gathered (no Python string per group)."""
    values, inverse = _distinct(np.asarray(bits).ravel())
    text = [",".join(n for n in FLAG_NAMES if v & FLAG[n]) for v in values]
    return pl.Series("flags", text, dtype=pl.String).gather(inverse)


def _distinct(bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(bits, return_inverse=True)``: counted over the ``2 ** len(FLAG_NAMES)``
    possible sets instead of sorted (np.unique's argsort took 40 ms of the ``estimate``
    command's serial end at 300k groups)."""
    if bits.dtype.kind not in "iu" or not bits.size or bits.min() < 0 or bits.max() >> len(FLAG):
        return np.unique(bits, return_inverse=True)  # not flag sets: the general way
    b = bits.astype(np.intp, copy=False)
    values = np.flatnonzero(np.bincount(b))
    code = np.zeros(int(values[-1]) + 1, dtype=np.intp)
    code[values] = np.arange(values.size)
    return values.astype(bits.dtype), code[b]
