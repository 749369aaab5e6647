"""Result views over many parts: what a store with N estimate runs of their own costs.

A nightly job that estimates 300k groups adds one part table per night
(:mod:`pricelab.store.results`); after three years that is ~1,000 parts behind the view
``elasticities``. This builds the bundled sample's database with one real ``ols`` estimate,
then N estimate runs whose rows sit in parts of their own (indexed in ``meta`` as
:func:`pricelab.store.results.write` does, where the source tree has the index) (``elasticities__part<k>`` and
``elasticity_params__part<k>``; 616 rows each, copies of the real run under new run ids, so
the planner sees N branches; ``--large`` of them hold 616 x 500 rows, for the scan), and
times, each in a fresh process, round by round over every N (interleaved):

- ``open``: :meth:`Store.open` (schema check);
- ``read``: ``store.read_result("elasticities", RUN)`` of the oldest part's run and of the
  newest (the view, ``WHERE run_id = ?``);
- ``append``: one more part (``write_result`` of 61,440 rows + COMMIT) on a copy;
- ``runs list``, ``report --output x.html`` and ``monitor``: the CLI, end to end.

Run: ``PYTHONPATH=. python benchmarks/bench_result_parts.py --parts 10,100,1000,3000``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
from pricelab.store import Store
import polars as pl
db, what, first, last = sys.argv[1:5]
out = {}
t = time.perf_counter(); store = Store.open(db); out["open"] = time.perf_counter() - t
if what == "read":
    for label, run in (("read_oldest", first), ("read_newest", last)):
        t = time.perf_counter(); df = store.read_result("elasticities", run)
        out[label] = time.perf_counter() - t
        assert df.height > 0, label
elif what == "append":
    df = store.read_result("elasticities", last)
    big = pl.concat([df] * (61_440 // df.height + 1)).head(61_440)
    t = time.perf_counter()
    with store.transaction():
        store.write_result("elasticities", big, "appended-run")
    out["append"] = time.perf_counter() - t
store.close()
print(json.dumps(out))
"""


def build(template: Path, n: int, large: int, folder: Path) -> tuple[Path, str, str]:
    """A copy of ``template`` with ``n`` more estimate runs, each in parts of its own."""
    import duckdb

    from pricelab.store import results

    db = folder / f"parts{n}.duckdb"
    shutil.copyfile(template, db)
    con = duckdb.connect(str(db))
    src = con.execute("SELECT run_id FROM runs WHERE command = 'estimate'").fetchall()[0][0]
    con.execute("BEGIN")
    for name in ("elasticities", "elasticity_params"):
        con.execute(f'ALTER TABLE "{name}" RENAME TO "{name}__base"')
    ids = []
    for k in range(1, n + 1):
        rid = f"night{k:05d}"
        ids.append(rid)
        rep = 500 if k <= large else 1
        for name in ("elasticities", "elasticity_params"):
            con.execute(
                f'CREATE TABLE "{name}__part{k}" AS SELECT * REPLACE (? AS run_id) '
                f'FROM "{name}__base", range({rep}) WHERE run_id = ?',
                [rid, src],
            )
        con.execute(
            "INSERT INTO runs SELECT * REPLACE (? AS run_id, started_at + to_seconds(?) AS "
            "started_at, ended_at + to_seconds(?) AS ended_at) FROM runs WHERE run_id = ?",
            [rid, k, k, src],
        )
    con.execute("COMMIT")

    class _S:  # the two methods results._replace_view uses
        def __init__(self, c: duckdb.DuckDBPyConnection) -> None:
            self.con = c

    s = _S(con)
    for name in ("elasticities", "elasticity_params"):
        results._replace_view(s, name, f"{name}__base", results.parts(s, name))  # type: ignore[arg-type]
        if hasattr(results, "_INDEXED"):  # the part index, as results.write keeps it
            con.execute(
                "INSERT INTO meta VALUES (?, ?)", [results._INDEXED + name, f"{name}__base"]
            )
            for k, rid in enumerate(ids, 1):
                con.execute(
                    "INSERT INTO meta VALUES (?, ?)",
                    [f"{results._RUN_KEY}{name}:{rid}", f"{name}__part{k}"],
                )
    con.close()
    return db, ids[0], ids[-1]


def timed(cmd: list[str], cwd: Path) -> float:
    t = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if done.returncode not in (0, 1):  # monitor: 1 is an alert, still a full run
        raise RuntimeError(f"{' '.join(cmd)}: exit {done.returncode}: {done.stderr[-500:]}")
    return wall


def probe(db: Path, what: str, first: str, last: str, cwd: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(db), what, first, last],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--parts", default="10,100,1000,3000")
    ap.add_argument("--large", type=int, default=3, help="parts of 308,000 rows (the scan)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tmp", type=Path, default=None)
    args = ap.parse_args()
    sizes = [int(x) for x in args.parts.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-parts-", dir=args.tmp))
    py = sys.executable
    from pricelab import api

    template = tmp / "template.duckdb"
    api.ingest(template, **api.sample_files())
    api.estimate(template, model="ols")
    built = {}
    for n in sizes:
        t = time.perf_counter()
        built[n] = build(template, n, min(args.large, n), tmp)
        print(f"built {n} parts in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    times: dict[int, dict[str, list[float]]] = {n: {} for n in sizes}
    for _ in range(args.rounds):
        for n in sizes:
            db, first, last = built[n]
            rec = times[n]
            for k, v in probe(db, "read", first, last, tmp).items():
                rec.setdefault(k, []).append(v)
            copy = tmp / "append.duckdb"
            shutil.copyfile(db, copy)
            rec.setdefault("append", []).append(probe(copy, "append", first, last, tmp)["append"])
            copy.unlink()
            pm = [py, "-m", "pricelab"]
            rec.setdefault("runs list", []).append(
                timed([*pm, "runs", "list", "--db", str(db)], tmp)
            )
            html = str(tmp / "r.html")
            rec.setdefault("report", []).append(
                timed([*pm, "report", "--db", str(db), "--output", html], tmp)
            )
            rec.setdefault("monitor", []).append(timed([*pm, "monitor", "--db", str(db)], tmp))
    keys = ["open", "read_oldest", "read_newest", "append", "runs list", "report", "monitor"]
    print(f"load {Path('/proc/loadavg').read_text().split()[:3]}")
    print("| parts | " + " | ".join(keys) + " |")
    print("|---:|" + "---:|" * len(keys))
    for n in sizes:
        cells = [
            f"{statistics.median(times[n][k]):.3f} ({min(times[n][k]):.3f}-{max(times[n][k]):.3f})"
            for k in keys
        ]
        print(f"| {n} | " + " | ".join(cells) + " |")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
