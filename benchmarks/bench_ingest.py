"""Ingest benchmark: pricelab ingest of an N-row sales CSV vs DuckDB's own CTAS read_csv.

    python benchmarks/bench_ingest.py --rows 1000000 [--repeat 3]

Both run in this process on the same file, interleaved after one warm-up call of
pricelab's (median of ``--repeat`` runs each; per-round ratios give the range; CPU
seconds of the process, every thread, beside wall seconds); peak memory of
pricelab's ingest is measured in a child process (ru_maxrss). Prints one JSON measurement
line (see ``_bench.py``): ratio = pricelab / DuckDB, goal <= 2 with peak < 2048 MB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import emit, log  # noqa: E402


def make_csv(path: Path, rows: int, seed: int = 1) -> None:
    """Weekly sales: rows / 52 item-markets x 52 weeks, contract columns."""
    rng = np.random.default_rng(seed)
    weeks = 52
    groups = max(rows // weeks, 1)
    start = dt.date(2024, 1, 1)
    item = np.repeat(np.arange(groups) // 5, weeks)
    market = np.repeat(np.arange(groups) % 5, weeks)
    week = np.tile(np.arange(weeks), groups)
    df = pl.DataFrame(
        {
            "item_id": [f"IT{i:07d}" for i in item],
            "market": np.array(["US", "GB", "DE", "JP", "CN"])[market],
            "date": [start + dt.timedelta(weeks=int(w)) for w in week],
            "price": np.round(rng.uniform(50, 500, groups * weeks), 2),
            "quantity": rng.poisson(3, groups * weeks),
            "promo": rng.integers(0, 2, groups * weeks),
            "unit_cost": np.round(rng.uniform(10, 40, groups * weeks), 2),
        }
    )
    df.write_csv(path)


def time_duckdb(csv: Path, work: Path) -> tuple[float, float]:
    """Wall and CPU seconds (this process, every thread) of DuckDB's CTAS."""
    db = work / "ref.duckdb"
    db.unlink(missing_ok=True)
    t, c = time.perf_counter(), time.process_time()
    con = duckdb.connect(str(db))
    con.execute(f"CREATE TABLE sales AS SELECT * FROM read_csv('{csv}')").fetchall()
    con.close()
    return time.perf_counter() - t, time.process_time() - c


def time_pricelab(csv: Path, work: Path) -> tuple[float, float]:
    """Wall and CPU seconds of ``api.ingest`` (open, validate, load, commit)."""
    from pricelab import api

    db = work / "pl.duckdb"
    db.unlink(missing_ok=True)
    t, c = time.perf_counter(), time.process_time()
    api.ingest(db, sales=csv)
    return time.perf_counter() - t, time.process_time() - c


def peak_memory_mb(csv: Path, work: Path) -> float:
    db = work / "mem.duckdb"
    db.unlink(missing_ok=True)
    code = (
        "import resource,sys; from pricelab import api; "
        f"api.ingest({str(db)!r}, sales={str(csv)!r}); "
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def main(argv: list[str] | None = None) -> dict[str, object]:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        csv = work / "sales.csv"
        make_csv(csv, args.rows)
        log(f"[ingest] {args.rows:,}-row CSV written")
        ref, ours, ref_cpu, cpu = [], [], [], []
        time_pricelab(csv, work)  # warm-up: imports (pyarrow...) as a second call finds them
        for _ in range(args.repeat):  # interleaved: machine drift hits both alike
            for out, out_cpu, fn in ((ref, ref_cpu, time_duckdb), (ours, cpu, time_pricelab)):
                wall, secs = fn(csv, work)
                out.append(wall)
                out_cpu.append(secs)
        ratios = [o / r for o, r in zip(ours, ref, strict=True)]
        cpu_ratios = [o / r for o, r in zip(cpu, ref_cpu, strict=True)]
        mem = peak_memory_mb(csv, work)
    return emit(
        "ingest",
        "ingest sales CSV (validate + load)",
        args.rows,
        statistics.median(ours),
        unit="rows",
        repeat=args.repeat,
        reference="DuckDB CREATE TABLE AS read_csv",
        reference_seconds=statistics.median(ref),
        peak=mem,
        goal="ratio <= 2, peak < 2048 MB",
        runs=ours,
        reference_runs=ref,
        ratio_range=[min(ratios), max(ratios)],
        cpu_runs=[round(c, 3) for c in cpu],
        ref_cpu_runs=[round(c, 3) for c in ref_cpu],
        cpu_ratio=round(statistics.median(cpu_ratios), 3),
        cpu_ratio_range=[round(min(cpu_ratios), 3), round(max(cpu_ratios), 3)],
        load=os.getloadavg()[0],
    )


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    main()
