"""Recording a run (issue #20, the write path every command pays): what the close's checkpoint,
the result inserts and the input fingerprint cost, and what skipping DuckDB's vacuum would do.

    python benchmarks/bench_writes.py --db DB [--runs 12] [--small 60]
    python benchmarks/bench_writes.py --groups 300000   # builds DB: ingest + estimate ols

``DB`` is a pricelab database with at least one estimate run (it is copied, never written).
Four measurements, CPU seconds of this process (``time.process_time``: every thread,
DuckDB's included), so a loaded machine changes them less than wall seconds:

- ``vacuum``: ``--runs`` rounds, alternating two copies of DB, of the estimate's write
  path (one transaction: the stored run's elasticities and coefficients under a new id, then
  the close), three copies: ``parts`` (pricelab as it is: a run of 61,440 rows or more in a
  table of its own, ``pricelab/store/results.py``), ``one table`` (every run appended to one
  table, as before session 9) and ``skip`` (one table with ``SET max_vacuum_tasks = 0`` on
  the connection). Then the skipped copy is checkpointed once with the vacuum back on: the
  deferred merges. (``bench_estimate_runs.py --before REV`` compares whole commands.)
- ``small``: ``--small`` commands that each record a run and 50 result rows, into a fresh
  database, with and without the vacuum: row groups and file size (the small tables).
- ``columns``: one run of ``elasticities`` inserted into a fresh table, then a second one
  (its checkpoint merges the first run's last row group with it): numeric columns alone,
  each string column added, all columns.
- ``fingerprint``: :func:`pricelab.store.runs.input_fingerprint` in a fresh process (cold
  buffers, as a command takes it) and again in the same process (warm).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from _bench import emit, log  # noqa: E402

_RG = "SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('{}')"


def _groups(con: Any, name: str) -> int:
    """Row groups of result ``name``: its table, or its base and part tables
    (``pricelab/store/results.py``)."""
    tables = [
        r[0]
        for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        if r[0] == name or r[0].startswith(name + "__")
    ]
    return sum(con.execute(_RG.format(t)).fetchall()[0][0] for t in tables)


def _stored_run(db: Path) -> tuple[object, object]:
    from pricelab.store.db import Store
    from pricelab.store.runs import latest_run

    with Store.open(db, read_only=True) as s:
        rid = latest_run(s, "estimate")
        return s.read_result("elasticities", rid), s.read_result("elasticity_params", rid)


def _write(db: Path, frames: tuple[object, object], run_id: str, mode: str) -> tuple[float, float]:
    """The estimate's write path on ``db``: (insert CPU s, commit + close CPU s). ``mode``:
    ``parts`` (pricelab as it is), ``one table`` (every run appended to one table, as before
    session 9), ``skip`` (one table, ``max_vacuum_tasks = 0``)."""
    from pricelab.store import results
    from pricelab.store.db import Store

    part_rows = results.PART_ROWS
    if mode != "parts":
        results.PART_ROWS = 10**12
    try:
        s = Store.open(db)
        if mode == "skip":
            s.con.execute("SET max_vacuum_tasks = 0")
        c0 = time.process_time()
        with s.transaction():
            s.write_result("elasticities", frames[0], run_id)  # type: ignore[arg-type]
            s.write_result("elasticity_params", frames[1], run_id)  # type: ignore[arg-type]
        c1 = time.process_time()
        s.close()
        return c1 - c0, time.process_time() - c1
    finally:
        results.PART_ROWS = part_rows


def bench_vacuum(db: Path, tmp: Path, runs: int) -> None:
    import duckdb

    frames = _stored_run(db)
    n = frames[0].height  # type: ignore[attr-defined]
    modes = ("parts", "one table", "skip")
    copies = {mode: tmp / f"vacuum_{mode.replace(' ', '_')}.duckdb" for mode in modes}
    for path in copies.values():
        shutil.copyfile(db, path)
    cost: dict[str, list[tuple[float, float]]] = {m: [] for m in copies}
    for r in range(runs):
        for mode, path in copies.items():
            cost[mode].append(_write(path, frames, f"bench{r:06d}", mode))
        log(f"vacuum: round {r + 1}/{runs}")
    for mode, path in copies.items():
        con = duckdb.connect(str(path), read_only=True)
        groups = _groups(con, "elasticities")
        reads = []
        for _ in range(5):
            t = time.perf_counter()
            con.sql("SELECT * FROM elasticities WHERE run_id = 'bench000000'").to_arrow_table()
            reads.append(time.perf_counter() - t)
        con.close()
        inserts, closes = zip(*cost[mode], strict=True)
        emit(
            "writes",
            f"estimate write path, {runs} runs, {mode}",
            n,
            statistics.median(c + i for i, c in cost[mode]),
            unit="result rows",
            repeat=runs,
            cpu_insert_median=round(statistics.median(inserts), 3),
            cpu_close_each=[round(c, 3) for c in closes],
            cpu_total=round(sum(inserts) + sum(closes), 2),
            file_mb=round(path.stat().st_size / 1e6, 1),
            row_groups=groups,
            read_one_run_s=round(statistics.median(reads), 4),
        )
    con = duckdb.connect(str(copies["skip"]))  # a later command checkpointing as DuckDB does
    con.execute("CREATE TABLE bench_touch AS SELECT 1 AS a")
    c0 = time.process_time()
    con.execute("CHECKPOINT")
    emit(
        "writes",
        f"vacuum-on checkpoint after {runs} skipped runs (the deferred merges)",
        n,
        time.process_time() - c0,
        unit="result rows",
        row_groups_after=_groups(con, "elasticities"),
        file_mb_after=round(copies["skip"].stat().st_size / 1e6, 1),
    )
    con.close()


def bench_small(tmp: Path, commands: int) -> None:
    import polars as pl

    from pricelab.store.db import Store
    from pricelab.store.runs import record_run

    df = pl.DataFrame(
        {"item_id": [f"I{i}" for i in range(50)], "price": [float(i) for i in range(50)]}
    )
    for mode in ("default", "skip"):
        db = tmp / f"small_{mode}.duckdb"
        for _ in range(commands):
            with Store.open(db) as s:
                if mode == "skip":
                    s.con.execute("SET max_vacuum_tasks = 0")
                run = record_run(s, "optimize", {})
                with s.transaction():
                    s.write_result("plans", df, run.run_id)
                    run.finish({})
        with Store.open(db, read_only=True) as s:
            groups = {t: s.execute(_RG.format(t))[0][0] for t in ("runs", "plans")}
        emit(
            "writes",
            f"{commands} small commands (run row + 50 result rows), vacuum {mode}",
            commands,
            0.0,
            unit="commands",
            row_groups=groups,
            file_mb=round(db.stat().st_size / 1e6, 2),
        )


def bench_columns(db: Path, tmp: Path, repeat: int) -> None:
    import duckdb
    import polars as pl

    el = _stored_run(db)[0].with_columns(pl.lit("bench0000001").alias("run_id"))  # type: ignore[attr-defined]
    strings = [c for c, t in el.schema.items() if t == pl.String]
    numeric = [c for c in el.columns if c not in strings]
    sets = {"numeric columns": numeric, **{f"+ {c}": [*numeric, c] for c in strings}}
    sets["all columns"] = el.columns
    for label, cols in sets.items():
        ins, merge = [], []
        for r in range(repeat):
            path = tmp / f"columns_{r}.duckdb"
            con = duckdb.connect(str(path))
            con.register("x", el.select(cols).to_arrow())
            con.execute("CREATE TABLE t AS SELECT * FROM x LIMIT 0")
            con.execute("INSERT INTO t SELECT * FROM x")
            con.execute("CHECKPOINT")
            c0 = time.process_time()
            con.execute("INSERT INTO t SELECT * FROM x")
            c1 = time.process_time()
            con.execute("CHECKPOINT")  # merges the first run's last row group with this one
            ins.append(c1 - c0)
            merge.append(time.process_time() - c1)
            con.close()
            path.unlink()
        emit(
            "writes",
            f"elasticities insert, {label}",
            el.height,
            statistics.median(ins),
            unit="result rows",
            repeat=repeat,
            cpu_merge_checkpoint=round(statistics.median(merge), 3),
        )


_FP = """
import sys, time
from pricelab.store.db import Store
from pricelab.store.runs import input_fingerprint
with Store.open(sys.argv[1], read_only=True) as s:
    out = []
    for _ in range(2):
        c = time.process_time(); input_fingerprint(s); out.append(time.process_time() - c)
