"""What every benchmark script shares: median timing, peak memory and the JSON line format.

Each measurement is printed on stdout as one JSON object (``run_all.py`` collects them)::

    {"bench": "estimate", "name": "ols, default controls", "size": 100000,
     "unit": "groups", "seconds": 0.61, "repeat": 3, "reference": "DuckDB regr_slope",
     "reference_seconds": 0.20, "ratio": 3.05, "peak_mb": 981.2, ...extra fields}

``seconds`` and ``reference_seconds`` are medians of ``repeat`` runs measured in the same
process run; ``ratio`` is always ``seconds / reference_seconds`` (below 1: pricelab is
faster). ``peak_mb`` is the peak resident memory of the process that ran the measurement
(``ru_maxrss``; scripts that need a per-measurement peak run it in a fresh subprocess).
Human-readable progress goes to stderr.
"""

from __future__ import annotations

import contextlib
import gc
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def timed(fn: Callable[[], Any], repeat: int = 3) -> tuple[Any, float]:
    """``(last result, median seconds)`` of ``repeat`` calls of ``fn``."""
    times, out = [], None
    for _ in range(max(1, repeat)):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, statistics.median(times)


def peak_mb(children: bool = False) -> float:
    """Peak resident memory in MB (MiB) of this process (or of its largest waited-for child).

    On Linux, this process's own high-water mark (``VmHWM``): ``ru_maxrss`` also carries the
    peak of the parent that started this process (the kernel keeps the old address space's
    peak at ``exec``), so a child of a large benchmark driver reported the driver's peak.
    """
    if not children:
        try:
            status = Path("/proc/self/status").read_text()
            return round(int(status.split("VmHWM:")[1].split()[0]) / 1024, 1)
        except (OSError, IndexError, ValueError):
            pass
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


def reset_peak() -> None:
    """Start :func:`peak_mb` afresh from this process's present size (Linux): a benchmark
    that builds its data in process measures the work's peak, not the data generator's."""
    gc.collect()
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def emit(
    bench: str,
    name: str,
    size: int,
    seconds: float,
    *,
    unit: str = "rows",
    repeat: int = 1,
    reference: str | None = None,
    reference_seconds: float | None = None,
    peak: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Print one measurement as a JSON line on stdout and return it."""
    rec: dict[str, Any] = {
        "bench": bench,
        "name": name,
        "size": int(size),
        "unit": unit,
        "seconds": round(float(seconds), 4),
        "repeat": repeat,
        "reference": reference,
        "reference_seconds": None if reference_seconds is None else round(reference_seconds, 4),
        "ratio": (round(seconds / reference_seconds, 4) if reference_seconds else None),
        "peak_mb": peak_mb() if peak is None else round(peak, 1),
    }
    rec.update(extra)
    print(json.dumps(rec), flush=True)
    return rec


def log(message: str) -> None:
    """Progress for humans (stderr: stdout holds only measurements)."""
    print(message, file=sys.stderr, flush=True)
