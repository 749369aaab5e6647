"""A nightly append: one more week of sales onto a stored year, then ``estimate``.

    python benchmarks/bench_append.py --groups 300000 [--repeat 3] [--before PATH]

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


def next_week(src: Path, tmp: Path) -> Path:
    """Every group's last week moved on by one week (a child process: small parent)."""
    out = tmp / "week.parquet"
    code = (
        "import sys, polars as pl; s = pl.scan_parquet(sys.argv[1]); "
        "s.filter(pl.col('date') == pl.col('date').max())"
        ".with_columns(pl.col('date') + pl.duration(weeks=1)).collect().write_parquet(sys.argv[2])"
    )
    subprocess.run([sys.executable, "-c", code, str(src), str(out)], check=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--groups", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--before", type=Path, help="an older source tree to time beside this one")
    args = ap.parse_args()
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
