"""Run every benchmark and write benchmarks/results.md.

    nox -s bench                 # full sizes named in the issues
    nox -s bench -- --quick      # small sizes, a few minutes

Each benchmark measures its own reference in the same run (DuckDB CTAS, DuckDB regr_slope,
statsmodels loops, an undecomposed cvxpy problem, the bare DuckDB baseline query) and prints
ratios; this runner records machine information and each benchmark's output.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

FULL = {
    "ingest": ["bench_ingest.py", "--rows", "1000000", "--repeat", "3"],
    "estimate": ["bench_estimate.py", "--groups", "1000000", "--glm-groups", "100000"],
    "optimize": ["bench_optimize.py", "--rows", "100000", "--ladder-rows", "10000"],
    "simulate": ["bench_simulate.py", "--groups", "100000", "--weeks", "100"],
    "spark": ["bench_spark.py"],
}
QUICK = {
    "ingest": ["bench_ingest.py", "--rows", "200000", "--repeat", "2"],
    "estimate": ["bench_estimate.py", "--groups", "20000", "--glm-groups", "5000"],
    "optimize": ["bench_optimize.py", "--rows", "20000", "--ladder-rows", "500"],
    "simulate": ["bench_simulate.py", "--groups", "10000", "--weeks", "100"],
}


def machine() -> str:
    import numpy

    lines = [
        f"- date: {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}",
        f"- python {platform.python_version()} on {platform.platform()}",
        f"- cores: {os.cpu_count()}, numpy {numpy.__version__}",
    ]
    try:
        import duckdb
        import polars

        lines.append(f"- duckdb {duckdb.__version__}, polars {polars.__version__}")
    except ImportError:  # pragma: no cover
        pass
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes")
    ap.add_argument("--only", nargs="*", help="benchmark names to run")
    ap.add_argument("--out", default=str(HERE / "results.md"))
    args = ap.parse_args(argv)
    plan = QUICK if args.quick else FULL
    env = {**os.environ, "PYTHONPATH": str(HERE.parent) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    sections = [f"# pricelab benchmarks ({'quick' if args.quick else 'full'})\n", machine(), ""]
    failed = 0
    for name, cmd in plan.items():
        if args.only and name not in args.only:
            continue
        script = HERE / cmd[0]
        if not script.exists():
            sections.append(f"## {name}\n\n(not available: {cmd[0]} missing)\n")
            continue
        print(f"== {name}: {' '.join(cmd)}", flush=True)
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, str(script), *cmd[1:]], capture_output=True,
                              text=True, env=env)
        elapsed = time.perf_counter() - t
        out = proc.stdout.strip() or "(no output)"
        print(out, flush=True)
        status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode})"
        if proc.returncode:
            failed += 1
            out += "\n" + proc.stderr.strip()[-2000:]
        sections.append(f"## {name} — {status}, {elapsed:.1f} s\n\n`{' '.join(cmd)}`\n\n"
                        f"```\n{out}\n```\n")
    Path(args.out).write_text("\n".join(sections) + "\n")
    print(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
