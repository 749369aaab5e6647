"""How much of the oracle's profit do point and expected-profit plans capture on the sample?

Usage: ``PYTHONPATH=. python benchmarks/oracle_capture.py [--draws 200]``. The bundled
sample is generated with known elasticities (``data/sample/true_elasticities.csv``): the
oracle plan optimizes on them, and every plan is scored by its profit under them (same
base units, costs and constraints). Printed per estimator (hierarchical, the default, and
per-series poisson, whose intervals are wide) and constraint set: the true profit of the
current prices, of the oracle, of the point plan (``optimize``) and of the expected-profit
plan over the posterior draws (``optimize --expected --draws N``), and each plan's share
of the oracle's uplift over current prices. ``capture`` is what
``tests/test_optimize_expected.py`` checks.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pricelab import api  # noqa: E402
from pricelab.demand.curves import ConstantElasticity  # noqa: E402
from pricelab.demand.from_store import demand_from_store  # noqa: E402
from pricelab.optimize import optimize  # noqa: E402
from pricelab.store import Store  # noqa: E402

KEYS = ["item_id", "market"]
BOUNDS: dict[str, Any] = {
    "objective": "profit",
    "horizon_weeks": 4,
    "bounds": {"max_increase_pct": 15, "max_decrease_pct": 20},
}


def sample_demand(db: Path, model: str) -> pl.DataFrame:
    """The sample ingested into ``db``, estimated with ``model``; its demand table with the
    generator's true elasticity as ``true_elasticity`` (stock left out: no stock limits)."""
    api.ingest(db, **api.sample_files())
    api.estimate(db, model=model)
    with Store.open(db) as store:
        table, _ = demand_from_store(store)
    truth = pl.read_csv(ROOT / "data" / "sample" / "true_elasticities.csv").select(
        *KEYS, pl.col("elasticity").alias("true_elasticity")
    )
    return table.join(truth, on=KEYS, how="left", maintain_order="left").drop(
        "stock", "stock_pool", strict=False
    )


def true_profit(table: pl.DataFrame, plan: Any, column: str = "recommended_price") -> float:
    """Profit (base currency, per week) of a plan's optimized rows under the true demand."""
    t = (
        plan.table.filter(pl.col("status") == "optimized")
        .select(*KEYS, column)
        .join(table, on=KEYS)
    )
    curve = ConstantElasticity(
        t["base_price"].to_numpy(), t["base_quantity"].to_numpy(), t["true_elasticity"].to_numpy()
    )
    margin = curve.margin_term(t[column].to_numpy(), t["unit_cost"].to_numpy())
    return float((margin / t["fx_rate"].to_numpy()).sum())


def capture(
    table: pl.DataFrame, constraints: Any, *, draws: int = 200, seed: int = 0
) -> dict[str, float]:
    """True profit of current prices, oracle, point and expected plans; uplift shares."""
    oracle = optimize(
        table.with_columns(pl.col("true_elasticity").alias("elasticity")), constraints
    )
    point = optimize(table, constraints)
    expected = optimize(table, constraints, expected=True, draws=draws, seed=seed)
    out = {
        "current": true_profit(table, oracle, "current_price"),
        "oracle": true_profit(table, oracle),
        "point": true_profit(table, point),
        "expected": true_profit(table, expected),
    }
    gain = out["oracle"] - out["current"]
    out["point_share"] = (out["point"] - out["current"]) / gain
    out["expected_share"] = (out["expected"] - out["current"]) / gain
    out["median_se"] = float(table["std_error"].median())  # type: ignore[arg-type]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=200)
    a = ap.parse_args(argv)
    sample_cons = ROOT / "data" / "sample" / "constraints.yaml"
    print("| estimates | constraints | median se | current | oracle | point | expected |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for model in ("hierarchical", "poisson"):
            table = sample_demand(Path(tmp) / f"{model}.duckdb", model)
            for name, cons in (("bounds", BOUNDS), ("sample", sample_cons)):
                r = capture(table, cons, draws=a.draws)
                print(
                    f"| {model} | {name} | {r['median_se']:.2f} | {r['current']:,.0f} | "
                    f"{r['oracle']:,.0f} | {r['point']:,.0f} ({100 * r['point_share']:.1f}%) | "
                    f"{r['expected']:,.0f} ({100 * r['expected_share']:.1f}%) |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
