"""A nightly append: one more week of sales onto a stored year, then ``estimate``.

    python benchmarks/bench_append.py --groups 300000 [--repeat 3] [--before PATH]
    python benchmarks/bench_append.py --groups 40000 --nights 30


Builds a database with ``pricelab ingest`` from a synthetic Parquet file (``--groups``
item-markets × 52 weeks, as ``bench_e2e.py``), then, round by round on a fresh copy of
it, times as fresh processes ``pricelab ingest --sales week.parquet`` (the next week of
every group: rows added to every stored group) and ``pricelab estimate --model ols
--output el.parquet`` on the appended database; for reference ``pricelab estimate`` on
the database as first loaded. With ``--before`` an older source tree is timed the same
way in the same rounds (each tree builds its own base database). Each figure: wall and
CPU seconds (user + sys of the process, ``wait4``) and peak resident MB; one JSON line
per measurement (``_bench.py``) with every run's seconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _bench import emit, log  # noqa: E402
from bench_e2e import make_data, run  # noqa: E402


def next_week(src: Path, tmp: Path, weeks: int = 1) -> Path:
    """Every group's last week moved on by ``weeks`` weeks (a child process: small
    parent)."""
    out = tmp / f"week{weeks}.parquet"
    code = (
        "import sys, polars as pl; s = pl.scan_parquet(sys.argv[1]); "
        "s.filter(pl.col('date') == pl.col('date').max())"
        ".with_columns(pl.col('date') + pl.duration(weeks=int(sys.argv[3])))"
        ".collect().write_parquet(sys.argv[2])"
    )
    subprocess.run([sys.executable, "-c", code, str(src), str(out), str(weeks)], check=True)
    return out


def blocks(db: Path) -> tuple[int, int]:
    """DuckDB's used and free blocks of ``db`` (a child process: small parent)."""
    code = (
        "import sys, duckdb; c = duckdb.connect(sys.argv[1], read_only=True); "
        "r = c.execute('PRAGMA database_size').fetchone(); print(r[4], r[5])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(db)], check=True, capture_output=True, text=True
    )
    used, free = out.stdout.split()
    return int(used), int(free)


def nights(groups: int, count: int, tmp: Path) -> None:
    """The database file over ``count`` nightly appends (see the module's docstring)."""
    py, tree = sys.executable, HERE.parent
    src = make_data(groups, tmp)
    db = tmp / "nights.duckdb"
    ingest = [py, "-m", "pricelab", "ingest", "--db", str(db), "--sales"]
    run([*ingest, str(src)], tree, tmp)
    sizes, used, free, cpu, peak = [db.stat().st_size >> 20], *([n] for n in blocks(db)), [], []
    for night in range(1, count + 1):
        week = next_week(src, tmp, night)
        _, mb, secs = run([*ingest, str(week)], tree, tmp)
        week.unlink()
        u, f = blocks(db)
        sizes.append(db.stat().st_size >> 20)
        used.append(u)
        free.append(f)
        cpu.append(round(secs, 2))
        peak.append(round(mb))
        log(f"night {night}: {sizes[-1]} MB, {u} used + {f} free blocks, {secs:.1f} CPU s")
    emit(
        "append",
        f"database file over {count} nightly appends",
        groups,
        statistics.median(cpu),
        unit="groups",
        repeat=count,
        peak=max(peak),
        file_mb=sizes,
        used_blocks=used,
        free_blocks=free,
        cpu_runs=cpu,
        file_over_data=round((used[-1] + free[-1]) / used[-1], 2),
        load=os.getloadavg()[0],
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--groups", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--before", type=Path, help="an older source tree to time beside this one")
    ap.add_argument("--nights", type=int, help="measure the file over this many appends")
    args = ap.parse_args()
    if args.nights:
        with tempfile.TemporaryDirectory() as d:
            nights(args.groups, args.nights, Path(d))
        return
    trees = {"after": HERE.parent}
    if args.before:
        trees = {"before": args.before.resolve(), **trees}
    py = sys.executable
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        src = make_data(args.groups, tmp)
        week = next_week(src, tmp)
        bases = {k: tmp / f"base_{k}.duckdb" for k in trees}
        for label, tree in trees.items():
            run(
                [py, "-m", "pricelab", "ingest", "--db", str(bases[label]), "--sales", str(src)],
                tree,
                tmp,
            )
        steps = ("append", "estimate after append", "estimate fresh")
        figs: dict[tuple[str, str], list[tuple[float, float, float]]] = {  # wall, peak, cpu
            (k, s): [] for k in trees for s in steps
        }
        for r in range(args.repeat):
            for label, tree in trees.items():  # interleaved: drift hits both trees alike
                db = tmp / "app.duckdb"
                shutil.copyfile(bases[label], db)
                est = [py, "-m", "pricelab", "estimate", "--model", "ols", "--output"]
                cmds = {
                    "append": [
                        py,
                        "-m",
                        "pricelab",
                        "ingest",
                        "--db",
                        str(db),
                        "--sales",
                        str(week),
                    ],
                    "estimate after append": [*est, str(tmp / "el.parquet"), "--db", str(db)],
                    "estimate fresh": [*est, str(tmp / "el0.parquet"), "--db", str(bases[label])],
                }
                for step, cmd in cmds.items():
                    figs[(label, step)].append(run(cmd, tree, tmp))
                db.unlink()
            log(f"append {args.groups}: round {r + 1}/{args.repeat}")
        for (label, step), runs in figs.items():
            emit(
                "append",
                f"{step} ({label})",
                args.groups,
                statistics.median(w for w, _, _ in runs),
                unit="groups",
                repeat=args.repeat,
                peak=max(p for _, p, _ in runs),
                cpu_seconds=statistics.median(c for _, _, c in runs),
                runs=[round(w, 3) for w, _, _ in runs],
                cpu_runs=[round(c, 3) for _, _, c in runs],
                version=label,
                load=os.getloadavg()[0],
            )


if __name__ == "__main__":
    main()
