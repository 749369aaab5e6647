"""The local engine on a database: sales streamed from DuckDB in chunks of whole groups.

``estimate`` on the whole sales table used to hold it three times over (DuckDB's sorted
result, the polars frame, the kernels' arrays). For ``ols``, ``poisson`` and
``hierarchical`` grouped by item × market, :func:`estimate_chunked` instead

1. asks DuckDB for each group's key, row count and ``rowid`` range in one parallel
   aggregate (with the date range and whether any ``promo`` is set);
2. when every group's rows are one contiguous ``rowid`` range (``ingest`` writes them so,
   in key order or not), reads only the numeric columns (no item or market strings) as
   Arrow record batches in ``rowid`` order, cuts them at group ends into chunks of about
   ``CHUNK_ROWS`` rows and fits each chunk with the block kernels
   (:mod:`pricelab.elasticity.glm_blocks`) under an integer group code; the ``trend``
   origin is the first week of the whole (filtered) table, so nothing is shifted;
3. puts the per-group arrays back in key order and wraps them as
   :func:`pricelab.elasticity.estimate` does.

The scans run with DuckDB's buffer pool bounded (:mod:`pricelab.store.buffers`): the
table's blocks leave it once read instead of staying until the command ends.

``hierarchical`` streams twice: the per-group Poisson fits, the pooling over all groups
(one row each), then the refit of each group's intercept and controls. Memory follows the
chunk and the per-group arrays, not the table. When a group's rows are not one ``rowid``
range (e.g. rows of one group appended by two ingests) it returns None and the caller
loads the whole sorted frame instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, NamedTuple

import numpy as np
import polars as pl

from pricelab.engines.keyruns import HASH as _HASH
from pricelab.engines.keyruns import KeyRuns, prefetched
from pricelab.engines.keyruns import Misordered as _Misordered
from pricelab.store import Store
from pricelab.store.buffers import unbounded_on_oom
from pricelab.store.loaders import SALES_KEY
from pricelab.store.sales_keys import SALES_KEYS

#: rows per chunk handed to the kernels (whole groups: a chunk ends at a group boundary)
CHUNK_ROWS = 1_000_000
#: chunks the scan may read ahead of the fit while the compiled kernel is still loading,
#: beyond the one it always reads ahead (numba's ~0.4 CPU s holds the GIL: DuckDB's scan
#: runs on the other core meanwhile)
LOADING_AHEAD = 4
#: models and groupings fitted here (per group; ``hierarchical`` pools one row per group)
CHUNKED_MODELS = ("ols", "poisson", "hierarchical")
_KEY = ["item_id", "market"]


class _Groups(NamedTuple):
    """The groups of the stored sales in ``rowid`` order."""

    keys: pl.DataFrame  # item_id, market
    counts: np.ndarray
    r0: np.ndarray  # first rowid of each group
    total: int
    first: dt.date | None
    last: dt.date | None
    promo: bool  # some row has a promo value


def chunkable(kwargs: dict[str, Any]) -> bool:
    """True for ``estimate`` options this path handles (per-group fits by item × market)."""
    by = kwargs.get("by")
    return (
        kwargs.get("model") in CHUNKED_MODELS
        and (by is None or list(by) == _KEY)
        and not kwargs.get("fixed_effects")
        and not kwargs.get("pool_by")
        and kwargs.get("instrument") is None
    )


def warm(store: Store, kwargs: dict[str, Any]) -> None:
    """Start loading the compiled kernels now (numba, ~0.4 CPU s in a background thread)
    when the stored sales are big enough for :func:`estimate_chunked` to take them.

    Called as soon as the store is open, the load overlaps DuckDB's work (the input
    fingerprint, the groups' keys, the first chunks of the scan) instead of holding up
    the first chunk's fit. Which kernel fits is still decided on the rows the fit reads
    (the same threshold, :func:`pricelab.elasticity.prepare_compiled`): a ``before``
    that leaves fewer rows only loaded numba for nothing.
    """
    if not chunkable(kwargs):
        return
    from pricelab.elasticity import prepare_compiled, resolve_se

    model = kwargs["model"]
    prepare_compiled(store.count("sales"), resolve_se(model, kwargs.get("se")), model)


def _groups(store: Store, where: str, params: list[object]) -> _Groups | None:
    """Per-group row counts and ``rowid`` ranges; None unless each group is one range."""
    g = store.query(
        "SELECT item_id, market, min(rowid) AS r0, max(rowid) AS r1, count(*) AS n, "
        f"count(promo) AS n_promo, min(date) AS d0, max(date) AS d1 FROM sales{where} "
        "GROUP BY item_id, market",
        params,
    ).sort("r0")
    if g.height == 0:
        return None
    r0, r1, n = (g[c].to_numpy().astype(np.int64) for c in ("r0", "r1", "n"))
    if not np.array_equal(r1 - r0 + 1, n):  # some group's rows are not one range
        return None
    first, last = g["d0"].min(), g["d1"].max()
    return _Groups(
        g.select(_KEY),
        n,
        r0,
        int(n.sum()),
        first if isinstance(first, dt.date) else None,
        last if isinstance(last, dt.date) else None,
        bool(g["n_promo"].sum()),
    )


def _chunks(
    store: Store, sql: str, params: list[object], groups: _Groups, rows: int
) -> Iterator[tuple[int, np.ndarray, pl.DataFrame]]:
    """``(g0, counts, frame)``: the numeric rows of groups ``g0 .. g0 + counts.size - 1``,
    checked to be the groups' ``rowid`` ranges in order (else :class:`_Misordered`)."""
    import pyarrow as pa

    ends = np.cumsum(groups.counts)
    reader = store.con.sql(sql, params=params).to_arrow_reader(min(rows, 1 << 17))
    pending: list[Any] = []
    have = start = g0 = 0
    last_id = -1
    batches = iter(reader)
    done = False
    while not done:
        batch = next(batches, None)
        if batch is not None:
            pending.append(batch)
            have += batch.num_rows
            if have < rows:
                continue
        else:
            done = True
        g1 = int(np.searchsorted(ends, start + have, side="right"))
        if g1 == g0:
            if done and have:
                raise _Misordered
            continue
        table = pa.Table.from_batches(pending)
        cut = int(ends[g1 - 1]) - start
        chunk, rest = table.slice(0, cut), table.slice(cut)
        counts = groups.counts[g0:g1]
        rid = chunk.column("rowid").combine_chunks().to_numpy()  # (no pandas import)
        heads = np.r_[0, np.cumsum(counts)[:-1]]
        if rid[0] <= last_id or (np.diff(rid) <= 0).any() or (rid[heads] != groups.r0[g0:g1]).any():
            raise _Misordered
        last_id = int(rid[-1])
        frame = pl.from_arrow(chunk.drop_columns(["rowid"]))
        assert isinstance(frame, pl.DataFrame)
        yield g0, counts, frame
        pending = [rest] if rest.num_rows else []
        pending = [b for t in pending for b in t.to_batches()]
        have -= cut
        start += cut
        g0 = g1
    if g0 != groups.counts.size or have:
        raise _Misordered


