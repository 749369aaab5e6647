"""Notebook-free Databricks entry point: estimate elasticities on the cluster's Spark.

Run by ``spark_estimate_job.json`` as a ``spark_python_task`` (or locally for a dry run)::

    python examples/databricks/run_estimate.py --engine spark \
        --source main.pricing.sales_weekly --items main.pricing.items \
        --model hierarchical --output dbfs:/pricing/elasticities/2026-11-27

``--source``/``--items`` take a table name, a Parquet path or ``delta:PATH``. The
elasticities (one row per item × market, with ``b_*`` coefficients) are written by
Spark as Parquet to ``--output``; a JSON summary is printed on stdout for the job log.
Exit codes follow the pricelab CLI: 2 for bad input or options, 1 never (no checks run).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from pricelab.engines import ENGINES, get_engine
from pricelab.errors import PricelabError


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options of the job."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", required=True, help="sales: table, Parquet path or delta:PATH")
    p.add_argument("--items", default=None, help="items (category, brand): table or path")
    p.add_argument(
        "--model", default="hierarchical", help="ols | poisson | iv | panel | hierarchical"
    )
    p.add_argument("--by", default="item_id,market", help="group columns")
    p.add_argument("--instrument", default=None, help="iv: column or 'hausman'")
    p.add_argument("--before", default=None, help="use only weeks before this ISO date")
    p.add_argument("--output", default=None, help="where to write the elasticities (Parquet)")
    p.add_argument("--engine", default="spark", choices=ENGINES)
    p.add_argument("--partitions", type=int, default=None, help="Spark partitions")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the estimate; return the exit code."""
    args = parse(argv)
    kw: dict[str, object] = {"model": args.model, "by": args.by, "before": args.before}
    if args.instrument:
        kw["instrument"] = args.instrument
    try:
        if args.engine == "spark":
            engine = get_engine("spark", partitions=args.partitions)
            res = engine.estimate(args.source, items=args.items, output=args.output, **kw)
        else:
            from pricelab.io import read_table, write_table

            items = read_table(args.items) if args.items else None
            res = get_engine("local").estimate(args.source, items=items, **kw)
            if args.output:
                write_table(res.elasticities, args.output)
    except PricelabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    t = res.elasticities
    est = t.filter(t["elasticity"].is_not_nan())
    print(
        json.dumps(
            {
                "model": res.model,
                "engine": args.engine,
                "groups": t.height,
                "estimated": est.height,
                "output": args.output,
                "median_elasticity": float(est["elasticity"].median()) if est.height else None,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
