"""Benchmark: a what-if scenario over N item-markets × W weeks vs the bare baseline query.

Both are measured in the same run on the same DuckDB file:
  bare     -- the aggregation query that computes the baseline (avg units, avg price per
              item × market over the window), fetched to Arrow;
  simulate -- pricelab.simulate.simulate on a scenario that changes a quarter of the rows
              (baseline query + joins, filters, projection, draws for aggregate intervals),
              without recording the run, with the default 1000 draws, with 100 draws and
              with ``draws=0`` (point projections and row intervals: the point path), over
              an 8-week baseline window (0.8M of the 10M rows) and over the whole history.
With ``--cli`` it also times the command as a user runs it, each a fresh process with
start-up: ``pricelab simulate --db F --scenario S.yaml --draws 0`` (and ``--draws 1000``;
the run is recorded and its rows written, as the CLI always does) against the bare query
in its own process (``import duckdb`` alone, connect, the query to Arrow), interleaved
round by round, each process's CPU seconds and peak memory from ``wait4``.
``--store ingest`` loads the same rows with ``pricelab ingest`` (from Parquet and CSV)
instead: sales stored in item × market × date order, as a user's database holds them, where
the bare query reads more of the table (the week-by-week store lets DuckDB skip most rows
outside the window). Issue #20 goal 4: point path <= 2x the bare query, 1,000 draws <= 3x.
Usage: python benchmarks/bench_simulate.py [--groups 100000] [--weeks 100] [--draws 1000]
    [--repeat 5] [--cli] [--store bench|ingest]
One JSON line per path (medians of ``--repeat`` interleaved runs; see ``_bench.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import emit, log  # noqa: E402

from pricelab.simulate import baseline_sql, simulate  # noqa: E402
from pricelab.store import Store, record_run  # noqa: E402


def build(db: Path, groups: int, weeks: int) -> str:
    """Sales of ``groups`` item × market pairs over ``weeks`` weeks, made inside DuckDB."""
    markets = ["US", "DE", "GB", "JP", "CN"]
    n_items = groups // len(markets)
    with Store.open(db) as store:
        store.execute(f"""
            INSERT INTO sales
            SELECT 'I' || lpad(i::VARCHAR, 7, '0'), m, DATE '2022-01-03' + (7 * w)::INTEGER,
                   (100 + (hash(i, m) % 1000) + 5 * (w % 4))::DOUBLE, (hash(i, m, w) % 6)::BIGINT,
                   (w % 10 = 0)::TINYINT, 40.0
            FROM range({n_items}) t(i), (SELECT unnest({markets!r}) AS m) mm, range({weeks}) r(w)
        """)
        store.execute(f"""INSERT INTO items SELECT 'I' || lpad(i::VARCHAR, 7, '0'),
                          'cat' || (i % 4), 'brand' || (i % 9), 'B' || (i % 10)
                          FROM range({n_items}) t(i)""")
        return _estimates(store)


def _estimates(store: Store) -> str:
    """An estimate run over every item × market (stored in item × market order, as
    ``pricelab estimate`` stores its runs); the same values for the same keys."""
    rng = np.random.default_rng(0)
    keys = store.query("SELECT DISTINCT item_id, market FROM sales ORDER BY item_id, market")
    est = keys.with_columns(
        elasticity=-2.0 + 0.3 * rng.standard_normal(keys.height),
        std_error=np.full(keys.height, 0.2),
    )
    run = record_run(store, "estimate", {"model": "bench"})
    with store.transaction():
        store.write_result("elasticities", est, run.run_id)
        run.finish({})
    return run.run_id


def build_ingested(db: Path, groups: int, weeks: int) -> str:
    """The rows of :func:`build`, loaded with ``pricelab ingest`` (key order) from files."""
    from pricelab.api import ingest

    src = db.with_name("source.duckdb")
    build(src, groups, weeks)
    sales, items = db.with_name("sales.parquet"), db.with_name("items.csv")
    with Store.open(src, read_only=True) as store:
        store.execute(f"COPY sales TO '{sales}' (FORMAT parquet)")
        store.execute(f"COPY items TO '{items}' (HEADER)")
    src.unlink()
    ingest(db, sales=sales, items=items)
    sales.unlink()
    items.unlink()
    with Store.open(db) as store:
        return _estimates(store)


SPEC = {
    "baseline_weeks": 8,
    "horizon_weeks": 4,
    "scenarios": [
        {"name": "cat0+5", "changes": [{"where": {"category": "cat0"}, "price_change_pct": 5}]}
    ],
}


def cli_paths(db: Path, draws: int, repeat: int) -> dict[str, list[float]]:
    """Wall seconds of fresh processes: the bare query and ``pricelab simulate``, per round.

    The processes read compiled bytecode, as an installed package does (a cache beside the
    database, written by one uncounted warm-up round), even where the environment turns
    bytecode writing off: compiling pricelab's modules from source in every process would
    be charged to the command alone.
    """
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "PRICELAB_MLFLOW": ""}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(db.parent / "pycache")
    scen = db.with_suffix(".yaml")
    scen.write_text(json.dumps(SPEC))  # JSON is YAML
    # the reference imports duckdb alone (the query's text is an argument): importing it
    # from pricelab would load polars too and make the reference ~0.3 s slower
    bare = (
        "import sys, duckdb; con = duckdb.connect(sys.argv[1], read_only=True); "
        "con.sql(sys.argv[2], params=[8]).to_arrow_table()"
    )
    py = sys.executable
    cli = [py, "-m", "pricelab", "simulate", "--db", str(db), "--scenario", str(scen), "--draws"]
    cmds = {"bare": [py, "-c", bare, str(db), baseline_sql()], "cli 0": [*cli, "0"]}
    cmds[f"cli {draws}"] = [*cli, str(draws)]
    times: dict[str, list[float]] = {k: [] for k in cmds}
    for cmd in cmds.values():  # warm-up: bytecode, page cache
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    peak = db.parent / "peak.txt"
    for _ in range(repeat):
        for name, cmd in cmds.items():
            # /usr/bin/time reports the command's own peak: a child of this process would
            # start from this process's resident size (Linux carries it through fork + exec)
            timed_cmd = ["/usr/bin/time", "-f", "%M", "-o", str(peak), *cmd]
            t = time.perf_counter()
            proc = subprocess.Popen(timed_cmd, env=env, stdout=subprocess.DEVNULL)
            _, status, use = os.wait4(proc.pid, 0)
            times[name].append(time.perf_counter() - t)
            if os.waitstatus_to_exitcode(status):
                raise RuntimeError(f"{' '.join(cmd)} failed")
            times.setdefault(f"{name} cpu", []).append(use.ru_utime + use.ru_stime)
            kib = float(peak.read_text().split()[-1])
            times.setdefault(f"{name} peak", []).append(kib / 1024)  # MB
    return times


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--groups", type=int, default=100_000)
    ap.add_argument("--weeks", type=int, default=100)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--cli", action="store_true", help="also time the CLI end to end")
    ap.add_argument(
        "--store",
        choices=["bench", "ingest"],
        default="bench",
        help="sales stored week by week (bench) or by 'pricelab ingest' in key order",
    )
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        db = Path(d) / "bench.duckdb"
        t = time.perf_counter()
        (build if a.store == "bench" else build_ingested)(db, a.groups, a.weeks)
        log(
            f"built {a.groups:,} item-markets x {a.weeks} weeks "
            f"({a.groups * a.weeks:,} rows, store: {a.store}) in {time.perf_counter() - t:.1f}s"
        )
        # interleaved: the machine is shared, so each path is timed next to the bare query
        # of its own window and the ratio is taken of the medians
        paths = {
            f"simulate ({a.draws} draws)": (8, a.draws),
            "simulate (100 draws)": (8, 100),
            "point path (--draws 0)": (8, 0),
            f"point path (--draws 0), baseline over all {a.weeks} weeks": (a.weeks, 0),
        }
        with Store.open(db) as store:
            times: dict[str, list[float]] = {}
            pair: dict[str, list[float]] = {}  # each run / the bare query just before it
            cpu: dict[str, list[float]] = {}  # CPU seconds of this process (all threads)
            for _ in range(a.repeat):
                for name, (window, n) in paths.items():
                    spec = {
                        "baseline_weeks": window,
                        "horizon_weeks": 4,
                        "scenarios": [
                            {
                                "name": "cat0+5",
                                "changes": [{"where": {"category": "cat0"}, "price_change_pct": 5}],
                            }
                        ],
                    }
                    t, c = time.perf_counter(), time.process_time()
                    store.con.sql(baseline_sql(), params=[window]).to_arrow_table()
                    times.setdefault(f"bare {window}", []).append(time.perf_counter() - t)
                    cpu.setdefault(f"bare {window}", []).append(time.process_time() - c)
                    t, c = time.perf_counter(), time.process_time()
                    res = simulate(store, spec, draws=n, record=False)
                    times.setdefault(name, []).append(time.perf_counter() - t)
                    cpu.setdefault(name, []).append(time.process_time() - c)
                    pair.setdefault(name, []).append(times[name][-1] / times[f"bare {window}"][-1])
        for name, (window, _) in paths.items():
            b = statistics.median(times[f"bare {window}"])
            emit(
                "simulate",
                f"what-if scenario, {name}",
                a.groups,
                statistics.median(times[name]),
                unit="item-markets",
                repeat=a.repeat,
                reference=f"bare DuckDB baseline query, {window}-week window (to Arrow)",
                reference_seconds=b,
                weeks=a.weeks,
                store=a.store,
                baseline_weeks=window,
                rows_in_window=a.groups * min(window, a.weeks),
                rows_projected=res.table.height,
                ratio_range=[min(pair[name]), max(pair[name])],
                cpu_ratio=statistics.median(cpu[name]) / statistics.median(cpu[f"bare {window}"]),
            )
        if a.cli:
            ct = cli_paths(db, a.draws, a.repeat)
            for name, label in (("cli 0", "--draws 0"), (f"cli {a.draws}", f"--draws {a.draws}")):
                ratios = [c / b for c, b in zip(ct[name], ct["bare"], strict=True)]
                emit(
                    "simulate",
                    f"pricelab simulate {label}, CLI end to end (fresh process)",
                    a.groups,
                    statistics.median(ct[name]),
                    unit="item-markets",
                    repeat=a.repeat,
                    reference="bare baseline query in its own process (import duckdb + query)",
                    reference_seconds=statistics.median(ct["bare"]),
                    weeks=a.weeks,
                    store=a.store,
                    baseline_weeks=8,
                    runs=ct[name],
                    ratio_range=[min(ratios), max(ratios)],
                    command_peak_mb=max(ct[f"{name} peak"]),
                    reference_peak_mb=max(ct["bare peak"]),
                    load_average=[round(x, 1) for x in os.getloadavg()],
                    # CPU seconds: less sensitive to other processes on a shared machine
                    cpu_ratio=statistics.median(ct[f"{name} cpu"])
                    / statistics.median(ct["bare cpu"]),
                )


if __name__ == "__main__":
    main()
