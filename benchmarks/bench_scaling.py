"""How estimation cost grows with the number of groups (local engine).

    python benchmarks/bench_scaling.py [--groups 1000,10000,100000,1000000] [--weeks 52]
                                       [--models ols,poisson] [--repeat 3]

For each size, synthetic item × market sales (``simulate_panel``: 2 markets, known
elasticities) are written to Parquet once; each model then runs in a fresh subprocess
that reads the file and calls :func:`pricelab.elasticity.estimate` ``--repeat`` times, so
the reported peak memory (the child's own high-water mark, ``_bench.peak_mb``; not
``ru_maxrss``, which carries this parent's data-building peak into the child) is that
model's alone (data included). One JSON
line per model × size (see ``_bench.py``); the check field ``close_to_truth`` is the share
of groups whose estimate lies within 3 standard errors of the true elasticity.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _bench import emit, log, peak_mb, timed  # noqa: E402


def one(model: str, path: str, truth: str, repeat: int) -> None:
    """Child: read, estimate ``repeat`` times, print one JSON line (not the final format)."""
    import polars as pl

    from pricelab.elasticity import estimate
    from pricelab.engines.local import read_sales

    sales = read_sales(path)
    res, sec = timed(lambda: estimate(sales, model=model), repeat)
    e = res.elasticities.join(pl.read_parquet(truth), on=["item_id", "market"])
    close = ((e["elasticity"] - e["true_elasticity"]).abs() <= 3 * e["std_error"]).mean()
    print(
        json.dumps(
            {
                "seconds": sec,
                "peak_mb": peak_mb(),
                "rows": sales.height,
                "groups": res.elasticities.height,
                "close_to_truth": close,
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", default="1000,10000,100000,1000000")
    ap.add_argument("--weeks", type=int, default=52)
    ap.add_argument("--models", default="ols,poisson")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--one", nargs=3, metavar=("MODEL", "SALES", "TRUTH"), help="(internal)")
    a = ap.parse_args(argv)
    if a.one:
        one(*a.one, a.repeat)
        return 0
    from pricelab.elasticity.synthetic import simulate_panel

    with tempfile.TemporaryDirectory(prefix="pricelab-bench-scaling-") as tmp:
        for g in (int(x) for x in a.groups.split(",")):
            t = time.perf_counter()
            sales, _, truth = simulate_panel(
                n_items=max(g // 2, 1), weeks=a.weeks, base_units=10.0, seed=1
            )
            path, tpath = Path(tmp) / f"sales_{g}.parquet", Path(tmp) / f"truth_{g}.parquet"
            sales.write_parquet(path)
            truth.write_parquet(tpath)
            rows = sales.height
            del sales, truth
            log(
                f"[scaling] {g:,} groups x {a.weeks} weeks: data in {time.perf_counter() - t:.1f} s"
            )
            for model in a.models.split(","):
                p = subprocess.run(
                    [
                        sys.executable,
                        __file__,
                        "--one",
                        model,
                        str(path),
                        str(tpath),
                        "--repeat",
                        str(a.repeat),
                    ],
                    capture_output=True,
                    text=True,
                )
                if p.returncode:
                    log(p.stderr[-2000:])
                    return p.returncode
                r = json.loads(p.stdout.strip().splitlines()[-1])
                emit(
                    "scaling",
                    f"estimate {model} (local engine)",
                    r["groups"],
                    r["seconds"],
                    unit="groups",
                    repeat=a.repeat,
                    peak=r["peak_mb"],
                    rows=rows,
                    weeks=a.weeks,
                    groups_per_s=round(r["groups"] / r["seconds"]),
                    close_to_truth=round(r["close_to_truth"], 4),
                )
            (Path(tmp) / f"sales_{g}.parquet").unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
