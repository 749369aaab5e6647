"""Where ``estimate --model ols``'s fit phase spends its CPU, beside its floors (issue #20 goal 1).

    python benchmarks/bench_fit_phase.py --db PATH [--repeat 4]
    python benchmarks/bench_fit_phase.py --groups 300000 [--repeat 4]

The fit phase is :func:`pricelab.engines.chunked.estimate_chunked` (the sales scanned from
DuckDB in chunks of whole groups and fitted chunk by chunk). This script runs it in process
on a database (read only; ``--groups`` builds one with ``pricelab ingest`` as
``bench_e2e.py`` does) with the prefetch thread off, so that each step's process CPU
(every thread's) can be told apart, and times in the same run:

- ``regr_slope``: DuckDB's ``regr_slope(ln q, ln p) GROUP BY item_id, market`` (goal 1's
  reference, here in process: the query alone);
- ``bare scan``: a DuckDB Arrow scan of exactly the SQL the fit reads (the floor of any fit
  done outside DuckDB);
- the fit phase with the numpy kernel (``PRICELAB_JIT=0``) and with the compiled one, split
  into the scan and cut into chunks, the kernel, and the rest;
- ``numba load``: ``import numba`` and the cached ``ols`` kernel, in a fresh process (what
  a process pays once before the compiled kernel runs).

The first compiled run also loads numba (in "rest"): ``--repeat`` 2 or more leaves it out of
the minimum. Each figure is the minimum over ``--repeat`` runs (CPU seconds; on a loaded machine the
minimum is the least disturbed run), one JSON line each (``_bench.py``), with the load
average. The steps are sequential here; the command overlaps the scan with the fit.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from _bench import emit, log  # noqa: E402
from bench_e2e import REF_SQL, make_data, run  # noqa: E402

from pricelab._alloc import tune_allocator  # noqa: E402
from pricelab.elasticity import block_runs, compiled, streamed  # noqa: E402
from pricelab.engines import chunked, keyruns  # noqa: E402
from pricelab.store import Store  # noqa: E402

Spent = dict[str, float]


def _timed(spent: Spent, key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        c = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[key] += time.process_time() - c

    return wrapper


def _timed_iter(spent: Spent, key: str, items: Iterator[Any]) -> Iterator[Any]:
    while True:
        c = time.process_time()
        try:
            x = next(items)
        except StopIteration:
            spent[key] += time.process_time() - c
            return
        spent[key] += time.process_time() - c
        yield x


@contextlib.contextmanager
def _instrumented(spent: Spent) -> Iterator[None]:
    """The fit phase's steps timed into ``spent`` (prefetch off: steps one after another)."""
    saved = [
        (chunked, "prefetched", chunked.prefetched),
        (keyruns.KeyRuns, "_cut", keyruns.KeyRuns._cut),
        (block_runs.Runs, "run", block_runs.Runs.run),
        (compiled, "load_kernel", compiled.load_kernel),
        (streamed, "_wrap", streamed._wrap),
    ]
    cut = keyruns.KeyRuns._cut
    load = compiled.load_kernel

    def kernel(module: str, name: str) -> Any:
        fn = load(module, name)
        return None if fn is None else _timed(spent, "kernel (compiled)", fn)

    chunked.prefetched = lambda items, depth=1, more=None: (x for x in items)  # type: ignore[assignment]
    keyruns.KeyRuns._cut = lambda self: _timed_iter(spent, "scan + cut", cut(self))  # type: ignore[method-assign]
    block_runs.Runs.run = _timed(spent, "kernel (numpy)", block_runs.Runs.run)  # type: ignore[method-assign]
    compiled.load_kernel = kernel  # type: ignore[assignment]
    streamed._wrap = _timed(spent, "results wrap", streamed._wrap)
    try:
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def fit_phase(db: str, jit: str, repeat: int) -> dict[str, float]:
    """Minimum CPU seconds of each step of ``estimate_chunked`` (ols) over ``repeat`` runs."""
    os.environ["PRICELAB_JIT"] = jit
    best: dict[str, float] = {}
    for _ in range(repeat):
        spent: Spent = defaultdict(float)
        with _instrumented(spent), Store.open(db, read_only=True) as store:
            w, c = time.perf_counter(), time.process_time()
            chunked.estimate_chunked(store, {"model": "ols"}, items=None)
            spent["total"] = time.process_time() - c
            spent["total wall"] = time.perf_counter() - w
        steps = sum(v for k, v in spent.items() if not k.startswith("total"))
        spent["rest (setup, validity, Runs, ordering, release)"] = spent["total"] - steps
        for k, v in spent.items():
            best[k] = min(best.get(k, v), v)
    return best


