"""The floor of each step of ``estimate --model ols``, each in a fresh process (issue #20 goal 1).

    python benchmarks/bench_ols_floors.py --db PATH [--repeat 8] [--fifo]

On an ingested database (``pricelab ingest``; copied per run, never written), times,
interleaved round by round, fresh processes that each do one step of the command the
fastest way we know, with the step timed inside the process (wall and process CPU) so the
interpreter's start and the imports a step needs are not counted twice:

- ``python``: the interpreter alone (``python -c pass``, whole process);
- ``imports``: what the command imports before its store opens (typer, rich, polars,
  DuckDB, pricelab's CLI and API modules), after the interpreter;
- ``numba``: ``import numba`` and the cached ``ols`` kernel (``compiled.load_module``),
  after numpy and pricelab's elasticity package;
- ``setup``: the queries before the first chunk (row count, date range, promo presence,
  the keys of ``sales_keys`` with their hashes), after ``import duckdb`` and the connection;
- ``scan``: a bare Arrow scan of what the fit reads (the key hash, date, price, quantity as
  double, promo), record batches of 128k rows, nothing else done with them;
- ``fingerprint``: the input fingerprint's scan of the sales (count, ``bit_xor`` of each
  row's hash, date range; the command takes it beside the fit, on DuckDB's threads);
- ``output``: the elasticities written to Parquet by polars (``--output``);
- ``inserts``: the run's two result tables (300k rows each at 300k groups: the stored rows
  of a finished run, read from Parquet before the clock starts) created from Arrow in one
  transaction and committed, then ``close`` (DuckDB's checkpoint);
- ``regr_slope``: goal 1's reference, whole process (``import duckdb`` + the query);
- ``ols``: the command itself, whole process, on a fresh copy of the database.

The compiled kernel's own CPU is measured in process by ``bench_fit_phase.py`` (it needs
the chunks). Every process reads compiled bytecode (``bench_e2e.use_bytecode``), after one
uncounted warm-up round. Prints one JSON line per step (medians, with every round's
figures and the load average) and a markdown table on stderr.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _bench import emit, log  # noqa: E402
from bench_e2e import PREFIX, PYCACHE, REF_SQL, use_bytecode  # noqa: E402

#: inside each step's process: print the step's wall and CPU seconds as JSON
_CLOCK = (
    "import time as _t, json as _j\n"
    "def _now():\n"
    "    return _t.perf_counter(), _t.process_time()\n"
    "def _done(a):\n"
    "    b = _now()\n"
    "    print(_j.dumps({'wall': b[0] - a[0], 'cpu': b[1] - a[1]}))\n"
)
_IMPORTS = (
    "a = _now()\n"
    "import pricelab.cli.app, pricelab.cli.estimate, pricelab.api.estimate\n"
    "import pricelab.store.runs, pricelab.engines.chunked, duckdb, polars\n"
    "_done(a)\n"
)
_NUMBA = (
    "import numpy, pricelab.elasticity, pricelab.elasticity.compiled as c\n"
    "a = _now()\n"
    "assert c.load_module('ols_jit') is not None\n"
    "_done(a)\n"
)
_SETUP = (
    "import sys, duckdb\n"
    "con = duckdb.connect(sys.argv[1], read_only=True)\n"
    "a = _now()\n"
    "con.sql('SELECT count(*), min(date), max(date), count(promo) FROM sales').fetchall()\n"
    "con.sql('SELECT item_id, market, hash(item_id, market) AS h FROM sales_keys ORDER BY h')"
    ".to_arrow_table()\n"
    "_done(a)\n"
)
_SCAN = (
    "import sys, duckdb\n"
    "con = duckdb.connect(sys.argv[1], read_only=True)\n"
    "a = _now()\n"
    "r = con.sql('SELECT hash(item_id, market) AS h, date, price, CAST(quantity AS DOUBLE) AS q, "
    "CAST(coalesce(promo, 0) AS DOUBLE) AS promo FROM sales').to_arrow_reader(1 << 17)\n"
    "n = sum(b.num_rows for b in r)\n"
    "_done(a)\n"
)
_FINGERPRINT = (
    "import sys, duckdb\n"
    "con = duckdb.connect(sys.argv[1], read_only=True)\n"
    "a = _now()\n"
    "con.sql('SELECT count(*), bit_xor(hash(item_id, market, date, price, quantity, promo, "
    "unit_cost)), min(date), max(date) FROM sales').fetchall()\n"
    "_done(a)\n"
)
_OUTPUT = (
    "import sys, polars as pl\n"
    "df = pl.read_parquet(sys.argv[2])\n"
    "a = _now()\n"
    "df.write_parquet(sys.argv[3])\n"
    "_done(a)\n"
)
_INSERTS = (
    "import sys, duckdb, pyarrow.parquet as pq\n"
    "e, p = pq.read_table(sys.argv[2]), pq.read_table(sys.argv[3])\n"
    "con = duckdb.connect(sys.argv[1])\n"
    "a = _now()\n"
    "con.execute('BEGIN')\n"
    "con.execute('CREATE TABLE floor_e AS SELECT * FROM e')\n"
    "con.execute('CREATE TABLE floor_p AS SELECT * FROM p')\n"
    "con.execute('COMMIT')\n"
    "_done(a)\n"
    "a = _now()\n"
    "con.close()\n"
    "_done(a)\n"
)


def _fresh(cmd: list[str], cwd: Path) -> tuple[float, float, list[dict[str, float]]]:
    """Whole-process wall and CPU seconds of ``cmd`` and the step timings it printed."""
    env = {**os.environ, "PYTHONPATH": str(HERE.parent), "PRICELAB_MLFLOW": ""}
    if PYCACHE:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = PYCACHE[0]
    t = time.perf_counter()
    proc = subprocess.Popen([*PREFIX, *cmd], cwd=cwd, env=env, stdout=subprocess.PIPE)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, use = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status):
        raise RuntimeError(f"{' '.join(cmd)} failed")
    steps = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
    return wall, use.ru_utime + use.ru_stime, steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, required=True, help="a database written by ingest")
    ap.add_argument("--repeat", type=int, default=8)
    ap.add_argument("--fifo", action="store_true", help="every process under chrt -f 20")
    args = ap.parse_args()
    if args.fifo:
        PREFIX[:] = ["chrt", "-f", "20"]
    tmp = Path(tempfile.mkdtemp(prefix="pricelab-floors-"))
    use_bytecode(tmp)
    try:
        db, scratch = tmp / "floors.duckdb", tmp / "scratch.duckdb"
        shutil.copy(args.db, db)
        py = sys.executable
        el, params = tmp / "el.parquet", tmp / "params.parquet"
        ols = [py, "-m", "pricelab", "estimate", "--model", "ols", "--db", str(scratch)]
        shutil.copy(db, scratch)  # one run of the command gives the stored rows to insert
        _fresh([*ols, "--output", str(tmp / "out.parquet")], tmp)
        _export(scratch, el, params)
        code = {
            "imports": _IMPORTS,
            "numba": _NUMBA,
            "setup": _SETUP,
            "scan": _SCAN,
            "fingerprint": _FINGERPRINT,
            "inserts": _INSERTS,
            "output": _OUTPUT,
        }
        jobs = {
            "python": [py, "-c", "pass"],
            **{k: [py, "-c", _CLOCK + c, str(db)] for k, c in code.items()},
            "regr_slope": [
                py,
                "-c",
                f"import duckdb; duckdb.connect({str(db)!r}, read_only=True).sql({REF_SQL!r}).fetchall()",
            ],
            "ols": [*ols, "--output", str(tmp / "out.parquet")],
        }
        jobs["inserts"] = [*jobs["inserts"][:-1], str(scratch), str(el), str(params)]
        jobs["output"] = [*jobs["output"][:-1], str(db), str(el), str(tmp / "floor.parquet")]
        got: dict[str, list[tuple[float, float, list[dict[str, float]]]]] = {k: [] for k in jobs}
        loads = []
        for r in range(args.repeat + 1):  # round 0: warm-up (bytecode, page cache)
            loads.append(os.getloadavg()[0])
            for key, cmd in jobs.items():
                if key in ("inserts", "ols"):
                    shutil.copy(db, scratch)
                res = _fresh(cmd, tmp)
                if r:
                    got[key].append(res)
            log(f"floors: round {r}/{args.repeat}")
        _report(got, loads[1:], int(_count(db)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _export(db: Path, el: Path, params: Path) -> None:
    """The stored rows of the command's run (the two result tables) as Parquet."""
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        for name, path in (("elasticities", el), ("elasticity_params", params)):
            con.execute(f"COPY (SELECT * FROM {name}) TO '{path}' (FORMAT PARQUET)")


