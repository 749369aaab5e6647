"""Rows grouped in contiguous runs, cut into blocks of groups of one size.

:class:`Runs` holds the raw columns a per-group fit needs (price, quantity, dates, the
controls as block sources: :func:`control_sources`) with each group's rows contiguous
(:func:`group_runs` reorders only groups split in runs), and builds each block's regressors
from them (:func:`blocks`: groups of one length, no padding). The fits on these blocks are
in :mod:`.glm_blocks` (``ols``, ``poisson``) and :mod:`.refit` (the hierarchical refit).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from functools import cached_property

import numpy as np
import polars as pl

from pricelab.errors import UsageError

from .design import YEAR_DAYS

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


class ByDay:
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
                out["_c_trend"] = ByDay(days, _years_since(o))
            else:  # tables over the date range: no per-row calendar arithmetic
                d0 = int(days.min())
                span = pl.Series(np.arange(d0, int(days.max()) + 1, dtype=np.int32))
                doy = span.cast(pl.Date).dt.ordinal_day().cast(pl.Float64).to_numpy()
                angle = 2 * np.pi * doy / YEAR_DAYS
                for h in range(1, 3 if name == "fourier2" else 2):
                    out[f"_c_sin{h}"] = ByDay(days, _lookup(np.sin(h * angle), d0))
                    out[f"_c_cos{h}"] = ByDay(days, _lookup(np.cos(h * angle), d0))
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
        self.days: np.ndarray | None = None  # days since 1970-01-01
        if "date" in self.df.columns:
            self.days = self.df["date"].to_physical().to_numpy()

    @cached_property
    def week(self) -> np.ndarray | None:
        """Each row's week (``days // 7``), None without dates."""
        return None if self.days is None else self.days // 7

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
            if isinstance(f, ByDay):
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
