"""One ``pricelab`` command's timeline: phases marked, every thread's CPU sampled.

    python benchmarks/bench_timeline.py [--every 0.01] [--json OUT] -- estimate --model ols \
        --db PATH --output el.parquet

Runs the command in this process as ``python -m pricelab`` would (collector off during
start-up), with a sampler thread reading each thread's user + system CPU from
``/proc/self/task/*/stat`` every ``--every`` seconds, and marks taken on entry and exit of
the functions that bound the command's phases (patched as their modules load, so imports
happen in the command's own order). Prints, per phase of the main thread, its wall time and
the CPU each kind of thread spent in it (main, the scan's prefetch, numba's loading
thread, the helper that writes ``--output`` beside the inserts, DuckDB's own threads). The
marks and samples cost ~1-2 % CPU; the interpreter's own start (before this script) is
taken from the process's start time in ``/proc/self/stat``.
"""

from __future__ import annotations

import gc

gc.disable()  # as pricelab/__main__.py: off while start-up imports load

import argparse  # noqa: E402
import functools  # noqa: E402
import importlib.abc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
MARKS: list[tuple[float, str, float]] = []  # (perf_counter, label, process CPU)
# module -> [(owner attribute path, label)]: marks on entry ("label>") and exit ("label<")
WATCH = {
    "pricelab.store.db": [
        ("Store.open", "store.open"),
        ("Store.write_result", "insert"),
        ("Store.query", "query"),
        ("Store.execute", "execute"),
        ("Store.count", "count"),
    ],
    "pricelab.store.loaders": [("load_items", "items")],
    "pricelab.engines.chunked": [("warm", "warm"), ("estimate_chunked", "fit")],
    "pricelab.engines.keyruns": [("KeyRuns.__init__", "keys")],
    "pricelab.elasticity.streamed": [("_Job._fit_chunks", "chunks"), ("_wrap", "wrap")],
    "pricelab.elasticity.glm_blocks": [("fit_ols_runs", "kernel")],
    "pricelab.elasticity.compiled": [("_load", "numba")],
    "pricelab.api.estimate": [("_store_estimate", "store"), ("_write", "output")],
    "pricelab.store.runs": [("Run.finish", "finish"), ("fingerprint_ahead", "fingerprint")],
}


def _mark(label: str) -> None:
    MARKS.append((time.perf_counter(), label, time.process_time()))


def _wrapped(fn, label):  # type: ignore[no-untyped-def]
    @functools.wraps(fn)
    def inner(*a, **k):  # type: ignore[no-untyped-def]
        _mark(label + ">")
        try:
            return fn(*a, **k)
        finally:
            _mark(label + "<")

    return inner


def _patch(module, targets) -> None:  # type: ignore[no-untyped-def]
    for path, label in targets:
        *owner_path, name = path.split(".")
        owner = module
        for part in owner_path:
            owner = getattr(owner, part, None)
        if owner is None or not hasattr(owner, name):
            continue
        raw = owner.__dict__.get(name)
        if isinstance(raw, classmethod):
            setattr(owner, name, classmethod(_wrapped(raw.__func__, label)))
        else:
            setattr(owner, name, _wrapped(getattr(owner, name), label))


class _Finder(importlib.abc.MetaPathFinder):
    """Patches a watched module right after it executes (imports keep their order)."""

    def find_spec(self, fullname, path, target=None):  # type: ignore[no-untyped-def]
        if fullname not in WATCH:
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            spec = getattr(finder, "find_spec", lambda *a: None)(fullname, path, target)
            if spec is not None and spec.loader is not None:
                run = spec.loader.exec_module

                def exec_module(module, run=run):  # type: ignore[no-untyped-def]
                    run(module)
                    _patch(module, WATCH[fullname])

                spec.loader.exec_module = exec_module  # type: ignore[method-assign]
                return spec
        return None


def _cpu() -> dict[int, float]:
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            out[int(tid)] = (int(fields[11]) + int(fields[12])) / TICK
        except (OSError, IndexError):
            pass
    return out