def _count(db: Path) -> int:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute("SELECT count(*) FROM sales").fetchone()
    return int(row[0]) if row else 0


def _report(got: dict, loads: list[float], rows: int) -> None:  # type: ignore[type-arg]
    load = f"{min(loads):.1f}-{max(loads):.1f}"
    ref = [w for w, _, _ in got["regr_slope"]]
    log("| step (fresh process) | wall s, median (min-max) | CPU s, median | / regr_slope wall |")
    log("|---|---:|---:|---:|")
    for key, vals in got.items():
        parts = max(len(s) for _, _, s in vals)
        for i in range(max(parts, 1)):
            if parts:  # the step's own clock (inserts: the commit, then close)
                walls = [s[i]["wall"] for _, _, s in vals]
                cpus = [s[i]["cpu"] for _, _, s in vals]
                name = key if i == 0 else "close (checkpoint)"
            else:
                walls = [w for w, _, _ in vals]
                cpus = [c for _, c, _ in vals]
                name = key
            med = statistics.median(walls)
            log(
                f"| {name} | {med:.3f} ({min(walls):.3f}-{max(walls):.3f}) | "
                f"{statistics.median(cpus):.3f} | {med / statistics.median(ref):.2f} |"
            )
            emit(
                "floors",
                name,
                rows,
                med,
                repeat=len(vals),
                reference="DuckDB regr_slope group by item, market (own process)",
                reference_seconds=statistics.median(ref),
                runs=[round(w, 3) for w in walls],
                cpu_runs=[round(c, 3) for c in cpus],
                cpu=round(statistics.median(cpus), 3),
                load=load,
            )
    log(f"load average {load}")


if __name__ == "__main__":
    main()
