"""DuckDB's buffer pool while a command streams a table once: bounded, so read blocks go.

DuckDB keeps every block of a stored table it has read in its buffer pool until its memory
limit (80% of RAM by default) pushes it out. ``estimate`` on a database reads the sales
chunk by chunk (twice for ``hierarchical``), and the run's input fingerprint hashes every
column of them beside it: at 300k item-markets x 52 weeks the pool grew to 270 MiB of
table blocks that nothing read again (175 MiB of the fit's columns, 95 more of the
fingerprint's), on top of the fit's own arrays, which took ``--model poisson`` to its
1 GB goal. Within :func:`bounded_buffers` the limit is low: a block leaves the pool once
the scan has passed it (a block read again, as by ``hierarchical``'s second pass, comes
back from the operating system's file cache). A streamed scan pins one block (256 KiB) per
column and thread and a small result buffer, far below the bound; if DuckDB still runs out
of memory under it, :func:`unbounded_on_oom` runs the work again with the limit as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from functools import cache
from typing import Any, TypeVar

import duckdb

#: buffer pool per DuckDB thread while bounded (64 blocks of 256 KiB)
PER_THREAD = 16 << 20
#: the least buffer pool while bounded, whatever the threads
FLOOR = 64 << 20
T = TypeVar("T")


def _setting(con: Any, name: str) -> str:
    return str(con.execute(f"SELECT current_setting('{name}')").fetchall()[0][0])


@contextmanager
def bounded_buffers(con: Any) -> Iterator[bool]:
    """Within the block, DuckDB's memory limit is ``max(FLOOR, PER_THREAD x threads)``
    bytes, when it was DuckDB's default (a limit someone set is left as it is); when the
    block leaves (also on an error) it is the default again, exactly. Yields whether the
    limit was lowered: not when DuckDB refuses (memory held elsewhere that it cannot
    free), the limit was set by someone or the default is already that low."""
    lowered = False
    try:
        if _setting(con, "memory_limit") == _default_limit():  # else as someone set it
            bound = max(FLOOR, PER_THREAD * int(_setting(con, "threads")))
            if bound < _bytes(_default_limit()):
                con.execute(f"SET memory_limit = '{bound}B'")
                lowered = True
    except duckdb.Error:  # the limit stays what it was
        pass
    try:
        yield lowered
    finally:
        if lowered:
            with suppress(duckdb.Error):  # never hide the block's own error
                con.execute("RESET memory_limit")


@cache
def _default_limit() -> str:
    """DuckDB's default memory limit as ``current_setting`` shows it (80% of the RAM)."""
    with duckdb.connect() as con:
        return _setting(con, "memory_limit")


def _bytes(text: str) -> float:
    """A memory setting's text (``'18.7 GiB'``) in bytes (0 when it is not one)."""
    number, _, unit = text.partition(" ")
    scale = {"bytes": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}
    try:
        return float(number) * scale[unit]
    except (KeyError, ValueError):
        return 0.0


def unbounded_on_oom(con: Any, work: Callable[[], T]) -> T:
    """``work()`` within :func:`bounded_buffers`; if DuckDB runs out of memory under the
    bound, ``work()`` once more without it (``work`` must be safe to start again: it
    only reads)."""
    with bounded_buffers(con) as lowered:
        try:
            return work()
        except duckdb.OutOfMemoryException:
            if not lowered:
                raise
    return work()


__all__ = ["FLOOR", "PER_THREAD", "bounded_buffers", "unbounded_on_oom"]
