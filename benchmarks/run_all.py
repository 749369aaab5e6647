"""Run every benchmark and write benchmarks/results.md.

    nox -s bench                 # full sizes named in the issues (about 20 minutes)
    nox -s bench -- --quick      # small sizes, a few minutes
    nox -s bench -- --only estimate scaling
    nox -s bench -- --only e2e --before OLD_TREE   # end to end only (updates that section)

Each benchmark script prints one JSON line per measurement (``_bench.py``): median
seconds of several runs, the reference measured in the same run (DuckDB read_csv, DuckDB
regr_slope, statsmodels loops, one undecomposed cvxpy problem, the bare DuckDB baseline
query, the local engine for Spark), their ratio and peak memory. This runner records the
machine, collects every line into one table, and adds the scaling table (estimation time
and peak memory against the number of groups), the end-to-end table (whole commands in
fresh processes, ``bench_e2e.py``) with its scaling plot, and the local-vs-Spark table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import e2e_report  # noqa: E402

FULL = {
    "ingest": ["bench_ingest.py", "--rows", "1000000", "--repeat", "3"],
    "estimate": ["bench_estimate.py", "--groups", "1000000", "--glm-groups", "100000"],
    "scaling": ["bench_scaling.py", "--groups", "1000,10000,100000,1000000"],
    "optimize": ["bench_optimize.py", "--rows", "100000", "--ladder-rows", "10000"],
    "simulate": ["bench_simulate.py", "--groups", "100000", "--weeks", "100", "--repeat", "3"],
    "spark": ["bench_spark.py", "--groups", "100000,1000000", "--repeat", "1"],
    "e2e": [
        "bench_e2e.py",
        "--groups",
        "300000",
        "--scaling",
        "10000,100000",
        "--scaling-ols-only",
    ],
    "markdown": ["bench_markdown.py", "--items", "100000", "--milp-items", "8"],
}
QUICK = {
    "ingest": ["bench_ingest.py", "--rows", "200000", "--repeat", "3"],
    "estimate": ["bench_estimate.py", "--groups", "20000", "--glm-groups", "5000"],
    "scaling": ["bench_scaling.py", "--groups", "1000,10000,100000"],
    "optimize": [
        "bench_optimize.py",
        "--rows",
        "20000",
        "--conic-rows",
        "500",
        "--ladder-rows",
        "5000",
        "--milp-rows",
        "200",
    ],
    "simulate": ["bench_simulate.py", "--groups", "10000", "--weeks", "100", "--repeat", "3"],
    "spark": ["bench_spark.py", "--groups", "10000", "--repeat", "1"],
    "markdown": ["bench_markdown.py", "--items", "10000", "--milp-items", "6"],
    "e2e": ["bench_e2e.py", "--groups", "20000", "--scaling", "5000", "--scaling-ols-only"],
}
#: wall-clock budget per benchmark (seconds); what was measured before it is kept
BUDGET = {"spark": 900}


def _version(mod: str) -> str:
    try:
        return str(importlib.import_module(mod).__version__)
    except Exception:  # noqa: BLE001 - missing or broken: say so
        return "not installed"


def machine() -> list[str]:
    """Machine and software versions as markdown bullet lines."""
    cpu = platform.processor() or platform.machine()
    mem = "?"
    try:
        info = Path("/proc/cpuinfo").read_text()
        cpu = next(
            ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")
        )
        kb = next(
            int(ln.split()[1])
            for ln in Path("/proc/meminfo").read_text().splitlines()
            if ln.startswith("MemTotal")
        )
        mem = f"{kb / 2**20:.1f} GiB"
    except (OSError, StopIteration):
        pass
    java = "not found"
    if shutil.which("java"):
        p = subprocess.run(["java", "-version"], capture_output=True, text=True)
        java = (p.stderr.strip().splitlines() or ["?"])[0]
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    libs = ", ".join(
        f"{m} {_version(m)}"
        for m in (
            "numpy",
            "polars",
            "duckdb",
            "pyarrow",
            "scipy",
            "statsmodels",
            "cvxpy",
            "pyspark",
        )
    )
    return [
        f"- date: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}",
        f"- CPU: {cpu}; {os.cpu_count()} logical cores; memory {mem}; load average at start {load}",
        f"- {platform.platform()}; Python {platform.python_version()}; {java}",
        f"- {libs}",
    ]


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table(recs: list[dict[str, Any]]) -> list[str]:
    """Every measurement in one markdown table."""
    out = [
        "| benchmark | measurement | size | seconds (median) | runs | reference | "
        "reference s | ratio | peak MB |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    for r in recs:
        out.append(
            f"| {r['bench']} | {r['name']} | {_fmt(r['size'])} {r['unit']} | "
            f"{_fmt(r['seconds'])} | {r['repeat']} | {r.get('reference') or ''} | "
            f"{_fmt(r.get('reference_seconds'))} | {_fmt(r.get('ratio'))} | "
            f"{_fmt(r.get('peak_mb'))} |"
        )
    return out


def scaling_table(recs: list[dict[str, Any]]) -> list[str]:
    """Estimation time and peak memory against the number of groups."""
    rows = [r for r in recs if r["bench"] == "scaling"]
    if not rows:
        return ["(not measured)"]
    out = [
        "| model | groups | rows | seconds (median) | groups/s | peak MB | within 3 SE of truth |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r["name"], r["size"])):
        out.append(
            f"| {r['name'].split()[1]} | {_fmt(r['size'])} | {_fmt(r['rows'])} | "
            f"{_fmt(r['seconds'])} | {_fmt(r['groups_per_s'])} | "
            f"{_fmt(r['peak_mb'])} | {r['close_to_truth']:.1%} |"
        )
    return out


def spark_table(recs: list[dict[str, Any]], note: str) -> list[str]:
    rows = [r for r in recs if r["bench"] == "spark"]
    if not rows:
        return [note or "(not measured)"]
    out = [
        "| model | groups × weeks | local s | Spark s | Spark / local | local groups/s | "
        "Spark groups/s | max abs diff |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['name'].split()[1].rstrip(':')} | {_fmt(r['size'])} × {r['weeks']} | "
            f"{_fmt(r['reference_seconds'])} | {_fmt(r['seconds'])} | "
            f"{_fmt(r['ratio'])} | {_fmt(r['local_groups_per_s'])} | "
            f"{_fmt(r['spark_groups_per_s'])} | {r['max_abs_diff']:.1e} |"
        )
    biggest = max(r["size"] for r in rows)
    out.append("")
    out.append(
        f"Largest size measured on Spark: {biggest:,} groups × {rows[0]['weeks']} weeks "
        f"(Spark start-up {rows[0]['spark_startup_s']} s and a warm-up job "
        f"{rows[0]['spark_warmup_job_s']} s are not in the times)." + (f" {note}" if note else "")
    )
    return out


E2E_HEADING = "## End to end (the commands as a user runs them)"
PLOT = "e2e_scaling.png"


def e2e_table(recs: list[dict[str, Any]]) -> list[str]:
    """Whole commands in fresh processes against DuckDB in its own process, same run."""
    if not any(r["bench"] == "e2e" for r in recs):
        return ["(not measured)"]
    return [
        "Each command is a fresh process (`python -m pricelab ...`, start-up included) on a "
        "database built by `pricelab ingest`; the reference is DuckDB in its own process "
        "(`import duckdb` + `regr_slope(ln q, ln p) GROUP BY item_id, market`; for ingest "
        "`CREATE TABLE AS read_parquet`). Commands and reference run interleaved, one of "
        "each per round; ratios are per round; peak: the command's own process (`wait4`); "
        f"the load average before each run ({e2e_report.title(recs)}).",
        "",
        *e2e_report.table(recs),
        "",
        f"![end-to-end scaling]({PLOT})",
    ]


def e2e_plot(recs: list[dict[str, Any]], path: Path) -> bool:
    """Time and peak memory of the estimate commands against the number of groups."""
    return e2e_report.plot(recs, path)


def merge_section(text: str, heading: str, body: list[str], before: str) -> str:
    """``text`` with the section under ``heading`` replaced (or put before ``before``)."""
    section = "\n".join([heading, "", *body, ""]) + "\n"
    if heading in text:
        start = text.index(heading)
        nxt = text.find("\n## ", start + len(heading))
        return text[:start] + section + (text[nxt + 1 :] if nxt >= 0 else "")
    at = text.find(before)
    return text[:at] + section + text[at:] if at >= 0 else text + "\n" + section


def run(name: str, cmd: list[str], env: dict[str, str]) -> tuple[list[dict[str, Any]], str]:
    """Run one script; its JSON measurement lines and a status note."""
    print(f"== {name}: {' '.join(cmd)}", flush=True)
    t = time.perf_counter()
    budget = BUDGET.get(name)
    # own process group: a stopped benchmark takes its children (Spark's JVM) with it
    proc = subprocess.Popen(
        [sys.executable, str(HERE / cmd[0]), *cmd[1:]],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=budget)
        note = (
            f"{name} FAILED (exit {proc.returncode}): {err.strip()[-500:]}"
            if proc.returncode
            else ""
        )
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        note = (
            f"The {name} benchmark was stopped after its {budget} s budget; "
            "sizes not listed did not fit in time."
        )
    recs = []
    for line in out.splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            if "bench" in rec and "seconds" in rec:
                recs.append(rec)
                print("  " + line, flush=True)
    print(f"   {len(recs)} measurement(s) in {time.perf_counter() - t:.0f} s {note}", flush=True)
    return recs, note


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (a few minutes)")
    ap.add_argument("--only", nargs="*", help="benchmark names to run")
    ap.add_argument("--out", default=str(HERE / "results.md"))
    ap.add_argument(
        "--before", help="e2e: an older source tree timed beside this one (before/after)"
    )
    args = ap.parse_args(argv)
    if args.before:
        plan = {k: [*v] for k, v in (QUICK if args.quick else FULL).items()}
        plan["e2e"] += ["--before", args.before]
    else:
        plan = QUICK if args.quick else FULL
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(HERE.parent), os.environ.get("PYTHONPATH")) if p
        ),
    }
    info = machine()
    t0 = time.perf_counter()
    recs: list[dict[str, Any]] = []
    notes: dict[str, str] = {}
    for name, cmd in plan.items():
        if args.only and name not in args.only:
            continue
        got, notes[name] = run(name, cmd, env)
        recs += got
    out_path = Path(args.out)
    if args.only == ["e2e"] and out_path.exists():  # keep the other sections as they are
        e2e_plot(recs, out_path.parent / PLOT)
        text = merge_section(
            out_path.read_text(), E2E_HEADING, e2e_table(recs), "## Estimation scaling"
        )
        out_path.write_text(text)
        print(f"updated the end-to-end section of {out_path}")
        return 1 if "FAILED" in notes.get("e2e", "") else 0
    mode = "quick (`--quick`)" if args.quick else "full"
    lines = [
        f"# pricelab benchmarks: {mode} run",
        "",
        f"Written by `python benchmarks/run_all.py{' --quick' if args.quick else ''}` in "
        f"{(time.perf_counter() - t0) / 60:.1f} min. Seconds are medians of `runs` runs; "
        "ratio = seconds / reference seconds, both measured in the same run (below 1: "
        "pricelab is faster). Peak MB is the resident peak of the process that ran the "
        "measurement (scaling rows: a fresh process per row).",
        "",
        "## Machine",
        "",
        *info,
        "",
        "## All measurements",
        "",
        *table(recs),
        "",
        E2E_HEADING,
        "",
        *e2e_table(recs),
        "",
        "## Estimation scaling (local engine, 52 weeks per group)",
        "",
        *scaling_table(recs),
        "",
        "## Local vs Spark estimation",
        "",
        *spark_table(recs, notes.get("spark", "")),
        "",
    ]
    failed = [n for n, v in notes.items() if "FAILED" in v]
    if failed:
        lines += ["## Failures", "", *[f"- {notes[n]}" for n in failed], ""]
    e2e_plot(recs, out_path.parent / PLOT)
    out_path.write_text("\n".join(lines))
    print(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
