"""``ols`` and ``poisson`` without a padded design: group runs, block-wise kernels.

:func:`fit_ols_runs` and :func:`fit_poisson_runs` give the same numbers as
:func:`pricelab.elasticity.groupfit.fit_ols` / ``fit_poisson`` (to rounding), faster: rows are not sorted when each group's rows are
already contiguous (the usual case for data read from the store or a file), regressors
are computed block by block from the raw columns, and each block of groups goes through
:func:`pricelab.elasticity.block_kernels.ols_block` (cross-product sums, an in-order
Cholesky, residual sums) or ``poisson_block`` (IRLS) while it is in memory.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import numpy as np
import polars as pl

from pricelab.errors import UsageError

from .block_kernels import ols_block
from .compiled import GLM_JIT_ROWS, compiled_ols, use_compiled
from .design import YEAR_DAYS
from .groupfit import FLAG, empty_out
from .poisson_kernel import poisson_block
from .robust import calendar_sums
from .sparse import EVENTS_PER_PARAM

Progress = Callable[[int, int], None]


def group_runs(df: pl.DataFrame, by: Sequence[str]) -> tuple[pl.DataFrame, np.ndarray]:
    """Rows with each group contiguous, and the start offset of every group (run order).

    Rows are reordered (hash group-by, no sort) only when some group is split in runs.
    """
    if not by:
        return df, np.zeros(1, dtype=np.int64)
    change = pl.any_horizontal([pl.col(c).ne_missing(pl.col(c).shift(1)) for c in by])
    starts = np.flatnonzero(df.select(change.fill_null(True)).to_series().to_numpy())
    if df.select(by)[starts].is_duplicated().any():
        idx = df.select(by).with_row_index("_i").group_by(by).agg("_i")["_i"].explode()
        df = df[idx.to_numpy()]
        starts = np.flatnonzero(df.select(change.fill_null(True)).to_series().to_numpy())
    return df, starts


Rows = np.ndarray | slice
Source = Callable[[Rows], np.ndarray]


def _take(a: np.ndarray, f: Callable[[np.ndarray], np.ndarray] | None = None) -> Source:
    """Rows of ``a`` (optionally transformed by ``f``), as a block source."""
    if f is None:
        return lambda rows: a[rows]
    return lambda rows: f(a[rows])


class _ByDay:
    """A control that is a function of the date alone (trend, Fourier terms): a block
    whose groups all have the same dates computes it once and broadcasts it."""

    def __init__(self, days: np.ndarray, f: Callable[[np.ndarray], np.ndarray]) -> None:
        self.days, self.f = days, f

    def __call__(self, rows: Rows) -> np.ndarray:
        return self.f(self.days[rows])


def _years_since(origin_day: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda d: (d - origin_day) / YEAR_DAYS


def _lookup(table: np.ndarray, first: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda d: table[d - first]


def control_sources(
    df: pl.DataFrame, names: Sequence[str], origin: dt.date | None
) -> list[tuple[str, Source]]:
    """``(column label, rows -> values)`` per control, named as :func:`.design.control_frame`."""
    out: dict[str, Source] = {}
    for name in names:
        if name == "promo":
            if "promo" in df.columns:
                a = df["promo"].fill_null(0).cast(pl.Float64).to_numpy()
                out["_c_promo"] = _take(a)
        elif name in ("fourier", "fourier2", "trend"):
            if "date" not in df.columns:
                raise UsageError(f"control '{name}' needs a 'date' column in sales")
            days = df["date"].to_physical().to_numpy()  # days since 1970-01-01
            if name == "trend":
                o = (origin - dt.date(1970, 1, 1)).days if origin is not None else 0
                out["_c_trend"] = _ByDay(days, _years_since(o))
            else:  # tables over the date range: no per-row calendar arithmetic
                d0 = int(days.min())
                span = pl.Series(np.arange(d0, int(days.max()) + 1, dtype=np.int32))
                doy = span.cast(pl.Date).dt.ordinal_day().cast(pl.Float64).to_numpy()
                angle = 2 * np.pi * doy / YEAR_DAYS
                for h in range(1, 3 if name == "fourier2" else 2):
                    out[f"_c_sin{h}"] = _ByDay(days, _lookup(np.sin(h * angle), d0))
                    out[f"_c_cos{h}"] = _ByDay(days, _lookup(np.cos(h * angle), d0))
        else:
            if name not in df.columns:
                raise UsageError(f"unknown control column '{name}' (not in sales)")
            if not df.schema[name].is_numeric():
                raise UsageError(f"control column '{name}' is not numeric")
            out[f"_c_{name}"] = _take(df[name].cast(pl.Float64).fill_null(0.0).to_numpy())
    return list(out.items())


def blocks(
    counts: np.ndarray, cols: int, max_cells: float
) -> Iterator[tuple[np.ndarray, np.ndarray | slice, int]]:
    """Blocks of groups of one size (``counts >= 1``): ``(groups, rows, width)``.

    ``rows`` is a slice when the block's groups are consecutive (a reshape, no copy),
    else a ``(g, width)`` index array. No padding is needed: every group in a block has
    ``width`` rows. At most ``max_cells / cols`` rows per block (at least one group).
    """
    starts = np.cumsum(counts) - counts
    order = np.argsort(counts, kind="stable")
    sizes = counts[order]
    edges = np.flatnonzero(np.r_[True, sizes[1:] != sizes[:-1], True])
    for a, b in zip(edges[:-1], edges[1:], strict=True):  # groups of one size, in order
        width = int(sizes[a])
        step = max(int(max_cells // (width * cols)), 1)
        for i in range(a, b, step):
            gs = order[i : min(i + step, b)]
            if gs[-1] - gs[0] == gs.size - 1:  # consecutive groups: a slice
                s0 = int(starts[gs[0]])
                yield gs, slice(s0, s0 + gs.size * width), width
            else:
                yield gs, starts[gs][:, None] + np.arange(width)[None, :], width


class Runs:
    """Rows grouped in contiguous runs, with the raw columns the models need."""

    def __init__(
        self,
        df: pl.DataFrame,
        by: Sequence[str],
        controls: Sequence[str],
        origin: dt.date | None,
        starts: np.ndarray | None = None,
    ) -> None:
        """``starts``: each group's first row when the caller knows its rows are contiguous."""
        self.by = list(by)
        self.df, self.starts = (df, starts) if starts is not None else group_runs(df, self.by)
        self.counts = np.diff(np.r_[self.starts, self.df.height])
        self.srcs = control_sources(self.df, controls, origin)
        self.names = ["intercept", "log_price", *[s[0] for s in self.srcs]]
        self.price = self.df["price"].cast(pl.Float64).to_numpy()
        self.qty = self.df["quantity"].cast(pl.Float64).to_numpy()
        self.week: np.ndarray | None = None
        if "date" in self.df.columns:
            self.week = self.df["date"].to_physical().to_numpy() // 7

    @property
    def n_groups(self) -> int:
        return int(self.counts.size)

    def block(self, gs: np.ndarray, rows: Rows, width: int) -> tuple[np.ndarray, np.ndarray]:
        """``X (g, p, T)`` (log price, then controls) and ``q (g, T)`` of one block."""
        g, p = gs.size, len(self.names) - 1
        X = np.empty((g, p, width))
        X[:, 0] = np.log(self.price[rows].reshape(g, width))
        shared: np.ndarray | None = None  # the dates of every group, when all the same
        for j, (_, f) in enumerate(self.srcs):
            if isinstance(f, _ByDay):
                if shared is None:
                    days = f.days[rows].reshape(g, width)
                    shared = days[0] if (days == days[0]).all() else np.zeros(0)
                if shared.size:  # the same values as per row, computed once
                    X[:, 1 + j] = f.f(shared)[None, :]
                    continue
            X[:, 1 + j] = f(rows).reshape(g, width)
        return X, self.qty[rows].reshape(g, width)

    def run(
        self,
        fit: Callable[[np.ndarray, Rows, np.ndarray, np.ndarray], None],
        max_cells: float,
        progress: Progress | None = None,
        workers: int | None = None,
    ) -> None:
        """Call ``fit(groups, X, q)`` on every block, ``workers`` threads at a time.

        numpy releases the GIL in the heavy loops, so blocks (building ``X`` included)
        run in parallel; each writes disjoint groups. ``progress(done, total)`` is
        called as blocks finish. Blocks hold ~1e6 cells (fewer page faults than 4e6).
        """
        workers = workers or min(os.cpu_count() or 1, 4)
        G, done = self.n_groups, 0
        with ThreadPoolExecutor(workers) as ex:
            pending: set[Future[int]] = set()

            def task(gs: np.ndarray, rows: Rows, width: int) -> int:
                fit(gs, rows, *self.block(gs, rows, width))
                return int(gs.size)

            def drain(when: str) -> None:
                nonlocal done, pending
                finished, pending = wait(pending, return_when=when)
                for f in finished:
                    done += f.result()
                    if progress is not None:
                        progress(done, G)

            cols = len(self.names) + 2
            for block in blocks(self.counts, cols, min(max_cells, 1e6)):
                pending.add(ex.submit(task, *block))
                if len(pending) >= 2 * workers:
                    drain(FIRST_COMPLETED)
            while pending:
                drain(FIRST_COMPLETED)

    def ordered(
        self, out: dict[str, np.ndarray]
    ) -> tuple[dict[str, np.ndarray], pl.DataFrame, pl.DataFrame]:
        """``(out, keys, first rows)`` with groups sorted by ``by`` (as ``design.build``)."""
        first = self.df[self.starts]
        if not self.by:
            return out, pl.DataFrame(), first
        keys = first.select(self.by)
        if in_key_order(keys):  # already in order (e.g. streamed chunks): no copies
            return out, keys, first
        order = keys.with_row_index("_g").sort(self.by)["_g"].to_numpy()
        return {k: v[order] for k, v in out.items()}, keys[order], first[order]


def in_key_order(keys: pl.DataFrame) -> bool:
    """True when the rows are in strictly increasing order of all their columns (what
    ``keys.sort(keys.columns)`` would give; keys with nulls are never taken as sorted)."""
    if keys.height < 2:
        return True
    if any(keys.null_count().row(0)):
        return False
    gt = pl.lit(False)
    for c in reversed(keys.columns):
        cur, prev = pl.col(c), pl.col(c).shift(1)
        gt = (cur > prev) | ((cur == prev) & gt)
    return bool(keys.select(gt.slice(1).all()).item())


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