def estimate_chunked(
    store: Store,
    kwargs: dict[str, Any],
    *,
    items: pl.DataFrame | None,
    before: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    chunk_rows: int | None = None,
) -> Any:
    """``estimate(**kwargs)`` on the stored sales, chunk by chunk; None when not streamable.

    Returns an :class:`~pricelab.elasticity.ElasticityResults` equal to the one of the
    whole sorted frame (to rounding: the same kernels on the same groups).
    """
    from pricelab.elasticity import resolve_controls

    store.require_sales()
    params: list[object] = [] if before is None else [before]
    where = "" if before is None else " WHERE date < CAST(? AS DATE)"
    controls = resolve_controls(kwargs.get("controls", "default"))
    stored = store.query("SELECT * FROM sales LIMIT 0").columns
    rows = chunk_rows or CHUNK_ROWS
    bad = partial(_bad, store, where, params)
    fit = partial(_fit, kwargs, controls, items, progress, bad)
    if store.has_table(SALES_KEYS):  # groups found in the scan itself: no aggregate first
        n, first, last, n_promo = store.execute(
            f"SELECT count(*), min(date), max(date), count(promo) FROM sales{where}", params
        )[0]
        if not n:
            return None
        cols = _columns(controls, stored, bool(n_promo))
        sql = f"SELECT hash(item_id, market) AS {_HASH}, {cols} FROM sales{where}"
        runs = KeyRuns(store, sql, params, rows)
        try:
            return unbounded_on_oom(store.con, lambda: fit(runs, runs.keys, int(n), first, last))
        except _Misordered:
            pass  # some group's rows are not contiguous: the rowid ranges decide
    groups = _groups(store, where, params)
    if groups is None:
        return None  # not streamable, or no rows: the whole-frame path decides
    cols = _columns(controls, stored, groups.promo)
    sql = f"SELECT rowid, {cols} FROM sales{where}"

    def chunks() -> Iterator[tuple[int, np.ndarray, pl.DataFrame]]:
        assert groups is not None
        return _chunks(store, sql, params, groups, rows)

    try:
        return unbounded_on_oom(
            store.con, lambda: fit(chunks, groups.keys, groups.total, groups.first, groups.last)
        )
    except _Misordered:
        return None


