"""Consecutive ``estimate`` commands on one database: does a run pay for earlier runs' rows?

    python benchmarks/bench_estimate_runs.py --db p300k.duckdb --runs 12 [--before REV]
        [--model ols] [--tmp DIR]

``DB`` (a pricelab database with sales loaded; copied, never written) gets ``--runs``
``pricelab estimate --model MODEL --output el.parquet`` commands, each a fresh process, one
after the other, after one warm-up command (not counted: it compiles the kernels). With ``--before REV`` (a git revision, e.g. ``main``), a second copy gets
the same commands from that revision's source tree, interleaved with this tree's round by
round (the order alternating) so machine drift hits both alike. Per command: wall seconds,
CPU seconds (user + system of the process, DuckDB's threads included: ``wait4``), the
file's size after it and the result tables' row groups. Then one more checkpoint per copy
with nothing to write (what a later command's close would pay for merges left behind).

Issue #20: appended to one table, every other 300k-row run paid DuckDB's vacuum merging the
previous run's last row group with its own at the close (0.5-0.9 CPU s); with large runs in
tables of their own (``pricelab/store/results.py``) no close merges another run's rows.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _bench import emit, log  # noqa: E402
from bench_e2e import run  # noqa: E402

_TABLES = ("elasticities", "elasticity_params")


def _row_groups(db: Path) -> int:
    """Row groups of the result tables: the table itself, or its base and parts."""
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        names = [
            r[0]
            for r in con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'"
            ).fetchall()
            if any(r[0] == t or r[0].startswith(t + "__") for t in _TABLES)
        ]
        return sum(
            con.execute(
                f"SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('{n}')"
            ).fetchall()[0][0]
            for n in names
        )
    finally:
        con.close()


def _later_checkpoint(db: Path) -> float:
    """CPU seconds of one checkpoint after the runs, with the vacuum on (any later command)."""
    import duckdb

    con = duckdb.connect(str(db))
    try:
        con.execute("CREATE TABLE bench_touch AS SELECT 1 AS a")
        c0 = time.process_time()
        con.execute("CHECKPOINT")
        return time.process_time() - c0
    finally:
        con.close()


def _tree(rev: str, tmp: Path) -> Path:
    """The source tree of git revision ``rev`` (its ``pricelab`` package) under ``tmp``."""
    out = tmp / "before-src"
    out.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(HERE.parent), "archive", rev, "pricelab"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive, check=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, required=True, help="a pricelab database (copied)")
    ap.add_argument("--runs", type=int, default=12)
    ap.add_argument("--model", default="ols")
    ap.add_argument("--before", help="a git revision to run alongside, e.g. main")
    ap.add_argument("--tmp", type=Path, help="where the copies go (default: the system's)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pricelab-runs-", dir=args.tmp) as name:
        tmp = Path(name)
        trees = {"after": HERE.parent}
        if args.before:
            trees = {"before": _tree(args.before, tmp), **trees}
        dbs = {label: tmp / f"{label}.duckdb" for label in trees}
        for path in dbs.values():
            shutil.copyfile(args.db, path)
        rows: dict[str, list[tuple[float, float, float, float, int]]] = {k: [] for k in trees}
        for r in range(-1, args.runs):  # round -1: compiles and caches each tree's kernels
            order = list(trees) if r % 2 == 0 else list(reversed(trees))
            for label in order:
                out = tmp / f"el_{label}.parquet"
                cmd = [sys.executable, "-m", "pricelab", "estimate", "--model", args.model]
                cmd += ["--db", str(dbs[label]), "--output", str(out)]
                wall, peak, cpu = run(cmd, trees[label], tmp)
                size = dbs[label].stat().st_size / 1e6
                if r >= 0:
                    rows[label].append((wall, cpu, peak, size, _row_groups(dbs[label])))
            if r < 0:
                continue
            log(
                f"round {r + 1}/{args.runs}: "
                + ", ".join(f"{k} {v[-1][1]:.2f} CPU s" for k, v in rows.items())
            )
        for label, got in rows.items():
            walls, cpus, peaks, sizes, groups = zip(*got, strict=True)
            emit(
                "estimate_runs",
                f"{args.runs} consecutive estimate --model {args.model} ({label})",
                args.runs,
                statistics.median(walls),
                unit="commands",
                repeat=args.runs,
                wall_each=[round(w, 2) for w in walls],
                cpu_each=[round(c, 2) for c in cpus],
                cpu_median=round(statistics.median(cpus), 2),
                cpu_total=round(sum(cpus), 2),
                cpu_spread=round(max(cpus) - min(cpus), 2),
                peak_mb_max=round(max(peaks), 1),
                file_mb_each=[round(s, 1) for s in sizes],
                row_groups_each=list(groups),
                later_checkpoint_cpu=round(_later_checkpoint(dbs[label]), 3),
                file_mb_after_checkpoint=round(dbs[label].stat().st_size / 1e6, 1),
            )


if __name__ == "__main__":
    main()
