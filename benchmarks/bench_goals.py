"""Every goal of issue #20 in one run: the commands as a user runs them, against their references.

python benchmarks/bench_goals.py [--quick] [--repeat 3] [--jsonl OUT.jsonl] > goals.md

Runs, each in its own process and one after the other (so one goal's load does not hit
another's timing):

1. ``bench_e2e.py --groups 300000``: ``pricelab estimate --model ols|poisson|hierarchical``,
   ``pricelab --version`` and ``pricelab ingest`` (Parquet) as fresh processes, against DuckDB
   ``regr_slope`` / ``CREATE TABLE AS`` in their own processes, interleaved round by round;
2. ``bench_optimize.bench_budget`` on 100k rows (average-change budget + volume floor);
3. ``bench_simulate.py --groups 100000 --cli --store ingest``: the point path and 1,000
   draws, in process and as the CLI, against the bare baseline query, on sales loaded by
   ``pricelab ingest`` (key order, as a user's store holds them: the goal's rows); then the
   same on the benchmark's week-by-week store (``--store bench``, where DuckDB's zone maps
   skip most rows outside the window), printed beside them (``--no-bench-store`` skips it);
4. ``bench_ingest.py --rows 1000000``: ingest of a CSV against DuckDB's ``read_csv`` CTAS;
5. ``bench_sql_floor.py --groups 300000``: goal 1 like for like: the ols command against DuckDB
   computing the same model's sufficient statistics (28 sums per group, point estimates only)
   and against ``regr_slope``, interleaved round by round (``--no-floor`` skips it).

Prints a Markdown table (goal, measurement, min-median-max of the per-round ratios, peak MB,
goal, met) with the machine's load average before and after each part; ``--jsonl`` keeps
every raw measurement line. ``--quick`` uses small sizes (a smoke run, not the goals).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _run(args: list[str], label: str) -> tuple[list[dict[str, Any]], str]:
    """JSON lines of one benchmark script, with the load average around it."""
    before = os.getloadavg()[0]
    t = time.perf_counter()
    print(f"[goals] {label} ...", file=sys.stderr, flush=True)
    out = subprocess.run(
        [sys.executable, *args], cwd=HERE.parent, check=True, stdout=subprocess.PIPE, text=True
    ).stdout
    after = os.getloadavg()[0]
    recs = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    took = time.perf_counter() - t
    print(f"[goals] {label}: {took:.0f} s, load {before:.1f} -> {after:.1f}", file=sys.stderr)
    return recs, f"{before:.1f}-{after:.1f}"


def _range(ratios: list[float] | None, ratio: float | None) -> str:
    if ratios:
        r = sorted(ratios)
        return f"{r[0]:.2f}–{statistics.median(r):.2f}–{r[-1]:.2f}"
    return f"{ratio:.2f}" if ratio is not None else "—"


def _find(recs: list[dict[str, Any]], *words: str) -> dict[str, Any] | None:
    for r in recs:
        if all(w in r["name"] for w in words):
            return r
    return None


def _row(goal: str, what: str, rec: dict[str, Any] | None, limit: float | None, load: str) -> str:
    if rec is None:
        return f"| {goal} | {what} | — | — | — | — | not measured | {load} |"
    ratios = rec.get("ratios") or (
        [rec["ratio"]] if rec.get("ratio") is not None and not rec.get("ratio_range") else None
    )
    rng = _range(ratios, rec.get("ratio"))
    if rec.get("ratio_range") and not rec.get("ratios"):
        lo, hi = rec["ratio_range"]
        rng = f"{lo:.2f}–{hi:.2f} (of the medians {rec['ratio']:.2f})"
    cpu = rec.get("cpu_ratio")
    if cpu is None and rec.get("cpu_ratios"):
        cpu = statistics.median(rec["cpu_ratios"])
    med = rec.get("ratio")
    met = "—" if limit is None or med is None else ("yes" if med <= limit else "no")
    peak = rec.get("peak_mb")
    return (
        f"| {goal} | {what} | {rec['seconds']:.3g} | {rng} | "
        f"{'' if cpu is None else f'{cpu:.2f}'} | {'' if peak is None else f'{peak:,.0f}'} | "
        f"{met} | {load} |"
    )


def _simulate(groups: int, repeat: int, store: str) -> tuple[list[dict[str, Any]], str]:
    """``bench_simulate.py --cli`` on one of its two stores (same rows)."""
    args = ["--groups", str(groups), "--repeat", str(repeat), "--cli", "--store", store]
    return _run(["benchmarks/bench_simulate.py", *args], f"simulate ({store} store)")


def _simulate_rows(recs: list[dict[str, Any]], load: str, store: str) -> None:
    """Goal 4's four rows (point path and 1,000 draws, in process and as the CLI)."""
    goal = "4" if store == "ingested store" else "4, for comparison"
    for limit, what, words in (
        (2, "simulate point path, in process", "point path (--draws 0)"),
        (3, "simulate 1,000 draws, in process", "(1000 draws)"),
        (2, "`pricelab simulate --draws 0` (CLI)", "--draws 0, CLI"),
        (3, "`pricelab simulate --draws 1000` (CLI)", "--draws 1000, CLI"),
    ):
        rec = _find(recs, words)
        print(_row(f"{goal} (≤ {limit}×)", f"{what}, {store}", rec, limit, load))