def _columns(controls: list[str], stored: list[str], promo: bool) -> str:
    """The sales columns a fit reads (no keys): dates, prices, quantities, controls.

    Quantities come as doubles and a missing ``promo`` as 0 (what the kernels make of
    them): DuckDB converts them in its scan threads, not the fitting thread.
    """
    cols = ["date", "price", "quantity"] + ["promo"] * promo
    cols += [c for c in dict.fromkeys(controls) if c in stored and c not in cols]
    cast = {
        "quantity": "CAST(quantity AS DOUBLE) AS quantity",
        "promo": "CAST(coalesce(promo, 0) AS DOUBLE) AS promo",
    }
    return ", ".join(cast.get(c, c) for c in cols)


def _fit(
    kwargs: dict[str, Any],
    controls: list[str],
    items: pl.DataFrame | None,
    progress: Callable[[int, int], None] | None,
    bad: Callable[[], None],
    source: Callable[[], Iterator[tuple[int, np.ndarray, pl.DataFrame]]],
    keys: Any,
    total: int,
    first: Any,
    last: Any,
) -> Any:
    """:func:`~pricelab.elasticity.fit_streamed` on ``source``'s chunks, each checked for
    invalid prices and quantities (the whole-frame path's error) and counted for
    ``progress``."""
    from pricelab.elasticity import compiled_loading, fit_streamed, prepare_compiled, resolve_se

    model = kwargs["model"]
    compiled = prepare_compiled(total, resolve_se(model, kwargs.get("se")), model)

    def ahead() -> int:  # chunks read ahead while numba loads (~30 MB each)
        return LOADING_AHEAD if compiled and compiled_loading(model) else 0

    def chunks() -> Iterator[tuple[int, np.ndarray, pl.DataFrame]]:
        done = 0
        # the next chunk is read while this one is fitted (more while numba loads)
        scan = prefetched(source(), more=ahead)
        try:
            for g0, counts, frame in scan:
                ok = (pl.col("price") > 0).all() & (pl.col("quantity") >= 0).all()
                if not frame.select(ok).item():
                    scan.close()  # the connection is free again for the error's counts
                    bad()
                yield g0, counts, frame
                done += frame.height
                if progress is not None:
                    progress(done, total)
        finally:
            scan.close()

    return fit_streamed(
        chunks,
        keys,
        model=kwargs["model"],
        controls=controls,
        se=kwargs.get("se"),
        hac_lags=kwargs.get("hac_lags"),
        tau=kwargs.get("tau", "level"),
        first=first if isinstance(first, dt.date) else None,
        last=last if isinstance(last, dt.date) else None,
        items=items,
        compiled=compiled,
    )


def _bad(store: Store, where: str, params: list[object]) -> None:
    """Raise :func:`~pricelab.elasticity.estimate`'s error for invalid prices or
    quantities, with the whole table's counts."""
    from pricelab.errors import DataError

    bad, badq = store.execute(
        "SELECT sum(CASE WHEN price > 0 THEN 0 ELSE 1 END), "
        f"sum(CASE WHEN quantity >= 0 THEN 0 ELSE 1 END) FROM sales{where}",
        params,
    )[0]
    if bad:
        raise DataError(f"sales: column 'price' must be > 0 ({bad} rows are not)")
    raise DataError(f"sales: column 'quantity' must be >= 0 ({badq} rows are not)")


__all__ = ["CHUNKED_MODELS", "CHUNK_ROWS", "SALES_KEY", "chunkable", "estimate_chunked", "warm"]
