"""Benchmark: how far `pricelab simulate --draws 0` could come down if its DuckDB reads were hidden.

Issue #20 goal 4 asks the CLI point path for <= 2x the bare baseline query in its own process.
This script measures the command against two bounds of the one structural idea left (running
the baseline window, and the input fingerprint, while the command's libraries import), each a
fresh process on a fresh copy of the same ingested store (`bench_simulate.build_ingested`):

  bare   -- `import duckdb`, connect, the baseline window query to Arrow (the goal's reference);
  now    -- `pricelab simulate --draws 0` as it is;
  ahead  -- the same, with the window query started in a thread at the first line of the
            process (before typer, polars, numpy, rich and pricelab import) and its Arrow result
            handed to the command: the most a "window ahead" change could overlap;
  free   -- the same, with the window and the input fingerprint precomputed (read from a small
            Parquet file / a JSON dict): the command's wall time if its DuckDB reads cost nothing.

`ahead` and `free` are measurement devices, not code paths of pricelab: this file replaces two
private functions (`pricelab.demand.baseline._arrow` for the window query and
`pricelab.simulate.simulation.fingerprint_ahead`) in the measured process. All four variants
print the same totals (checked on the first round's `--json`).

Usage: python benchmarks/bench_simulate_bounds.py [--groups 100000] [--weeks 100] [--rounds 10]
    [--fifo] [--dir DIR]
`--fifo` runs every measured process under `chrt -f 20` (SCHED_FIFO; needs root). One JSON line
per variant: median wall seconds, the median of the per-round ratios to `bare` (and their range),
CPU seconds (user + sys of the process, every thread), the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CONNECT = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def _as_command(mode: str, files: str, argv: list[str]) -> None:
    """Run `pricelab simulate` in this process with the window (and fingerprint) of ``mode``."""
    import threading

    window_sql = Path(files, "window.sql").read_text()
    box: dict[str, Any] = {}
    if mode == "ahead":  # first: the query runs while everything below imports
        import duckdb

        db = argv[argv.index("--db") + 1]

        def work() -> None:
            con = duckdb.connect(db, config=dict(CONNECT))
            box["window"] = con.sql(window_sql, params=[8]).to_arrow_table()
            box["con"] = con  # the instance stays cached: Store.open shares it

        thread = threading.Thread(target=work)
        thread.start()
    import gc

    gc.disable()  # as pricelab.__main__
    import pricelab.demand.baseline as baseline

    arrow = baseline._arrow

    def _arrow(con: Any, sql: str, params: list[Any] | None = None) -> Any:
        import polars as pl

        if sql != window_sql:
            return arrow(con, sql, params)
        box["hit"] = True
        if mode == "ahead":
            thread.join()
            return pl.from_arrow(box.pop("window"))
        return pl.read_parquet(Path(files, "window.parquet"))

    if mode != "now":
        import atexit

        baseline._arrow = _arrow  # type: ignore[assignment]

        def check() -> None:  # a renamed function would silently measure "now"
            if not box.get("hit") or (mode == "free" and not box.get("taken")):
                print(f"bound {mode}: the window or fingerprint was not replaced", file=sys.stderr)
                os._exit(70)

        atexit.register(check)
    if mode == "free":
        import pricelab.simulate.simulation  # noqa: F401

        simulation = sys.modules["pricelab.simulate.simulation"]
        fingerprint = json.loads(Path(files, "fingerprint.json").read_text())

        class Taken:
            def __call__(self) -> dict[str, Any]:
                box["taken"] = True
                return dict(fingerprint)

            def settle(self) -> None:
                pass

        simulation.fingerprint_ahead = lambda store: Taken()  # type: ignore[attr-defined]
    sys.argv = ["pricelab", *argv]
    from pricelab.cli.app import main

    main()


def _prepare(work: Path, groups: int, weeks: int) -> Path:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import polars as pl
    from bench_simulate import SPEC, build_ingested

    from pricelab.simulate import baseline_sql
    from pricelab.store import Store
    from pricelab.store.runs import input_fingerprint

    db = work / "pristine.duckdb"
    if not db.exists():  # a --dir of an earlier run keeps its store
        build_ingested(db, groups, weeks)
    (work / "scenario.yaml").write_text(json.dumps(SPEC))  # JSON is YAML
    (work / "window.sql").write_text(baseline_sql())
    with Store.open(db, read_only=True) as store:
        window = pl.from_arrow(store.con.sql(baseline_sql(), params=[8]).to_arrow_table())
        assert isinstance(window, pl.DataFrame)
        window.write_parquet(work / "window.parquet")
        (work / "fingerprint.json").write_text(json.dumps(input_fingerprint(store)))
    return db


def _load() -> list[float]:
    return [round(x, 1) for x in os.getloadavg()]


def main() -> None:
    if len(sys.argv) > 3 and sys.argv[1] == "--as-command":
        _as_command(sys.argv[2], sys.argv[3], sys.argv[4:])
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=100_000)
    ap.add_argument("--weeks", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--fifo", action="store_true", help="chrt -f 20 (SCHED_FIFO, needs root)")
    ap.add_argument(
        "--dir", type=Path, default=None, help="scratch folder, kept (default: a temporary one)"
    )
    a = ap.parse_args()
    tmp = None if a.dir else tempfile.TemporaryDirectory()
    work = a.dir or Path(tmp.name)  # type: ignore[union-attr]
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    pristine = _prepare(work, a.groups, a.weeks)
    print(f"built {a.groups:,} x {a.weeks} in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    py = sys.executable
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PRICELAB_MLFLOW": ""}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")  # compiled once, as an installed package
    db = work / "run.duckdb"
    bare = (
        "import sys, duckdb; con = duckdb.connect(sys.argv[1], read_only=True); "
        "con.sql(sys.argv[2], params=[8]).to_arrow_table()"
    )
    args = ["simulate", "--db", str(db), "--scenario", str(work / "scenario.yaml"), "--draws", "0"]
    me = str(Path(__file__).resolve())
    cmds = {
        "bare": [py, "-c", bare, str(db), (work / "window.sql").read_text()],
        "now": [py, "-m", "pricelab", *args],
        "ahead": [py, me, "--as-command", "ahead", str(work), *args],
        "free": [py, me, "--as-command", "free", str(work), *args],
    }
    prefix = ["chrt", "-f", "20"] if a.fifo else []
    totals = set()
    for name, cmd in cmds.items():  # warm-up (bytecode, page cache); the totals must agree
        shutil.copyfile(pristine, db)
        extra = ["--json"] if name != "bare" else []
        out = subprocess.run(cmd + extra, env=env, check=True, capture_output=True, text=True)
        if extra:
            totals.add(json.dumps(json.loads(out.stdout)["totals"], sort_keys=True))
    if len(totals) != 1:
        raise RuntimeError("the variants' totals differ")
    wall: dict[str, list[float]] = {k: [] for k in cmds}
    cpu: dict[str, list[float]] = {k: [] for k in cmds}
    load = [_load()]
    names = list(cmds)
    for r in range(a.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:  # rotating order
            shutil.copyfile(pristine, db)
            t = time.perf_counter()
            proc = subprocess.Popen([*prefix, *cmds[name]], env=env, stdout=subprocess.DEVNULL)
            _, status, use = os.wait4(proc.pid, 0)
            wall[name].append(time.perf_counter() - t)
            cpu[name].append(use.ru_utime + use.ru_stime)
            if os.waitstatus_to_exitcode(status):
                raise RuntimeError(f"{name} failed")
    load.append(_load())
    for name in names:
        ratios = [w / b for w, b in zip(wall[name], wall["bare"], strict=True)]
        rec = {
            "bench": "simulate",
            "name": f"CLI point path bound: {name}",
            "size": a.groups,
            "seconds": round(statistics.median(wall[name]), 4),
            "min_seconds": round(min(wall[name]), 4),
            "ratio_to_bare": round(statistics.median(ratios), 3),
            "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
            "cpu_seconds": round(statistics.median(cpu[name]), 4),
            "rounds": a.rounds,
            "fifo": a.fifo,
            "load_average": load,
        }
        print(json.dumps(rec), flush=True)
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
