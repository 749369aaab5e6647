"""Local vs Spark estimation throughput (groups per second), measured in the same run.

    python benchmarks/bench_spark.py [--groups 10000,100000] [--weeks 52]
                                     [--models ols,poisson] [--repeat 1] [--master local[2]]

For each size, synthetic item × market sales (``simulate_panel``, known elasticities) are
written to Parquet once; then both engines read that file and estimate:

* local: ``read_sales`` + :func:`pricelab.elasticity.estimate` in this process;
* spark: :func:`pricelab.engines.spark.estimate_spark_results` (read, one checking
  aggregation, dry run for the schema, repartition by item, ``mapInArrow``, collect),
  after a warm-up job so JVM and Python-worker start-up is reported separately.

One JSON line per model × size (see ``_bench.py``): Spark's median seconds against the
local engine's (ratio = Spark / local), groups/second and the largest elasticity
difference between the engines (they must agree to 1e-8); ``peak_mb`` is the Python
driver's (the JVM's memory is not included). Skips cleanly without PySpark
or Java. On a laptop-class ``local[2]`` Spark is slower than the local engine (the same
kernels plus serialisation and a shuffle); its point is memory and scale-out beyond one
machine, which this ratio lets you price.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _bench import emit, log, peak_mb  # noqa: E402

from pricelab.elasticity import estimate  # noqa: E402
from pricelab.elasticity.synthetic import simulate_panel  # noqa: E402
from pricelab.engines.local import read_sales  # noqa: E402


def _timed(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def run(groups: list[int], weeks: int, models: list[str], repeat: int, master: str) -> dict:
    """Benchmark every size × model; returns a JSON-able dict."""
    from pricelab.engines.spark import estimate_spark_results, spark_session

    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
    t = time.perf_counter()
    spark = spark_session(master)
    startup = time.perf_counter() - t
    rows = []
    with tempfile.TemporaryDirectory(prefix="pricelab-bench-spark-") as tmp:
        warm, _, _ = simulate_panel(n_items=50, weeks=weeks, seed=9)
        warm.write_parquet(Path(tmp) / "warm.parquet")
        t = time.perf_counter()
        estimate_spark_results(Path(tmp) / "warm.parquet", model="ols", spark=spark)
        warmup = time.perf_counter() - t
        for g in groups:
            sales, _, _ = simulate_panel(
                n_items=max(g // 2, 1), weeks=weeks, base_units=10.0, seed=1
            )
            path = Path(tmp) / f"sales_{g}.parquet"
            sales.write_parquet(path)
            n_groups = sales.select("item_id", "market").n_unique()
            for model in models:
                t_loc, loc = _timed(
                    lambda m=model, p=path: estimate(read_sales(p), model=m), repeat
                )
                t_sp, sp = _timed(
                    lambda m=model, p=path: estimate_spark_results(p, model=m, spark=spark), repeat
                )
                a = loc.elasticities["elasticity"].to_numpy()  # type: ignore[union-attr]
                b = sp.elasticities["elasticity"].to_numpy()  # type: ignore[union-attr]
                diff = float(np.nanmax(np.abs(a - b))) if a.size == b.size else float("inf")
                rows.append(
                    {
                        "model": model,
                        "groups": n_groups,
                        "rows": sales.height,
                        "local_s": round(t_loc, 3),
                        "spark_s": round(t_sp, 3),
                        "local_groups_per_s": round(n_groups / t_loc),
                        "spark_groups_per_s": round(n_groups / t_sp),
                        "spark_over_local_time": round(t_sp / t_loc, 2),
                        "max_abs_diff": diff,
                    }
                )
                log(_line(rows[-1]))
                emit(
                    "spark",
                    f"estimate {model}: Spark {master} (time) vs local engine",
                    n_groups,
                    t_sp,
                    unit="groups",
                    repeat=repeat,
                    reference="local engine, same Parquet file",
                    reference_seconds=t_loc,
                    peak=peak_mb(),
                    rows=sales.height,
                    weeks=weeks,
                    local_groups_per_s=rows[-1]["local_groups_per_s"],
                    spark_groups_per_s=rows[-1]["spark_groups_per_s"],
                    max_abs_diff=diff,
                    spark_startup_s=round(startup, 1),
                    spark_warmup_job_s=round(warmup, 1),
                )
    spark.stop()
    return {
        "machine": {
            "python": platform.python_version(),
            "cores": os.cpu_count(),
            "spark": spark.version,
            "master": master,
        },
        "spark_startup_s": round(startup, 1),
        "spark_warmup_job_s": round(warmup, 1),
        "weeks": weeks,
        "repeat": repeat,
        "results": rows,
    }


def _line(r: dict) -> str:
    return (
        f"{r['model']:>8} {r['groups']:>8} groups: local {r['local_s']:7.2f} s "
        f"({r['local_groups_per_s']:>7} groups/s)  spark {r['spark_s']:7.2f} s "
        f"({r['spark_groups_per_s']:>7} groups/s)  spark/local {r['spark_over_local_time']}x"
        f"  max |diff| {r['max_abs_diff']:.1e}"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", default="10000,100000", help="comma-separated group counts")
    ap.add_argument("--weeks", type=int, default=52)
    ap.add_argument("--models", default="ols,poisson")
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement (median)")
    ap.add_argument("--master", default="local[2]")
    a = ap.parse_args(argv)
    if importlib.util.find_spec("pyspark") is None or (
        shutil.which("java") is None and not os.environ.get("JAVA_HOME")
    ):
        log("spark benchmark skipped: needs pip install 'pricelab[spark]' and Java 17")
        return 0
    res = run(
        [int(g) for g in a.groups.split(",")], a.weeks, a.models.split(","), a.repeat, a.master
    )
    log(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
