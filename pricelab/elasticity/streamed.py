"""Per-group fits of a table read in chunks of whole groups: what a streaming engine calls.

An engine that can hand over the sales a few whole groups at a time (the local engine on a
database, :mod:`pricelab.engines.chunked`) gives :func:`fit_streamed` a function that
yields the chunks (each with its groups' row counts) and the groups' keys; ``ols`` and ``poisson`` are fitted chunk
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

from pricelab._alloc import release

from .design import resolve_controls
from .model import _checked_options, _wrap
from .results import ElasticityResults
from .sparse import EVENTS_PER_PARAM

#: ``(g0, counts, frame)``: the rows of groups ``g0 .. g0 + len(counts) - 1`` (in the
#: order of ``keys``), ``counts`` rows each, each group's rows contiguous; a new iterator
#: per call
Chunks = Callable[[], Iterator[tuple[int, np.ndarray, pl.DataFrame]]]
STREAMED_MODELS = ("ols", "poisson", "hierarchical")
_KEY = ["item_id", "market"]


def fit_streamed(
    chunks: Chunks,
    keys: pl.DataFrame | Callable[[], pl.DataFrame],
    *,
    model: str,
    controls: Any = "default",
    se: str | None = None,
    hac_lags: int | None = None,
    tau: str = "level",
    first: dt.date | None = None,
    last: dt.date | None = None,
    items: pl.DataFrame | None = None,
    compiled: bool | None = None,
) -> ElasticityResults:
    """``estimate(model=...)`` by item × market on sales read chunk by chunk.

    Parameters
    ----------
    chunks:
        Called once (twice for ``hierarchical``); yields ``(g0, counts, frame)`` with the
        sales rows (``date, price, quantity`` and any ``promo`` or control column) of
        groups ``g0 ..`` (``counts`` rows each), every group whole and contiguous, chunks
        in order.
    keys:
        ``item_id, market`` of every group, in the chunks' order, or a function that
        gives them once the chunks have been read (a source that learns the groups from
        the rows).
    model, controls, se, hac_lags, tau:
        As :func:`~pricelab.elasticity.estimate` (``ols``, ``poisson`` or ``hierarchical``).
    first, last:
        The first and last week of the whole table (``trend`` origin, ``end``).
    items:
        The item attributes (``category``, ``brand``) that ``hierarchical`` pools by.
    compiled:
        Fit with the compiled kernels (``ols``: :mod:`.ols_jit`; ``poisson`` and
        ``hierarchical``: the IRLS loops of :mod:`.glm_jit`, :func:`.compiled.use_compiled`);
        None: decided per chunk by its rows.

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
    job = _Job(chunks, ctrl, first)
    if model == "ols":
        out, names = job.ols(se, hac_lags, compiled)
    else:
        out, names = job.poisson(se, model == "hierarchical", compiled)
    if callable(keys):
        keys = keys()
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
        used = job.pool(out, sorted_keys, order, items, tau, compiled)
        fit.update(pool_by=used, tau=tau)
    fit["origin"] = str(first) if first else None
    return _wrap(out, sorted_keys, names, model, model, fit, 0.05)


class _Job:
    """One streamed fit: the chunks and how to fit each."""

    def __init__(self, chunks: Chunks, controls: list[str], first: dt.date | None) -> None:
        self.source, self.controls, self.first = chunks, controls, first

    def chunks(self) -> Iterator[tuple[int, np.ndarray, pl.DataFrame]]:
        """The chunks; the kernels get each group's first row (``starts``) and no group
        column (``by=[]``): the groups are already in order, nothing to sort."""
        return self.source()

    @staticmethod
    def _starts(counts: np.ndarray) -> np.ndarray:
        """First row of each group of a chunk (its rows are contiguous, in group order)."""
        return np.cumsum(counts) - counts

    @staticmethod
    def _join(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """The chunks' per-group arrays end to end (``calendar`` padded to the widest); each
        chunk's array is dropped once joined (at most one array held twice)."""
        out: dict[str, np.ndarray] = {}
        for k in list(parts[0]):
            vs = [p.pop(k) for p in parts]
            if k == "calendar":
                wide = max(v.shape[1] for v in vs)
                vs = [np.pad(v, ((0, 0), (0, wide - v.shape[1]))) for v in vs]
            out[k] = np.concatenate(vs) if len(vs) > 1 else vs[0]
            del vs
        return out

    def _fit_chunks(self, fit: Any, **options: Any) -> tuple[dict[str, np.ndarray], list[str]]:
        """Apply a batched kernel (``fit_ols_runs`` / ``fit_poisson_runs``) chunk by chunk."""
        parts: list[dict[str, np.ndarray]] = []
        names: list[str] = []
        for _, counts, frame in self.chunks():
            res = fit(frame, [], self.controls, self.first, starts=self._starts(counts), **options)
            parts.append(res[0])
            names = res[2]
            del res, frame
            release()  # the chunk's freed temporaries back to the system (peak memory)
        assert parts
        return self._join(parts), names

    def ols(
        self, se: str, hac_lags: int | None, compiled: bool | None = None
    ) -> tuple[dict[str, np.ndarray], list[str]]:
        from .glm_blocks import fit_ols_runs

        return self._fit_chunks(fit_ols_runs, se=se, hac_lags=hac_lags, compiled=compiled)

    def poisson(
        self, se: str, calendar: bool, compiled: bool | None = None
    ) -> tuple[dict[str, np.ndarray], list[str]]:
        from .glm_blocks import fit_poisson_runs

        return self._fit_chunks(fit_poisson_runs, se=se, calendar=calendar, compiled=compiled)

    def pool(
        self,
        out: dict[str, np.ndarray],
        keys: pl.DataFrame,
        order: np.ndarray,
        items: pl.DataFrame | None,
        tau: str,
        compiled: bool | None = None,
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
        shrunk, used = shrink(
            out, attrs, out["mean_quantity"], None, tau=tau, compiled=bool(compiled)
        )
        out.update(shrunk)
        out.pop("calendar", None)  # (groups x weeks) sums: pooling was their only use
        release()
        # sorted position of each group (in the chunks' order)
        pos = np.empty_like(order)
        pos[order] = np.arange(order.size)
        fields = (OWN, "elasticity", "flags", "params")
        for g0, counts, frame in self.chunks():
            at = pos[g0 : g0 + counts.size]
            part = {k: out[k][at] for k in fields}
            starts = self._starts(counts)
            refit_runs(frame, [], self.controls, self.first, part, starts=starts, compiled=compiled)
            out["params"][at] = part["params"]
            del frame
            release()
        return used


__all__ = ["STREAMED_MODELS", "fit_streamed"]
