"""What DuckDB itself needs for the default ``ols`` model: the floors under issue #20's goal 1.

    python benchmarks/bench_sql_floor.py [--db PATH | --groups 300000] [--repeat 3]

Goal 1 compares ``pricelab estimate --model ols`` with DuckDB ``regr_slope(ln q, ln p)``: one
slope and no standard error per group. The default model has an intercept, log price, promo, a
Fourier pair and a trend, cluster-robust leverage-corrected standard errors and a smearing
factor. This script times, each in its own fresh process (``import duckdb`` + the query, as
the goal's reference) and interleaved round by round:

- ``regr_slope``: the goal's reference;
- ``sums``: the default model's sufficient statistics in DuckDB SQL, per group (count, the
  sums of y, y², every regressor, every regressor × y and every product of two regressors:
  28 aggregates), i.e. what DuckDB needs for the point estimates alone, with nothing robust;
- ``scan``: a bare Arrow scan of the columns ``estimate`` reads (the floor of any fit done
  outside DuckDB);
- ``ols``: ``pricelab estimate --model ols --output el.parquet`` on a copy of the database.

Every process reads compiled bytecode (``bench_e2e.use_bytecode``), after one uncounted
warm-up round.

One JSON line per measurement (``_bench.py``) with runs, CPU and peaks, ratios to
``regr_slope`` by round.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _bench import emit, log  # noqa: E402
from bench_e2e import PYCACHE, REF_SQL, make_data, run, use_bytecode  # noqa: E402

_YEAR = 365.25
_X = {
    "lp": "ln(price)",
    "pr": "CAST(coalesce(promo, 0) AS DOUBLE)",
    "s1": f"sin(2 * pi() * dayofyear(date) / {_YEAR})",
    "c1": f"cos(2 * pi() * dayofyear(date) / {_YEAR})",
    "tr": f"(date - (SELECT min(date) FROM sales)) / {_YEAR}",
}
_SUMS = (
    ["count(*)", "sum(y)", "sum(y * y)"]
    + [f"sum({a})" for a in _X]
    + [f"sum({a} * y)" for a in _X]
    + [f"sum({a} * {b})" for i, a in enumerate(_X) for b in list(_X)[i:]]
)
SUMS_SQL = (
    f"SELECT item_id, market, {', '.join(_SUMS)} FROM (SELECT item_id, market, "
    "ln(quantity) AS y, "
    + ", ".join(f"{v} AS {k}" for k, v in _X.items())
    + " FROM sales WHERE quantity > 0) GROUP BY item_id, market"
)
SCAN_SQL = (
    "SELECT date, price, CAST(quantity AS DOUBLE), CAST(coalesce(promo, 0) AS DOUBLE) FROM sales"
)


def _query(db: Path, sql: str, arrow: bool = False) -> list[str]:
    fetch = (
        "r = c.sql(q).to_arrow_reader(1 << 17)\nfor b in r: pass"
        if arrow
        else "c.sql(q).fetchall()"
    )
    code = f"import duckdb\nc = duckdb.connect({str(db)!r}, read_only=True)\nq = {sql!r}\n{fetch}"
    return [sys.executable, "-c", code]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", type=Path, help="an ingested database (else one is built)")
    ap.add_argument("--groups", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pricelab-floor-"))
    if use_bytecode(tmp):  # as an installed package: compiled bytecode (bench_e2e)
        log(f"bytecode: the environment writes none; the timed processes keep it in {PYCACHE[0]}")
    try:
        db = tmp / "floor.duckdb"
        if args.db:
            shutil.copy(args.db, db)
        else:
            src = make_data(args.groups, tmp)
            run(
                [sys.executable, "-m", "pricelab", "ingest", "--db", str(db), "--sales", str(src)],
                HERE.parent,
                tmp,
            )
        py = sys.executable
        jobs = {
            "regr_slope": _query(db, REF_SQL),
            "sums": _query(db, SUMS_SQL),
            "scan": _query(db, SCAN_SQL, arrow=True),
            "ols": [
                py,
                "-m",
                "pricelab",
                "estimate",
                "--model",
                "ols",
                "--db",
                str(db),
                "--output",
                str(tmp / "el.parquet"),
            ],
        }
        got: dict[str, list[tuple[float, float, float]]] = {k: [] for k in jobs}
        for cmd in jobs.values():  # warm-up, not counted: bytecode, page cache
            run(cmd, HERE.parent, tmp)
        for r in range(args.repeat):
            for key, cmd in jobs.items():
                got[key].append(run(cmd, HERE.parent, tmp))
            log(f"floor: round {r + 1}/{args.repeat}")
        ref = [w for w, _, _ in got["regr_slope"]]
        ref_cpu = [c for _, _, c in got["regr_slope"]]
        rows = int(run_count(db))
        for key, vals in got.items():
            walls = [w for w, _, _ in vals]
            cpus = [c for _, _, c in vals]
            emit(
                "floor",
                key,
                rows,
                statistics.median(walls),
                unit="rows",
                repeat=args.repeat,
                reference="DuckDB regr_slope group by item, market (own process)",
                reference_seconds=statistics.median(ref),
                peak=max(p for _, p, _ in vals),
                runs=[round(w, 3) for w in walls],
                ratios=[round(a / b, 3) for a, b in zip(walls, ref, strict=True)],
                cpu_runs=[round(c, 3) for c in cpus],
                cpu_ratios=[round(a / b, 3) for a, b in zip(cpus, ref_cpu, strict=True)],
                load=round(os.getloadavg()[0], 1),
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_count(db: Path) -> int:
    import duckdb

    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute("SELECT count(*) FROM sales").fetchone()
    return int(row[0]) if row else 0


if __name__ == "__main__":
    main()