def floors(db: str, repeat: int) -> dict[str, float]:
    """Minimum CPU seconds of the reference query and of the bare Arrow scan of the fit's SQL."""
    with Store.open(db, read_only=True) as store:
        cols = chunked._columns(
            ["promo", "fourier", "trend"], store.query("SELECT * FROM sales LIMIT 0").columns, True
        )
        scan = f"SELECT hash(item_id, market) AS {keyruns.HASH}, {cols} FROM sales"
        out: dict[str, float] = {}
        for _ in range(repeat):
            for key, fn in (
                ("regr_slope (in process)", lambda: store.con.sql(REF_SQL).fetchall()),
                (
                    "bare Arrow scan of the fit's SQL",
                    lambda: sum(1 for _ in store.con.sql(scan).to_arrow_reader(1 << 17)),
                ),
            ):
                c = time.process_time()
                fn()
                v = time.process_time() - c
                out[key] = min(out.get(key, v), v)
    return out


def numba_load(repeat: int) -> float:
    """Minimum CPU seconds of ``import numba`` + the cached ``ols`` kernel in a fresh process."""
    code = (
        "import time, numpy, polars\n"
        "from pricelab.elasticity.compiled import load_module\n"
        "c = time.process_time()\n"
        "assert load_module('ols_jit') is not None\n"
        "print(time.process_time() - c)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(repeat)
    ]
    return min(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--db", help="a database written by pricelab ingest (read only)")
    ap.add_argument("--groups", type=int, default=300_000, help="without --db: build one")
    ap.add_argument("--repeat", type=int, default=4)
    args = ap.parse_args()
    tune_allocator()  # as the command does
    with tempfile.TemporaryDirectory(prefix="pricelab-fit-") as tmp:
        db = args.db
        if db is None:
            src = make_data(args.groups, Path(tmp))
            db = str(Path(tmp) / "fit.duckdb")
            run(
                [sys.executable, "-m", "pricelab", "ingest", "--db", db, "--sales", str(src)],
                HERE.parent,
                Path(tmp),
            )
        with Store.open(db, read_only=True) as store:
            rows = int(store.execute("SELECT count(*) FROM sales")[0][0])
        numba_load(1)  # compiles the kernel if this tree has no cache yet
        log("floors")
        ref = floors(db, args.repeat)
        found = {"floor": ref}
        for label, jit in (("numpy kernel", "0"), ("compiled kernel", "1")):
            log(f"fit phase, {label}")
            found[label] = fit_phase(db, jit, args.repeat)
        found["numba"] = {"numba load (fresh process)": numba_load(args.repeat)}
    reference = ref["regr_slope (in process)"]
    load = round(os.getloadavg()[0], 1)
    for group, steps in found.items():
        for step, cpu in steps.items():
            emit(
                "fit_phase",
                f"{group}: {step}",
                rows,
                round(cpu, 3),
                unit="rows",
                repeat=args.repeat,
                reference="DuckDB regr_slope, CPU s (min)",
                reference_seconds=reference,
                measure="wall s" if step.endswith("wall") else "CPU s (min)",
                load=load,
            )


if __name__ == "__main__":
    main()
