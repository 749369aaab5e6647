"""Chunks of whole groups found in the sales scan itself (no aggregate pass first).

``ingest`` stores each group's rows together (in key order) and keeps the table
``sales_keys`` (:mod:`pricelab.store.sales_keys`): the distinct ``item_id, market`` keys
of the sales. :class:`KeyRuns` reads the numeric columns in stored order with one hash of
each row's key, ``hash(item_id, market)``; a group is a run of equal hashes, its key the
``sales_keys`` row with that hash. A run whose hash is not there, a key met in two runs
(rows of a group stored apart, e.g. appended by a later ingest) or two keys with one hash
raise :class:`Misordered` and the caller reads the groups another way. So a stale or
edited ``sales_keys`` can slow ``estimate`` down but never give a group wrong rows.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator
from itertools import chain
from typing import Any, TypeVar

import numpy as np
import polars as pl

from pricelab.store import Store
from pricelab.store.sales_keys import SALES_KEYS

#: the per-row key hash column of the scan
HASH = "_key_hash"
T = TypeVar("T")


class Misordered(Exception):
    """The scan did not return each group's rows together (or a key is unknown)."""


class KeyRuns:
    """``KeyRuns(store, sql, params, rows)()`` yields ``(g0, counts, frame)``: the rows of
    ``sql`` (its first column :data:`HASH`) cut after whole groups into chunks of about
    ``rows`` rows (without the hash); :meth:`keys` gives the groups' keys after a scan."""

    def __init__(self, store: Store, sql: str, params: list[object], rows: int) -> None:
        self.store, self.sql, self.params, self.rows = store, sql, params, rows
        table = store.query(
            f"SELECT item_id, market, hash(item_id, market) AS h FROM {SALES_KEYS} ORDER BY h"
        )
        self._hash = table["h"].to_numpy()
        self._keys = table.select("item_id", "market")
        self._order: np.ndarray | None = None  # lookup rows of the groups in scan order

    def keys(self) -> pl.DataFrame:
        """``item_id, market`` of the groups in scan order (after one whole scan)."""
        if self._order is None:
            raise Misordered
        return self._keys[self._order]

    def __call__(self) -> Iterator[tuple[int, np.ndarray, pl.DataFrame]]:
        if self._hash.size == 0 or (np.diff(self._hash) == 0).any():
            raise Misordered  # no keys, or two keys with one hash
        first = self._order is None
        seen = np.zeros(self._hash.size, dtype=bool)
        found: list[np.ndarray] = []
        g0 = 0
        for counts, at, frame in self._cut():
            if first:
                ordered = np.sort(at)  # (np.unique would import numpy.ma: 60 ms)
                if seen[at].any() or (ordered[1:] == ordered[:-1]).any():
                    raise Misordered  # a group in two runs
                seen[at] = True
                found.append(at)
            elif self._order is None or not np.array_equal(at, self._order[g0 : g0 + at.size]):
                raise Misordered  # the table changed between two scans
            yield g0, counts, frame
            g0 += counts.size
        if first:
            self._order = np.concatenate(found) if found else np.zeros(0, dtype=np.int64)

    def _locate(self, hashes: np.ndarray) -> np.ndarray:
        at = np.minimum(np.searchsorted(self._hash, hashes), self._hash.size - 1)
        if not np.array_equal(self._hash[at], hashes):
            raise Misordered  # a key that sales_keys does not know
        return at

    def _cut(self) -> Iterator[tuple[np.ndarray, np.ndarray, pl.DataFrame]]:
        """``(counts, lookup rows, frame)`` per chunk of whole groups."""
        reader = self.store.con.sql(self.sql, params=self.params).to_arrow_reader(
            min(self.rows, 1 << 17)
        )
        pending: list[pl.DataFrame] = []
        have = 0
        for batch in chain(reader, [None]):
            if batch is not None:
                if batch.num_rows:
                    frame = pl.from_arrow(batch)
                    assert isinstance(frame, pl.DataFrame)
                    pending.append(frame)
                    have += batch.num_rows
                if have < self.rows:
                    continue
            if not pending:
                break
            df = pl.concat(pending, rechunk=True) if len(pending) > 1 else pending[0]
            h = df[HASH].to_numpy()
            edges = np.flatnonzero(h[1:] != h[:-1]) + 1
            if batch is None:
                cut = df.height
            elif edges.size:
                cut = int(edges[-1])  # the last group may go on in the next batches
                edges = edges[:-1]
            else:  # one group longer than a chunk: read on
                pending = [df]
                continue
            starts = np.r_[0, edges]
            yield np.diff(np.r_[starts, cut]), self._locate(h[starts]), df.slice(0, cut).drop(HASH)
            rest = df.slice(cut)
            pending, have = ([rest], rest.height) if rest.height else ([], 0)


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def prefetched(
    items: Iterator[T], depth: int = 1, more: Callable[[], int] | None = None
) -> Generator[T, None, None]:
    """``items``, produced by a background thread up to ``depth`` ahead of the consumer
    (``more()`` more at the moment, e.g. while the kernel that consumes them loads).

    The scan of chunk N + 1 (DuckDB, Arrow to polars, the cut: all release the GIL)
    then runs while the kernels fit chunk N: the reference query uses every core, and
    this keeps two busy instead of alternating. An exception of ``items`` is raised in
    the consumer; closing this iterator stops the thread (after the batch it is reading)
    and closes ``items`` (its DuckDB result), so the connection is free again.
    """
    box: deque[Any] = deque()
    ready = threading.Condition()
    stop = threading.Event()
    done = object()

    def put(x: Any) -> bool:
        with ready:
            while not stop.is_set() and len(box) >= depth + (more() if more else 0):
                ready.wait(0.05)  # woken when the consumer takes one (or stops)
            if stop.is_set():
                return False
            box.append(x)
            ready.notify_all()
            return True

    def work() -> None:
        try:
            for x in items:
                if not put(x):
                    return
            put(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            put(_Failed(exc))

    thread = threading.Thread(target=work, name="pricelab-scan", daemon=True)
    thread.start()
    try:
        while True:
            with ready:
                while not box:
                    ready.wait()
                x = box.popleft()
                ready.notify_all()
            if x is done:
                return
            if isinstance(x, _Failed):
                raise x.exc
            yield x
    finally:
        stop.set()
        with ready:
            ready.notify_all()
        thread.join()
        close = getattr(items, "close", None)
        if close is not None:
            close()


__all__ = ["HASH", "KeyRuns", "Misordered", "prefetched"]
