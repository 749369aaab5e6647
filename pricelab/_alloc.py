"""Allocator settings for the batch commands (glibc only; elsewhere nothing happens).

The block kernels allocate and free arrays of a few MB thousands of times per run. With
glibc's defaults each of them is a fresh ``mmap`` (or a per-thread heap trimmed on every
free), so every page is faulted in again: at 300k item-markets x 52 weeks ``estimate
--model ols`` spent about 2 of its 8 CPU seconds in the kernel's page-fault handling.
:func:`tune_allocator` keeps arrays below 64 MB on the heap and up to 32 MB of freed heap
for reuse (two arenas for the worker threads): ols's system CPU time went from 2.7 to 1.6 s
and ``--model hierarchical``'s peak from 965 to 885 MiB (256 MB kept for reuse raised the
peak to 1,030 MiB instead). It is process-wide, so only the command line calls it
(``pricelab estimate``), never the library.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_SETTINGS = (
    (_M_ARENA_MAX, 2),
    (_M_MMAP_THRESHOLD, 64 << 20),
    (_M_TRIM_THRESHOLD, 32 << 20),
    (_M_TOP_PAD, 16 << 20),
)


def tune_allocator() -> bool:
    """Apply the settings above through glibc's ``mallopt``; False where there is none."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: no mallopt
        return False
    return all(mallopt(param, value) == 1 for param, value in _SETTINGS)


_TRIM: list[object] = []  # glibc's malloc_trim, looked up once (an empty list: not yet)


def release() -> bool:
    """Give freed heap pages back to the system (glibc ``malloc_trim(0)``: also the free
    pages in the middle of the heap, which the trim threshold never returns); False
    where there is none. Harmless anywhere: it changes no allocation, only resident size.

    The streamed fits call it between chunks and phases: at 300k item-markets x 52 weeks
    ``estimate --model hierarchical`` held 289 MB of freed heap after its first pass (of a
    488 MB heap), freed numpy temporaries of the block kernels that later allocations
    could not reuse whole, and its peak came on top of them in the second pass.
    """
    if not _TRIM:
        fn = None
        if sys.platform.startswith("linux"):
            try:
                fn = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
            except (OSError, AttributeError):  # musl and others
                fn = None
        _TRIM.append(fn)
    trim = _TRIM[0]
    if trim is None:
        return False
    trim(0)  # type: ignore[operator]
    return True
