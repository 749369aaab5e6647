"""Per-group fits of a table read in chunks of whole groups: what a streaming engine calls.

An engine that can hand over the sales a few whole groups at a time (the local engine on a
database, :mod:`pricelab.engines.chunked`) gives :func:`fit_streamed` the groups' keys and
row counts and a function that yields the chunks; ``ols`` and ``poisson`` are fitted chunk
by chunk with the block kernels (:mod:`.glm_blocks`), ``hierarchical`` pools the per-group
fits (one row each, :mod:`.hierarchical`) and then reads the chunks once more to refit
each group's intercept and controls (:mod:`.refit`). Memory follows the chunk and the
per-group arrays, never the table. The results equal :func:`~pricelab.elasticity.estimate`
on the whole sorted frame (the same kernels on the same groups, the same ``trend`` origin).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import polars as pl

from .design import resolve_controls
from .model import _checked_options, _wrap
from .results import ElasticityResults
from .sparse import EVENTS_PER_PARAM

#: ``(g0, g1, frame)``: the rows of groups ``g0 .. g1 - 1`` (in the order of ``keys``),
#: each group's rows contiguous; a new iterator per call
Chunks = Callable[[], Iterator[tuple[int, int, pl.DataFrame]]]
STREAMED_MODELS = ("ols", "poisson", "hierarchical")
_KEY = ["item_id", "market"]
_CODE = "_group"


def fit_streamed(
    chunks: Chunks,
    keys: pl.DataFrame,
    counts: np.ndarray,
    *,
    model: str,
    controls: Any = "default",
    se: str | None = None,
    hac_lags: int | None = None,
    tau: str = "level",
    first: dt.date | None = None,
    last: dt.date | None = None,
    items: pl.DataFrame | None = None,
) -> ElasticityResults:
    """``estimate(model=...)`` by item × market on sales read chunk by chunk.

    Parameters
    ----------
    chunks:
        Called once (twice for ``hierarchical``); yields ``(g0, g1, frame)`` with the
        sales rows (``date, price, quantity`` and any ``promo`` or control column) of
        groups ``g0 .. g1 - 1``, every group whole and contiguous, chunks in order.
    keys, counts:
        ``item_id, market`` and the row count of every group, in the chunks' order.
    model, controls, se, hac_lags, tau:
        As :func:`~pricelab.elasticity.estimate` (``ols``, ``poisson`` or ``hierarchical``).
    first, last:
        The first and last week of the whole table (``trend`` origin, ``end``).
    items:
        The item attributes (``category``, ``brand``) that ``hierarchical`` pools by.

    Returns
    -------
    ElasticityResults
        Groups sorted by item and market, as :func:`~pricelab.elasticity.estimate`.
    """
    se = _checked_options(
        model=model,
        se=se,
        slope="item",
        fixed_effects=None,
        hac_lags=hac_lags,
        tau=tau,
        alpha=0.05,
        events_per_param=EVENTS_PER_PARAM,
    )
    ctrl = resolve_controls(controls)
    job = _Job(chunks, counts, ctrl, first)
    if model == "ols":
        out, names = job.ols(se, hac_lags)
    else:
        out, names = job.poisson(se, calendar=model == "hierarchical")
    order = keys.with_row_index("_i").sort(_KEY)["_i"].to_numpy()
    sorted_keys = keys
    if (np.diff(order) != 1).any():  # chunks in another order than the keys'
        out = {k: v[order] for k, v in out.items()}
        sorted_keys = keys[order]
    fit: dict[str, Any] = {
        "model": model,
        "by": list(_KEY),
        "controls": ctrl,
        "se": se,
        "alpha": 0.05,
        "min_obs": 8,
        "fixed_effects": [],
        "end": str(last) if last else None,
    }
    if model == "ols":
        fit["hac_lags"] = hac_lags
    else:
        fit["events_per_param"] = EVENTS_PER_PARAM
    if model == "hierarchical":
        used = job.pool(out, sorted_keys, order, items, tau)
        fit.update(pool_by=used, tau=tau)
    fit["origin"] = str(first) if first else None
    return _wrap(out, sorted_keys, names, model, model, fit, 0.05)


class _Job:
    """One streamed fit: the chunks and how to fit each."""

    def __init__(
        self, chunks: Chunks, counts: np.ndarray, controls: list[str], first: dt.date | None
    ) -> None:
        self.source, self.counts, self.controls, self.first = chunks, counts, controls, first

    def chunks(self) -> Iterator[tuple[int, int, pl.DataFrame]]:
        """The chunks with each row's group code in ``_group``."""
        for g0, g1, frame in self.source():
            codes = np.repeat(np.arange(g0, g1, dtype=np.int64), self.counts[g0:g1])
            yield g0, g1, frame.with_columns(pl.Series(_CODE, codes))

    def _starts(self, g0: int, g1: int) -> np.ndarray:
        """First row of each group of a chunk (its rows are contiguous, in group order)."""
        c = self.counts[g0:g1]
        return np.cumsum(c) - c

    def _put(self, out: dict[str, np.ndarray] | None, part: dict[str, np.ndarray], g0: int):
        G = self.counts.size
        if out is None:
            out = {k: np.empty((G, *v.shape[1:]), dtype=v.dtype) for k, v in part.items()}
        for k, v in part.items():
            if k == "calendar" and v.shape[1] != out[k].shape[1]:  # fewer blocks: pad
                wide = max(v.shape[1], out[k].shape[1])
                grown = np.zeros((G, wide))
                grown[:, : out[k].shape[1]] = out[k]
                out[k] = grown
                v = np.pad(v, ((0, 0), (0, wide - v.shape[1])))
            out[k][g0 : g0 + v.shape[0]] = v
        return out

    def _fit_chunks(self, fit: Any, **options: Any) -> tuple[dict[str, np.ndarray], list[str]]:
        """Apply a batched kernel (``fit_ols_runs`` / ``fit_poisson_runs``) chunk by chunk."""
        out: dict[str, np.ndarray] | None = None
        names: list[str] = []
        for g0, g1, frame in self.chunks():
            res = fit(
                frame, [_CODE], self.controls, self.first, starts=self._starts(g0, g1), **options
            )
            part, names = res[0], res[2]
            out = self._put(out, part, g0)
        assert out is not None
        return out, names

    def ols(self, se: str, hac_lags: int | None) -> tuple[dict[str, np.ndarray], list[str]]:
        from .glm_blocks import fit_ols_runs

        return self._fit_chunks(fit_ols_runs, se=se, hac_lags=hac_lags)

    def poisson(self, se: str, calendar: bool) -> tuple[dict[str, np.ndarray], list[str]]:
        from .glm_blocks import fit_poisson_runs

        return self._fit_chunks(fit_poisson_runs, se=se, calendar=calendar)

    def pool(
        self,
        out: dict[str, np.ndarray],
        keys: pl.DataFrame,
        order: np.ndarray,
        items: pl.DataFrame | None,
        tau: str,
    ) -> list[list[str]]:
        """``hierarchical``: shrink the per-group fits (in key order, in place), then refit
        each moved group's intercept and controls chunk by chunk (a second scan)."""
        from .hierarchical import OWN, shrink
        from .refit import refit_runs

        attrs = keys
        if items is not None:
            extra = [c for c in items.columns if c not in keys.columns]
            attrs = keys.join(
                items.select("item_id", *extra).unique("item_id"),
                on="item_id",
                how="left",
                maintain_order="left",
            )
        shrunk, used = shrink(out, attrs, out["mean_quantity"], None, tau=tau)
        out.update(shrunk)
        # sorted position of each group (in the chunks' order)
        pos = np.empty_like(order)
        pos[order] = np.arange(order.size)
        fields = (OWN, "elasticity", "flags", "params")
        for g0, g1, frame in self.chunks():
            at = pos[g0:g1]
            part = {k: out[k][at] for k in fields}
            starts = self._starts(g0, g1)
            refit_runs(frame, [_CODE], self.controls, self.first, part, starts=starts)
            out["params"][at] = part["params"]
        return used


__all__ = ["STREAMED_MODELS", "fit_streamed"]
