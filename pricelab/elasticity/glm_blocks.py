"""``ols`` and ``poisson`` without a padded design: group runs, block-wise kernels.

:func:`fit_ols_runs` and :func:`fit_poisson_runs` give the same numbers as
:func:`pricelab.elasticity.groupfit.fit_ols` / ``fit_poisson`` (to rounding), faster: rows are not sorted when each group's rows are
already contiguous (the usual case for data read from the store or a file), regressors
are computed block by block from the raw columns (:mod:`.block_runs`), and each block of groups goes through
:func:`pricelab.elasticity.block_kernels.ols_block` (cross-product sums, an in-order
Cholesky, residual sums) or ``poisson_block`` (IRLS) while it is in memory.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import polars as pl

from pricelab.errors import UsageError

from .block_kernels import ols_block
from .block_runs import Progress, Rows, Runs
from .compiled import GLM_JIT_ROWS, compiled_ols, use_compiled
from .groupfit import FLAG, empty_out
from .poisson_kernel import poisson_block
from .robust import calendar_sums
from .sparse import EVENTS_PER_PARAM


def _flags(
    fitted: np.ndarray, few: np.ndarray, nosales: np.ndarray, price_ok: np.ndarray, ok: np.ndarray
) -> np.ndarray:
    flags = np.where(few, FLAG["few_obs"], 0) | np.where(nosales, FLAG["no_sales"], 0)
    flags |= np.where(fitted & ~price_ok, FLAG["no_price_variation"], 0)
    return flags | np.where(fitted & price_ok & ~ok, FLAG["failed"], 0)


def fit_ols_runs(
    df: pl.DataFrame,
    by: Sequence[str],
    controls: Sequence[str],
    origin: dt.date | None,
    se: str = "HC1",
    min_obs: int = 8,
    max_cells: float = 4e6,
    progress: Progress | None = None,
    hac_lags: int | None = None,
    starts: np.ndarray | None = None,
    compiled: bool | None = None,
) -> tuple[dict[str, np.ndarray], pl.DataFrame, list[str]]:
    """log q on log p and controls per group (weeks with q > 0), HC0/HC1/nonrobust/HAC.

    ``HAC`` (Newey-West) sorts each group by date and counts lags in the group's weeks
    (a zero-sales week is a period with a zero score); ``hac_lags`` is the bandwidth
    (default ``floor(4 (n/100)^(2/9))`` of the group's positive weeks). ``starts``: each
    group's first row when the caller knows the groups are contiguous (no run search).
    ``compiled``: fit with :mod:`.ols_jit` (same numbers to ~1e-14; not ``HAC``); None:
    from :data:`.compiled.JIT_ROWS` rows (``$PRICELAB_JIT`` ``0`` / ``1``: never / always).

    Returns ``(out, keys, names)`` as :func:`pricelab.elasticity.design.build` and
    :func:`pricelab.elasticity.groupfit.fit_ols` would, groups sorted by ``by``.
    ``progress(done, total)`` is called after each block of groups.
    """
    if se == "HAC":
        if "date" not in df.columns:
            raise UsageError("se='HAC' needs a 'date' column in sales")
        if by or starts is None:
            df = df.sort([*by, "date"])
        else:  # groups given by ``starts``: sort within each
            run = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, df.height]))
            df = df.with_columns(_run=run).sort(["_run", "date"]).drop("_run")
    runs = Runs(df, by, controls, origin, starts)
    G, counts = runs.n_groups, runs.counts
    out = empty_out(G, len(runs.names))

    def fit(gs: np.ndarray, rows: Rows, X: np.ndarray, q: np.ndarray) -> None:
        w = q > 0
        y = np.log(np.where(w, q, 1.0))
        week = None if runs.week is None else runs.week[rows].reshape(q.shape)
        r = ols_block(X, y, w.astype(np.float64), se=se, min_obs=min_obs, lags=hac_lags, week=week)
        store(gs, r)

    def store(gs: np.ndarray, r: dict[str, np.ndarray]) -> None:
        n, fitted = r["n"], r["fitted"]
        price_ok = r["keep"][:, 0]
        good = fitted & price_ok & r["ok"]
        out["flags"][gs] = _flags(fitted, ~fitted, n == 0, price_ok, r["ok"])
        out["n_obs"][gs] = n.astype(np.int64)
        out["n_zero"][gs] = counts[gs] - n.astype(np.int64)
        out["price_variation"][gs] = np.sqrt(r["spread"])
        out["mean_log_price"][gs] = r["mean"]
        out["elasticity"][gs] = np.where(good, r["params"][:, 1], np.nan)
        out["std_error"][gs] = np.where(good, np.sqrt(r["var"]), np.nan)
        out["params"][gs] = np.where(good[:, None], r["params"], np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["fit_stat"][gs] = np.where(r["ok"] & fitted, 1 - r["rss"] / r["tss"], np.nan)
        out["smearing"][gs] = np.where(n > 0, r["smear"] / np.maximum(counts[gs], 1), np.nan)

    kernel = compiled_ols(se, df.height if compiled is None else compiled)
    if kernel is not None:  # the same fit, one compiled pass per group
        store(np.arange(G), kernel(runs, se, min_obs))
        if progress is not None:
            progress(G, G)
    else:
        runs.run(fit, max_cells, progress)
    out, keys, _ = runs.ordered(out)
    return out, keys, runs.names


def fit_poisson_runs(
    df: pl.DataFrame,
    by: Sequence[str],
    controls: Sequence[str],
    origin: dt.date | None,
    se: str = "HC1",
    min_obs: int = 8,
    max_cells: float = 4e6,
    progress: Progress | None = None,
    maxiter: int = 100,
    events_per_param: float = EVENTS_PER_PARAM,
    calendar: bool = False,
    starts: np.ndarray | None = None,
    compiled: bool | None = None,
) -> tuple[dict[str, np.ndarray], pl.DataFrame, list[str], pl.DataFrame]:
    """Poisson PML per group on all weeks (zeros included), robust or model SEs.

    Same numbers as :func:`pricelab.elasticity.groupfit.fit_poisson` (IRLS is affine
    invariant: the shifted design gives the same iterates), with the same sparse-series
    rules (:mod:`.sparse`: nuisance controls by events per parameter and variance
    inflation; separated fits flagged ``failed,separated``). Returns ``(out, keys, names,
    first)``: ``first`` holds each group's first row (its attributes, for pooling) and
    ``out["mean_quantity"]`` the mean weekly quantity. With ``calendar`` (and dates),
    ``out["calendar"] (G, nw)`` holds the sums of each group's slope influences by
    calendar week counted from ``origin`` (:func:`.robust.calendar_sums`), for the
    level-mean variance of :mod:`.hierarchical` (two-way clusters of those weeks,
    :func:`.robust.shared_covariance`): one float32 per group and week, half a float
    column of the sales. ``compiled``: the IRLS iterations compiled (:mod:`.glm_jit`, the
    same iterations); None: from :data:`.compiled.GLM_JIT_ROWS` rows (``$PRICELAB_JIT``).
    """
    runs = Runs(df, by, controls, origin, starts)
    G, counts = runs.n_groups, runs.counts
    out = empty_out(G, len(runs.names))
    out["mean_quantity"] = np.zeros(G)
    jit = use_compiled(df.height if compiled is None else compiled, GLM_JIT_ROWS)
    week0, nw = _calendar(runs.week, origin) if calendar else (0, 0)
    if nw:
        out["calendar"] = np.zeros((G, nw), dtype=np.float32)  # one column of the sales

    def fit(gs: np.ndarray, rows: Rows, X: np.ndarray, q: np.ndarray) -> None:
        r = poisson_block(
            X,
            q,
            np.ones_like(q),
            se=se,
            min_obs=min_obs,
            maxiter=maxiter,
            names=runs.names[1:],
            events_per_param=events_per_param,
            week=None if runs.week is None else runs.week[rows].reshape(q.shape),
            compiled=jit,
        )
        fitted, keep = r["fitted"], r["keep"]
        price_ok = keep[:, 0]
        sep = r["separated"] & price_ok
        ok = r["converged"] & np.isfinite(r["var"]) & ~(sep & ~r["rescued"])
        good = fitted & price_ok & ok
        nosales = q.sum(axis=1) == 0
        out["flags"][gs] = _flags(fitted, r["n"] < min_obs, nosales, price_ok, ok) | np.where(
            sep, FLAG["separated"], 0
        )
        out["n_obs"][gs] = counts[gs]
        out["n_zero"][gs] = (q == 0).sum(axis=1)
        out["price_variation"][gs] = np.sqrt(r["spread"])
        out["mean_log_price"][gs] = r["mean"]
        out["mean_quantity"][gs] = q.mean(axis=1)
        out["elasticity"][gs] = np.where(good, r["params"][:, 1], np.nan)
        out["std_error"][gs] = np.where(good, np.sqrt(r["var"]), np.nan)
        par = r["params"].copy()
        par[:, 1:] = np.where(keep, par[:, 1:], np.nan)
        out["params"][gs] = np.where(good[:, None], par, np.nan)
        out["model_var"][gs] = np.where(good, r["model_var"], np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["fit_stat"][gs] = np.where(
                ok & fitted, 1 - r["deviance"] / r["null_deviance"], np.nan
            )
        if nw and runs.week is not None:
            wk = runs.week[rows].reshape(q.shape) - week0
            out["calendar"][gs] = calendar_sums(r["influence"], wk, r["fitted"][:, None], nw)

    runs.run(fit, max_cells, progress)
    out, keys, first = runs.ordered(out)
    return out, keys, runs.names, first


def _calendar(week: np.ndarray | None, origin: dt.date | None) -> tuple[int, int]:
    """First calendar week and number of weeks (``(0, 0)`` without dates)."""
    if week is None or week.size == 0:
        return 0, 0
    first = (origin - dt.date(1970, 1, 1)).days // 7 if origin is not None else int(week.min())
    first = min(first, int(week.min()))
    return first, int(week.max() - first) + 1