def _started() -> float:
    """The process's start on the perf_counter clock (``/proc/self/stat`` field 22)."""
    with open("/proc/self/stat", "rb") as f:
        start = int(f.read().rsplit(b")", 1)[1].split()[19]) / TICK
    with open("/proc/uptime") as f:
        up = float(f.read().split()[0])
    return time.perf_counter() - (up - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--every", type=float, default=0.01)
    ap.add_argument("--json", type=Path, help="write marks and samples here")
    ap.add_argument("--marks", action="store_true", help="also print every mark (s, CPU s)")
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = [c for c in args.command if c != "--"]
    t0 = _started()
    main_tid = threading.get_native_id()
    samples: list[tuple[float, dict[int, float]]] = []
    names: dict[int, str] = {main_tid: "main"}
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.perf_counter(), _cpu()))
            for t in threading.enumerate():
                if t.native_id and t.native_id not in names:
                    names[t.native_id] = t.name
            stop.wait(args.every)

    sampler = threading.Thread(target=sample, name="sampler", daemon=True)
    sampler.start()
    _mark("script")
    sys.meta_path.insert(0, _Finder())
    sys.argv = ["pricelab", *cmd]
    from pricelab.cli.app import main as cli

    code = 0
    try:
        cli()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    _mark("end")
    stop.set()
    sampler.join()
    samples.append((time.perf_counter(), _cpu()))
    seen: dict[int, float] = {}
    for _, cpu in samples:  # a thread that ended keeps the CPU it was last seen with
        seen.update(cpu)
        cpu.update({tid: v for tid, v in seen.items() if tid not in cpu})
    report(t0, samples, names, main_tid, sys.stderr)
    if args.marks:
        for t, m, c in MARKS:
            print(f"{t - t0:8.3f} {c:7.3f}  {m}", file=sys.stderr)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "t0": t0,
                    "marks": [(t - t0, m, c) for t, m, c in MARKS],
                    "names": names,
                    "samples": [(t - t0, c) for t, c in samples],
                }
            )
        )
    sys.exit(code)


def _kind(tid: int, names: dict[int, str], main_tid: int) -> str:
    name = names.get(tid)
    if tid == main_tid:
        return "main"
    if name is None:
        return "duckdb+other"  # threads Python did not start (DuckDB's, numba's pool)
    if name.startswith("pricelab-"):
        return name[len("pricelab-") :]
    if name.startswith("ThreadPoolExecutor"):
        return "pool"  # the kernels' worker threads
    return name


def _cpu_at(samples, t):  # type: ignore[no-untyped-def]
    """Each thread's CPU at time ``t`` (the last sample at or before it)."""
    lo, hi = 0, len(samples) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if samples[mid][0] <= t:
            lo = mid
        else:
            hi = mid - 1
    return samples[lo][1]


def phases() -> list[tuple[str, float, float]]:
    """Named phases of the main thread from the marks (start, end on perf_counter)."""
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for t, m, _ in MARKS:
        first.setdefault(m, t)
        last[m] = t
    order = [
        ("start-up and imports, to the store's opening", "script", "store.open>"),
        ("setup (fingerprint start, count query, group keys)", "store.open>", "chunks>"),
        ("fit (scan + kernel), to the results' wrap", "chunks>", "wrap>"),
        ("wrap (results table)", "wrap>", "wrap<"),
        ("results stored, --output, summaries, commit", "wrap<", "store<"),
        ("printing, closing, exit", "store<", "end"),
    ]
    out = []
    for name, a, b in order:
        if a in first and b in first:
            out.append((name, first[a], first[b] if b != "end" else last[b]))
    return out


def _process_cpu(t: float) -> float:
    """The process's CPU (every thread's) at the mark taken at ``t`` (exact, unlike the
    samples: the sampler thread needs the GIL, which imports hold for long stretches)."""
    return next(c for tm, _, c in MARKS if tm == t)


def report(t0, samples, names, main_tid, out) -> None:  # type: ignore[no-untyped-def]
    kinds = sorted({_kind(t, names, main_tid) for _, c in samples for t in c})
    rows = [("interpreter start, to this script", t0, MARKS[0][0]), *phases()]
    print(
        "| phase | from s | wall s | CPU s (marks) | " + " | ".join(kinds) + " (sampled) |",
        file=out,
    )
    print("|---|---:|---:|---:|" + "---:|" * len(kinds), file=out)
    for name, a, b in rows:
        ca, cb = _cpu_at(samples, a), _cpu_at(samples, b)
        per = dict.fromkeys(kinds, 0.0)
        for tid, v in cb.items():
            per[_kind(tid, names, main_tid)] += v - ca.get(tid, 0.0)
        if name.startswith("interpreter"):  # before the first sample: the main thread's
            per = dict.fromkeys(kinds, 0.0)
            per["main"] = samples[0][1].get(main_tid, 0.0)
        total = _process_cpu(b) - _process_cpu(a) if a >= MARKS[0][0] else sum(per.values())
        cells = " | ".join(f"{per[k]:.2f}" for k in kinds)
        print(f"| {name} | {a - t0:.2f} | {b - a:.2f} | {total:.2f} | {cells} |", file=out)
    end = MARKS[-1]
    print(f"| in process | | {end[0] - t0:.2f} | {end[2]:.2f} | |", file=out)
    spans: dict[str, list[float]] = {}
    opened: dict[str, float] = {}
    for t, m, _ in MARKS:
        if m.endswith(">"):
            opened[m[:-1]] = t
        elif m.endswith("<") and m[:-1] in opened:
            spans.setdefault(m[:-1], []).append(t - opened.pop(m[:-1]))
    print(
        "spans (wall s, summed over calls): "
        + ", ".join(f"{k} {sum(v):.3f} ×{len(v)}" for k, v in spans.items()),
        file=out,
    )


if __name__ == "__main__":
    main()