def _floor_rows(recs: list[dict[str, Any]], load: str) -> None:
    """Goal 1 like for like: the ols command against DuckDB's sums for the same model."""
    ols, sums = _find(recs, "ols"), _find(recs, "sums")
    if ols is None or sums is None:
        return
    ratios = [o / s for o, s in zip(ols["runs"], sums["runs"], strict=True)]
    cpu = [o / s for o, s in zip(ols["cpu_runs"], sums["cpu_runs"], strict=True)]
    like = {
        **ols,
        "ratios": ratios,
        "ratio": statistics.median(ratios),
        "cpu_ratio": statistics.median(cpu),
    }
    what = "`estimate --model ols` vs DuckDB's sufficient statistics of the same model"
    print(_row("1, like for like (≤ 2×)", what, like, 2, load))
    print(_row("1, floor", "DuckDB's sufficient statistics vs `regr_slope`", sums, None, load))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jsonl", type=Path, default=None)
    ap.add_argument(
        "--no-bench-store",
        dest="bench_store",
        action="store_false",
        help="goal 4 on the ingested store only (not also on the week-by-week one)",
    )
    ap.add_argument(
        "--no-floor",
        dest="floor",
        action="store_false",
        help="skip goal 1's like-for-like reference (bench_sql_floor.py)",
    )
    a = ap.parse_args()
    groups, sim_groups, ingest_rows, opt_rows = (
        (3_000, 2_000, 20_000, 2_000) if a.quick else (300_000, 100_000, 1_000_000, 100_000)
    )
    rep = str(a.repeat)
    parts: dict[str, tuple[list[dict[str, Any]], str]] = {
        "e2e": _run(
            ["benchmarks/bench_e2e.py", "--groups", str(groups), "--repeat", rep], "estimate"
        ),
        "optimize": _run(
            [
                "-c",
                "import sys; sys.path.insert(0, 'benchmarks'); import bench_optimize as b; "
                f"b.bench_budget({opt_rows}, {a.repeat}, milp_reference=False)",
            ],
            "optimize",
        ),
        "simulate": _simulate(sim_groups, max(5, a.repeat), "ingest"),
        "ingest": _run(
            ["benchmarks/bench_ingest.py", "--rows", str(ingest_rows), "--repeat", "5"], "ingest"
        ),
    }
    if a.floor:
        parts["floor"] = _run(
            ["benchmarks/bench_sql_floor.py", "--groups", str(groups), "--repeat", rep], "floor"
        )
    if a.bench_store:
        parts["simulate-bench"] = _simulate(sim_groups, max(5, a.repeat), "bench")
    if a.jsonl:
        with a.jsonl.open("w") as f:
            for recs, _ in parts.values():
                f.writelines(json.dumps(r) + "\n" for r in recs)
    e2e, le = parts["e2e"]
    ols = _find(e2e, "ols")
    print(
        "| goal | measurement | seconds (median) | ratio to reference, per round (min–median–max) | "
        "CPU ratio | peak MB | ratio goal met | load average |"
    )
    print("|---|---|---:|---|---:|---:|---|---|")
    print(_row("1 (≤ 2×, ≤ 1 GB)", "`estimate --model ols` vs DuckDB `regr_slope`", ols, 2, le))
    if "floor" in parts:
        _floor_rows(*parts["floor"])
    for model in ("poisson", "hierarchical"):
        rec = _find(e2e, model)
        if rec is not None and ols is not None:  # goal 2 is against the ols command
            rec = {
                **rec,
                "ratios": None,
                "ratio_range": None,
                "ratio": rec["seconds"] / ols["seconds"],
                "cpu_ratio": None,
            }
        print(
            _row(
                "2 (≤ 3× ols, ≤ 1 GB)", f"`estimate --model {model}` vs the ols command", rec, 3, le
            )
        )
    ver = _find(e2e, "--version")
    if ver is not None:
        print(
            f"| — (≤ 0.3 s) | `pricelab --version` | {ver['seconds']:.3g} | | | | "
            f"{'yes' if ver['seconds'] <= 0.3 else 'no'} | {le} |"
        )
    ing = _find(e2e, "ingest")
    print(_row("5 (CLI, Parquet)", "`pricelab ingest` vs DuckDB CTAS read_parquet", ing, None, le))
    recs, lo = parts["optimize"]
    opt = _find(recs, "budget")
    if opt is not None:
        print(
            f"| 3 (≤ 5 s, proven gap) | optimize, average-change budget + volume floor, "
            f"{opt['size']:,} rows (gap {opt.get('gap', float('nan')):.1e}) | "
            f"{opt['seconds']:.3g} ({opt.get('cpu_seconds', float('nan')):.3g} CPU s) | | | | "
            f"{'yes' if opt['seconds'] <= 5 else 'no'} | {lo} |"
        )
    _simulate_rows(*parts["simulate"], "ingested store")
    if "simulate-bench" in parts:
        _simulate_rows(*parts["simulate-bench"], "week-by-week store")
    recs, li = parts["ingest"]
    print(
        _row(
            "5 (≤ 2×)",
            "ingest of a CSV vs DuckDB CTAS read_csv, in process",
            _find(recs, "ingest"),
            2,
            li,
        )
    )


if __name__ == "__main__":
    main()
