"""The local engine on a database: sales streamed from DuckDB in chunks of whole groups.

``estimate`` on the whole sales table used to hold it three times over (DuckDB's sorted
result, the polars frame, the kernels' arrays). For the per-group models ``ols`` and
``poisson`` grouped by item × market, :func:`estimate_chunked` instead reads the table
as Arrow record batches in storage order (``ingest`` writes it in key order), cuts them
into chunks of whole groups of about ``CHUNK_ROWS`` rows and runs the same
:func:`pricelab.elasticity.estimate` on each, so memory follows the chunk, not the table.
Like the Spark engine, each chunk's ``trend`` intercept is moved to the whole data set's
first week. When the stored rows are not in key order (e.g. after ``ingest --replace``)
it returns None and the caller loads the whole sorted frame instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import polars as pl

from pricelab.store import Store
from pricelab.store.loaders import SALES_KEY, sort_by_key

#: rows per chunk handed to the kernels (whole groups: a chunk ends at a group boundary)
CHUNK_ROWS = 500_000
#: days per year of the ``trend`` control (as the estimators count it)
YEAR_DAYS = 365.25
#: models and groupings that are fitted group by group (nothing pooled across groups)
CHUNKED_MODELS = ("ols", "poisson")


class _Unsorted(Exception):
    """The stored sales are not in key order."""


def chunkable(kwargs: dict[str, Any]) -> bool:
    """True for ``estimate`` options this path handles (per-group fits by item × market)."""
    by = kwargs.get("by")
    return kwargs.get("model") in CHUNKED_MODELS and (
        by is None or list(by) == ["item_id", "market"]
    )


def _summary(store: Store, where: str, params: list[object]) -> tuple[Any, ...]:
    sql = f"SELECT count(*), min(date), max(date), count(promo), count(unit_cost) FROM sales{where}"
    return tuple(store.execute(sql, params)[0])


def _chunks(store: Store, sql: str, params: list[object], rows: int) -> Iterator[pl.DataFrame]:
    """Sales in chunks of whole (item_id, market) groups, checked to be in key order."""
    reader = store.con.sql(sql, params=params).to_arrow_reader(min(rows, 1 << 20))
    pending: list[pl.DataFrame] = []
    size = 0
    last_key: tuple[Any, ...] | None = None
    for batch in reader:
        frame = pl.from_arrow(batch)
        assert isinstance(frame, pl.DataFrame)
        pending.append(frame)
        size += frame.height
        if size < rows:
            continue
        df = pl.concat(pending, rechunk=True)
        keys = df.select("item_id", "market")
        tail = keys.row(df.height - 1)
        # cut before the last group's first row so every chunk holds whole groups
        same = keys.select(
            ((pl.col("item_id") == tail[0]) & (pl.col("market") == tail[1])).arg_true().first()
        ).item()
        cut = int(same)
        if cut == 0:  # one group fills the chunk: keep reading
            pending, size = [df], df.height
            continue
        chunk, rest = df[:cut], df[cut:]
        last_key = _check(chunk, last_key)
        yield chunk
        pending, size = [rest], rest.height
    if size:
        df = pl.concat(pending, rechunk=True)
        _check(df, last_key)
        yield df


def _check(chunk: pl.DataFrame, last_key: tuple[Any, ...] | None) -> tuple[Any, ...]:
    """Raise :class:`_Unsorted` unless ``chunk`` is in key order after ``last_key``."""
    if sort_by_key(chunk) is not chunk:
        raise _Unsorted
    first = chunk.row(0)[:2]
    if last_key is not None and first <= last_key:
        raise _Unsorted
    return chunk.row(chunk.height - 1)[:2]


def estimate_chunked(
    store: Store,
    kwargs: dict[str, Any],
    *,
    items: pl.DataFrame | None,
    before: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Any:
    """``estimate(**kwargs)`` on the stored sales, chunk by chunk; None when not in order.

    Returns an :class:`~pricelab.elasticity.ElasticityResults` equal to the one of the
    whole sorted frame (the intercept moved to the first week as the Spark engine does).
    """
    from pricelab.elasticity import ElasticityResults, resolve_controls
    from pricelab.elasticity import estimate as _estimate

    store.require_sales()
    params: list[object] = [] if before is None else [before]
    where = "" if before is None else " WHERE date < CAST(? AS DATE)"
    total, first, last, n_promo, n_cost = _summary(store, where, params)
    if not total:
        return None  # the whole-frame path raises the proper error
    cols = ["item_id", "market", "date", "price", "quantity"]
    cols += ["promo"] * bool(n_promo) + ["unit_cost"] * bool(n_cost)
    # extra sales columns the fit uses (controls such as 'deal', fixed-effect columns)
    stored = store.query("SELECT * FROM sales LIMIT 0").columns
    wanted = [
        *resolve_controls(kwargs.get("controls", "default")),
        *(kwargs.get("fixed_effects") or []),
    ]
    cols += [c for c in dict.fromkeys(wanted) if c in stored and c not in cols]
    sql = f"SELECT {', '.join(cols)} FROM sales{where}"
    tables: list[pl.DataFrame] = []
    coefs: list[pl.DataFrame] = []
    parameters: dict[str, Any] = {}
    done = 0
    try:
        for chunk in _chunks(store, sql, params, chunk_rows):
            res = _estimate(chunk, items=items, **kwargs)
            p = res.params
            start = chunk["date"].min()
            if first is not None and "trend" in p.columns and start != first:
                shift = (start - first).days / YEAR_DAYS  # type: ignore[operator]
                p = p.with_columns(pl.col("intercept") - pl.col("trend") * shift)
            tables.append(res.elasticities)
            coefs.append(p)
            parameters = dict(res.parameters)
            done += chunk.height
            if progress is not None:
                progress(done, int(total))
    except _Unsorted:
        return None
    parameters["end"] = str(last) if isinstance(last, dt.date) else None
    parameters["origin"] = str(first) if isinstance(first, dt.date) else None
    table = pl.concat(tables, how="vertical_relaxed")
    pframe = pl.concat(coefs, how="diagonal_relaxed").select(coefs[0].columns)
    return ElasticityResults(table, pframe, kwargs["model"], parameters)


__all__ = ["CHUNKED_MODELS", "CHUNK_ROWS", "SALES_KEY", "chunkable", "estimate_chunked"]
