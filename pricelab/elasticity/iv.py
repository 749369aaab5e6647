"""Instrumental variables per group: 2SLS and a Poisson control function.

Log price is the one endogenous regressor. Instruments: any numeric column of sales
(used as is), ``unit_cost`` (used as log unit cost, a cost shifter), or ``hausman``
(the item's mean log price in the other markets the same week).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from pricelab.errors import UsageError

from . import padded_kernels as K
from .design import Design, chunks, hausman_column
from .groupfit import FLAG, _common, center, empty_out, finish, uncenter


def resolve_instruments(
    df: pl.DataFrame, instrument: str | Sequence[str] | None
) -> tuple[pl.DataFrame, list[str]]:
    """Add instrument columns ``_z_*`` to ``df``; drop rows where one is missing."""
    if instrument is None:
        raise UsageError("model 'iv' needs an instrument (a column name or 'hausman')")
    names = [instrument] if isinstance(instrument, str) else list(instrument)
    names = [n.strip() for name in names for n in name.split(",") if n.strip()]
    cols = []
    for name in names:
        if name == "hausman":
            df = df.with_columns(hausman_column(df))
        elif name not in df.columns:
            raise UsageError(f"unknown instrument column '{name}' (not in sales)")
        elif not df.schema[name].is_numeric():
            raise UsageError(f"instrument column '{name}' is not numeric")
        elif name == "unit_cost":
            df = df.with_columns(
                pl.when(pl.col(name) > 0).then(pl.col(name).log()).alias("_z_unit_cost")
            )
        else:
            df = df.with_columns(pl.col(name).cast(pl.Float64).alias(f"_z_{name}"))
        cols.append(f"_z_{name}")
    df = df.filter(
        pl.all_horizontal([pl.col(c).is_not_null() & pl.col(c).is_finite() for c in cols])
    )
    return df, cols


def fit_iv(
    d: Design,
    zcols: list[str],
    se: str = "HC1",
    min_obs: int = 8,
    method: str = "2sls",
    max_cells: float = 4e6,
) -> dict[str, np.ndarray]:
    """2SLS (log q, weeks with q > 0) or Poisson control function (all weeks) per group."""
    if method not in ("2sls", "cf"):
        raise UsageError(f"unknown iv_method '{method}'; choose 2sls or cf")
    G, k = d.n_groups, d.X.shape[1]
    out = empty_out(G, k)
    Zraw = d.frame.select(zcols).to_numpy().astype(np.float64)
    # Z = [1, instruments, controls]; X = [1, log price, controls]
    Zrows = np.column_stack([d.X[:, :1], Zraw, d.X[:, 2:]])
    excluded = np.zeros(Zrows.shape[1], dtype=bool)
    excluded[1 : 1 + len(zcols)] = True
    use = (d.q > 0) if method == "2sls" else np.ones(d.q.shape[0], dtype=bool)
    y_rows = np.nan_to_num(d.logq) if method == "2sls" else d.q
    for ch in chunks(d.codes, G, k + Zrows.shape[1], max_cells):
        g = ch.groups
        valid = ch.pad(use.astype(np.float64))
        allrows = ch.pad(np.ones(d.q.shape[0]))
        out["n_zero"][g] = (allrows - ch.pad((d.q > 0).astype(np.float64))).sum(axis=1)
        Xp, Zp, y = ch.pad(d.X), ch.pad(Zrows), ch.pad(y_rows)
        fitted = _common(out, g, Xp, valid, y, min_obs)
        nosales = (ch.pad(d.q) * valid).sum(axis=1) == 0
        out["flags"][g] |= np.where(nosales, FLAG["no_sales"], 0)
        fitted &= ~nosales
        Xc, m = center(Xp, valid)
        Zc, _ = center(Zp, valid)
        keep_x = K.independent_columns(K.gram(Xc, valid))
        keep_z = K.independent_columns(K.gram(Zc, valid))
        for kp in (keep_x, keep_z):
            kp[~fitted] = False
            kp[~fitted, 0] = True
        F = K.first_stage_f(Zc, Xc[:, :, 1], valid, keep_z, excluded)
        Fr = K.robust_first_stage_f(Zc, Xc[:, :, 1], valid, keep_z, excluded)
        out["first_stage_f"][g] = np.where(fitted, F, np.nan)
        out["first_stage_f_robust"][g] = np.where(fitted, Fr, np.nan)
        # the reported SEs are heteroskedasticity-robust: so is the strength test (the
        # classical F overstates strength when the first stage is heteroskedastic)
        weak = fitted & ~(Fr >= 10)
        out["flags"][g] |= np.where(weak, FLAG["weak_instrument"], 0)
        no_iv = ~(keep_z[:, excluded].any(axis=1))
        if method == "2sls":
            r = K.tsls(Xc, Zc, y, valid, keep_x, keep_z, se=se)
            ok = r["ok"] & (r["n"] > r["p"]) & ~no_iv
            beta, cov = r["beta"], r["cov"]
            ybar = (y * valid).sum(axis=1) / np.maximum(r["n"], 1)
            tss = (((y - ybar[:, None]) ** 2) * valid).sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                out["fit_stat"][g] = np.where(ok, 1 - (r["resid"] ** 2).sum(axis=1) / tss, np.nan)
        else:
            beta, cov, ok = control_function(Xc, Zc, y, valid * fitted[:, None], keep_x, keep_z, se)
            ok &= ~no_iv
        finish(out, g, uncenter(beta, m, keep_x), cov, keep_x, ok, fitted)
    return out


def control_function(
    X: np.ndarray,
    Z: np.ndarray,
    y: np.ndarray,
    valid: np.ndarray,
    keep_x: np.ndarray,
    keep_z: np.ndarray,
    se: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson with the first-stage residual as extra regressor; joint GMM sandwich SE.

    Moments: ``z (x - z'pi)`` (first stage) and ``xt (y - exp(xt'b))`` with
    ``xt = [X, v]``, ``v = x - z'pi``. The covariance of ``(pi, b)`` is
    ``J^-1 S J^-T`` (the Murphy–Topel two-step correction in stacked form).
    """
    G, T, k = X.shape
    m = Z.shape[2]
    fs = K.ols_fit(Z, X[:, :, 1], valid, keep_z, se="HC0")
    v = fs["resid"]
    Xt = np.concatenate([X, v[:, :, None]], axis=2)
    keep_t = np.concatenate([keep_x, np.ones((G, 1), dtype=bool)], axis=1)
    r = K.poisson_irls(Xt, y, valid, keep_t)
    b, mu = r["beta"], r["mu"] * valid
    u = (y - mu) * valid
    scores = np.concatenate([Z * v[:, :, None], Xt * u[:, :, None]], axis=2)
    J = np.zeros((G, m + k + 1, m + k + 1))
    J[:, :m, :m] = -K.gram(Z, valid)
    J[:, m:, m:] = -K.gram(Xt, mu)
    bv = b[:, -1]
    J[:, m:, :m] = K.gram(Xt, mu * bv[:, None], Z)
    J[:, -1, :m] -= (Z * u[:, :, None]).sum(axis=1)  # d v / d pi = -z in the score xt*u
    keep_all = np.concatenate([keep_z, keep_t], axis=1)
    Jm = K.masked_system(J, keep_all)
    eye = np.broadcast_to(np.eye(m + k + 1), Jm.shape).copy()
    Jinv, ok = K.safe_solve(Jm, eye)
    Jinv = np.where(keep_all[:, :, None] & keep_all[:, None, :], Jinv, 0.0)
    S = K.gram(scores)
    V = np.matmul(np.matmul(Jinv, S), Jinv.transpose(0, 2, 1))
    n = valid.sum(axis=1)
    p = keep_all.sum(axis=1)
    if se == "HC1":
        with np.errstate(divide="ignore", invalid="ignore"):
            V = V * (n / (n - p))[:, None, None]
    cov = V[:, m : m + k, m : m + k]
    return b[:, :k], cov, r["converged"] & ok & fs["ok"] & (n > p)