print(out[0], out[1])
"""


def bench_fingerprint(db: Path, repeat: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(HERE.parent)}
    cold, warm = [], []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, "-c", _FP, str(db)], env=env, capture_output=True, text=True
        )
        a, b = out.stdout.split()
        cold.append(float(a))
        warm.append(float(b))
    emit(
        "writes",
        "input fingerprint (all input tables), fresh process",
        0,
        statistics.median(cold),
        unit="-",
        repeat=repeat,
        cpu_cold=[round(x, 3) for x in cold],
        cpu_warm=round(statistics.median(warm), 3),
    )


def _build(groups: int, tmp: Path) -> Path:
    from pricelab import api
    from pricelab.elasticity.synthetic import simulate_panel

    src = tmp / "sales.parquet"
    simulate_panel(
        n_items=max(groups // 2, 1), markets=("US", "GB"), weeks=52, base_units=10.0, seed=1
    )[0].write_parquet(src)
    db = tmp / "built.duckdb"
    api.ingest(db, sales=src)
    api.estimate(db, model="ols")
    return db


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, help="a pricelab database with an estimate run (copied)")
    ap.add_argument("--groups", type=int, default=20_000, help="without --db: build one")
    ap.add_argument("--runs", type=int, default=12)
    ap.add_argument("--small", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pricelab-writes-") as name:
        tmp = Path(name)
        db = args.db if args.db is not None else _build(args.groups, tmp)
        bench_fingerprint(db, args.repeat)
        bench_columns(db, tmp, args.repeat)
        bench_small(tmp, args.small)
        bench_vacuum(db, tmp, args.runs)


if __name__ == "__main__":
    main()
