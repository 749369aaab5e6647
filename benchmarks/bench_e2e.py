"""End to end: the commands as a user runs them (fresh processes, CLI start-up included).

    python benchmarks/bench_e2e.py --groups 100000 [--scaling 10000,30000] [--repeat 3]
        [--before PATH]   # also time an older source tree in the same run (before/after)
        [--ols-only]      # goal 1 alone: estimate --model ols vs regr_slope, each size
        [--glm-only]      # goal 2 alone: ols, poisson, hierarchical (ratios to ols by round)
        [--fifo]          # every command under SCHED_FIFO (root): near-quiet wall times
        [--rr]            # the same under SCHED_RR (safe beside other real-time processes)
        [--models ols,poisson,hierarchical]   # the estimate commands to time
        [--work DIR]      # keep the data and databases in DIR (reused by a later run)

Builds a database with ``pricelab ingest`` from a synthetic Parquet file (``--groups``
item-markets × 52 weeks), then times, interleaved round by round so machine drift hits
all alike: ``pricelab --version``, ``pricelab estimate --model ols|poisson|hierarchical
--output el.parquet`` and the reference, DuckDB ``regr_slope(ln q, ln p) GROUP BY item,
market`` on the same table in its own Python process (import duckdb + the query), and
ingest against DuckDB's own ``CREATE TABLE AS`` from the same file, after one uncounted
warm-up round (every process reads compiled bytecode, :func:`use_bytecode`). Each command's peak
memory is its own process's (``wait4`` rusage). One JSON line per measurement
(``_bench.py``) with every run's seconds (``runs``) for the run-to-run range; poisson and
hierarchical also carry their ratios to the ols command of the same round (``ols_ratios``,
``ols_cpu_ratios``: issue #20's goal 2), the load average before each run (``load_runs``),
the commit and the time. The compiled kernels (numba) are compiled and cached once before
the first round, as an installed package's first run would. With ``--work`` the Parquet
file and the ingested database of each size stay in DIR and a later run reuses them: every
``estimate`` appends its run to that database (``db_mb`` is its size before the rounds).
``e2e_report.py`` turns the JSON lines into the results.md table and the scaling plot.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
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

REF_SQL = (
    "SELECT item_id, market, regr_slope(ln(quantity), ln(price)) AS e FROM sales "
    "WHERE quantity > 0 GROUP BY item_id, market"
)
CTAS = "CREATE TABLE sales AS SELECT * FROM read_parquet('{src}')"


#: put before every timed command (``--fifo``: ``chrt -f 20``, ``--rr``: ``chrt -r 20``)
PREFIX: list[str] = []
#: where the timed processes keep compiled bytecode (:func:`use_bytecode`); empty: their own
#: ``__pycache__`` folders, as Python does by default
PYCACHE: list[str] = []


def use_bytecode(tmp: Path) -> bool:
    """Let the timed processes read compiled bytecode, as an installed package does.

    ``pip install`` compiles every module's bytecode; uv does not (without
    ``--compile-bytecode``), and where the environment also sets ``PYTHONDONTWRITEBYTECODE``
    (containers, CI, this team's shared venv) every fresh process compiles each module it
    imports from source: ~0.5 CPU s of the ols command's start-up and ~1 s of numba's load
    at 300k × 52 on a 2-core Xeon (4 Dec), charged to the command alone (its reference
    imports duckdb only). Then the processes write their bytecode under ``tmp`` instead
    (``PYTHONPYCACHEPREFIX``), and an uncounted warm-up round writes it before the timed
    ones. True when that is so."""
    PYCACHE.clear()
    if os.environ.get("PYTHONDONTWRITEBYTECODE") or sys.flags.dont_write_bytecode:
        PYCACHE.append(str(tmp / "pycache"))
    return bool(PYCACHE)


def run(cmd: list[str], tree: Path, cwd: Path) -> tuple[float, float, float]:
    """Wall seconds, peak resident MB and CPU seconds (user + system, all threads) of one
    fresh process running ``cmd``."""
    env = {**os.environ, "PYTHONPATH": str(tree), "PRICELAB_MLFLOW": ""}
    if PYCACHE:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = PYCACHE[0]
    t = time.perf_counter()
    proc = subprocess.Popen(
        [*PREFIX, *cmd], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}: {err[-800:]}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def make_data(groups: int, tmp: Path) -> Path:
    """Synthetic sales (``groups`` item-markets × 52 weeks) as Parquet, written by a child
    process: Linux carries a parent's peak RSS into its children, so this one stays small.
    A file already there (``--work``) is reused."""
    path = tmp / f"sales_{groups}.parquet"
    if path.exists():
        return path
    code = (
        "import sys; from pricelab.elasticity.synthetic import simulate_panel; "
        f"s = simulate_panel(n_items={max(groups // 2, 1)}, markets=('US', 'GB'), weeks=52, "
        f"base_units=10.0, seed=1)[0]; s.write_parquet(sys.argv[1])"
    )
    run([sys.executable, "-c", code, str(path)], HERE.parent, tmp)
    return path


def bench_size(groups: int, args: argparse.Namespace, tmp: Path, trees: dict[str, Path]) -> None:
    py = sys.executable
    src = make_data(groups, tmp)
    rows = groups * 52
    dbs = {label: tmp / f"{label}_{groups}.duckdb" for label in trees}
    cmds: dict[str, list[str]] = {}
    for label, tree in trees.items():
        if dbs[label].exists():  # --work: built by an earlier run
            continue
        part = dbs[label].with_suffix(".building.duckdb")  # renamed once ingest has finished
        for stale in (part, part.with_suffix(".duckdb.wal")):
            stale.unlink(missing_ok=True)
        wall, peak, cpu = run(
            [py, "-m", "pricelab", "ingest", "--db", str(part), "--sales", str(src)], tree, tmp
        )
        part.rename(dbs[label])
        log(f"e2e {groups}: ingest ({label}) {wall:.1f} s, {cpu:.1f} CPU s, peak {peak:,.0f} MB")
    db_mb = {k: round(v.stat().st_size / 2**20) for k, v in dbs.items()}
    warm = "import contextlib\nwith contextlib.suppress(ImportError):\n    import {}"
    for tree in trees.values():  # numba compiles once per machine: not in the rounds
        for mod in ("pricelab.elasticity.glm_jit", "pricelab.elasticity.ols_jit"):
            run([py, "-c", warm.format(mod)], tree, tmp)
    if args.repeat == 0:  # --work --repeat 0: build the data and databases only
        return
    ref_db = dbs["after"]
    cmds["ref"] = [
        py,
        "-c",
        f"import duckdb; duckdb.connect('{ref_db}', read_only=True).sql({REF_SQL!r}).fetchall()",
    ]
    scaled = args.scaling_ols_only and groups != args.groups
    models = ["ols"] if args.ols_only or scaled else args.models.split(",")
    jobs: dict[str, tuple[list[str], Path]] = {"ref": (cmds["ref"], trees["after"])}
    for label, tree in trees.items():
        for m in models:
            out = tmp / f"el_{label}_{m}.parquet"
            jobs[f"{label}:{m}"] = (
                [
                    py,
                    "-m",
                    "pricelab",
                    "estimate",
                    "--model",
                    m,
                    "--db",
                    str(dbs[label]),
                    "--output",
                    str(out),
                ],
                tree,
            )
        if groups == args.groups and not (args.ols_only or args.glm_only):
            jobs[f"{label}:version"] = ([py, "-m", "pricelab", "--version"], tree)
    times: dict[str, list[float]] = {k: [] for k in jobs}
    peaks: dict[str, list[float]] = {k: [] for k in jobs}
    cpus: dict[str, list[float]] = {k: [] for k in jobs}
    for cmd, tree in jobs.values():  # warm-up, not counted: bytecode, page cache
        run(cmd, tree, tmp)
    loads: dict[str, list[float]] = {k: [] for k in jobs}
    start = dt.datetime.now(dt.UTC)
    for r in range(args.repeat):
        for key, (cmd, tree) in jobs.items():  # interleaved: one run of each per round
            loads[key].append(round(os.getloadavg()[0], 2))
            wall, peak, cpu = run(cmd, tree, tmp)
            times[key].append(wall)
            peaks[key].append(peak)
            cpus[key].append(cpu)
            log(
                f"e2e {groups}: {key} {wall:.2f} s, {cpu:.2f} CPU s, {peak:,.0f} MB "
                f"(round {r + 1}, load {loads[key][-1]:.1f})"
            )
        log(f"e2e {groups}: round {r + 1}/{args.repeat}, load {os.getloadavg()[0]:.1f}")
    span = f"{start:%Y-%m-%dT%H:%M}-{dt.datetime.now(dt.UTC):%H:%M} UTC"
    ref = statistics.median(times["ref"])
    for key in jobs:
        if key == "ref":
            continue
        label, what = key.split(":")
        name = "pricelab --version" if what == "version" else f"estimate --model {what}"
        vs_ols = {}
        if what in ("poisson", "hierarchical") and f"{label}:ols" in times:  # goal 2, by round
            ols = f"{label}:ols"
            vs_ols = {
                "ols_ratios": [
                    round(a / b, 3) for a, b in zip(times[key], times[ols], strict=True)
                ],
                "ols_cpu_ratios": [
                    round(a / b, 3) for a, b in zip(cpus[key], cpus[ols], strict=True)
                ],
            }
        emit(
            "e2e",
            f"{name} ({label})",
            groups,
            statistics.median(times[key]),
            unit="groups",
            repeat=args.repeat,
            reference="DuckDB regr_slope group by item, market (own process)",
            reference_seconds=ref,
            peak=max(peaks[key]),
            rows=rows,
            version=label,
            command=what,
            runs=[round(t, 3) for t in times[key]],
            ratios=[round(t / f, 3) for t, f in zip(times[key], times["ref"], strict=True)],
            ref_runs=[round(t, 3) for t in times["ref"]],
            cpu_runs=[round(t, 3) for t in cpus[key]],
            cpu_ratios=[round(t / f, 3) for t, f in zip(cpus[key], cpus["ref"], strict=True)],
            ref_cpu_runs=[round(t, 3) for t in cpus["ref"]],
            peaks=[round(p) for p in peaks[key]],
            ref_peaks=[round(p) for p in peaks["ref"]],
            load=round(os.getloadavg()[0], 1),
            sched=" ".join(PREFIX) or "normal",
            bytecode="PYTHONPYCACHEPREFIX, warmed" if PYCACHE else "Python's default",
            load_runs=loads[key],
            ref_load_runs=loads["ref"],
            commit=commit(trees[label]),
            when=span,
            db_mb=db_mb[label],
            **vs_ols,
        )
    if groups == args.groups and not (args.ols_only or args.glm_only):
        bench_ingest(src, rows, args, tmp, trees)


def bench_ingest(
    src: Path, rows: int, args: argparse.Namespace, tmp: Path, trees: dict[str, Path]
) -> None:
    py = sys.executable
    times: dict[str, list[float]] = {"ref": [], **{k: [] for k in trees}}
    peaks: dict[str, list[float]] = {k: [] for k in times}
    for _ in range(args.repeat):
        for key in times:
            db = tmp / f"ingest_{key}.duckdb"
            db.unlink(missing_ok=True)
            if key == "ref":
                cmd = [
                    py,
                    "-c",
                    f"import duckdb; duckdb.connect('{db}').execute({CTAS.format(src=src)!r})",
                ]
                tree = trees["after"]
            else:
                cmd = [py, "-m", "pricelab", "ingest", "--db", str(db), "--sales", str(src)]
                tree = trees[key]
            wall, peak, _ = run(cmd, tree, tmp)
            times[key].append(wall)
            peaks[key].append(peak)
    ref = statistics.median(times["ref"])
    for label in trees:
        emit(
            "e2e",
            f"ingest sales Parquet ({label})",
            rows,
            statistics.median(times[label]),
            unit="rows",
            repeat=args.repeat,
            reference="DuckDB CREATE TABLE AS read_parquet (own process)",
            reference_seconds=ref,
            peak=max(peaks[label]),
            rows=rows,
            version=label,
            command="ingest",
            runs=[round(t, 3) for t in times[label]],
            ratios=[round(t / f, 3) for t, f in zip(times[label], times["ref"], strict=True)],
            ref_runs=[round(t, 3) for t in times["ref"]],
        )


def commit(tree: Path) -> str:
    """The tree's HEAD commit (short), with ``+`` when it has uncommitted changes."""
    git = ["git", "-C", str(tree)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    )
    return head.stdout.strip() + ("+" if dirty.stdout.strip() else "") or "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--groups", type=int, default=100_000)
    ap.add_argument("--scaling", default="", help="more group counts (comma-separated)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--before", type=Path, help="an older source tree to time beside this one")
    ap.add_argument(
        "--ols-only",
        action="store_true",
        help="issue #20 goal 1 only: estimate --model ols against the reference, every size",
    )
    ap.add_argument(
        "--glm-only",
        action="store_true",
        help="issue #20 goal 2 only: estimate ols, poisson and hierarchical (no ingest)",
    )
    ap.add_argument("--scaling-ols-only", action="store_true", help="the --scaling sizes: ols only")
    ap.add_argument(
        "--models",
        default="ols,poisson,hierarchical",
        help="the estimate commands to time (comma-separated; poisson and hierarchical carry "
        "their ratios to the ols command of the same round when ols is among them)",
    )
    ap.add_argument(
        "--work",
        type=Path,
        help="keep the Parquet files and databases here (reused if there; not deleted)",
    )
    ap.add_argument(
        "--fifo",
        action="store_true",
        help="run every command under SCHED_FIFO (chrt -f 20; root on Linux): on a machine "
        "others load, wall times close to a quiet machine's (each command still uses at "
        "most the cores it would)",
    )
    ap.add_argument(
        "--rr",
        action="store_true",
        help="as --fifo, under SCHED_RR (chrt -r 20): threads of equal priority take turns "
        "every 100 ms, so a thread spinning while another of its process waits cannot keep "
        "the core (under --fifo beside another SCHED_FIFO process, hierarchical on 1M x 52 "
        "spun for 286 CPU s instead of 36-39)",
    )
    args = ap.parse_args()
    if args.fifo or args.rr:
        if shutil.which("chrt") is None:
            raise SystemExit("--fifo and --rr need chrt (util-linux)")
        PREFIX[:] = ["chrt", "-r" if args.rr else "-f", "20"]
    trees = {"after": HERE.parent}
    if args.before:
        trees = {"before": args.before.resolve(), **trees}
    sizes = sorted({args.groups, *(int(g) for g in args.scaling.split(",") if g)})
    if args.work:
        args.work.mkdir(parents=True, exist_ok=True)
    tmp = args.work.resolve() if args.work else Path(tempfile.mkdtemp(prefix="pricelab-e2e-"))
    if use_bytecode(tmp):
        log(f"bytecode: the environment writes none; the timed processes keep it in {PYCACHE[0]}")
    try:
        for groups in sizes:
            bench_size(groups, args, tmp, trees)
    finally:
        if not args.work:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
