"""Script many what-ifs in a loop: a price grid for one category in every market.

Run after building a database, e.g. ``pricelab demo --db demo.duckdb``::

    python examples/whatif_loop.py demo.duckdb shoes

Each call of :func:`pricelab.api.simulate` is one stored run; here all grid points go in one
scenario file (one run, one baseline query, the same elasticity draws for every point).
"""

from __future__ import annotations

import sys

import polars as pl

from pricelab import api


def grid(db: str, category: str, steps: range = range(-15, 16, 5)) -> pl.DataFrame:
    """Profit and units by market for each price change of ``category``."""
    spec = {
        "baseline_weeks": 8,
        "horizon_weeks": 4,
        "scenarios": [
            {
                "name": f"{category}{pct:+d}%",
                "changes": [{"where": {"category": category}, "price_change_pct": pct}],
            }
            for pct in steps
        ],
    }
    res = api.simulate(db, spec, draws=500, seed=0)
    for w in res.warnings:
        print("warning:", w, file=sys.stderr)
    agg = res.aggregates.filter((pl.col("category") == category) | (pl.col("market") == "(all)"))
    return agg.select(
        "scenario",
        "market",
        "scenario_quantity",
        "quantity_delta_pct",
        "scenario_profit",
        "profit_low",
        "profit_high",
        "profit_delta_pct",
    )


if __name__ == "__main__":
    db_path = sys.argv[1] if len(sys.argv) > 1 else "pricelab.duckdb"
    cat = sys.argv[2] if len(sys.argv) > 2 else "shoes"
    table = grid(db_path, cat)
    with pl.Config(tbl_rows=200, tbl_cols=12, tbl_width_chars=160, float_precision=1):
        print(table.filter(pl.col("market") == "(all)"))
        best = table.filter(pl.col("market") == "(all)").sort("scenario_profit").tail(1)
        print(f"best on expected profit: {best['scenario'][0]}")
