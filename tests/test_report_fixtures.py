"""Builders for stored runs used by the report, monitor and lineage tests (no tests here).

Result tables are written the way ``estimate`` / ``optimize`` / ``simulate`` write them
(``record_run`` + ``write_result`` + ``finish`` in one transaction), with elasticities taken
from the sample's known truth (``data/sample/true_elasticities.csv``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from pricelab.demand.curves import ConstantElasticity
from pricelab.store import Store, record_run

REPO = Path(__file__).resolve().parents[1]
TRUTH = REPO / "data" / "sample" / "true_elasticities.csv"
Z95 = 1.959963984540054


def truth(n: int) -> pl.DataFrame:
    """The first ``n`` rows of the sample's true elasticities."""
    return pl.read_csv(TRUTH, schema_overrides={"elasticity": pl.Float64}).head(n)


def estimate_frame(
    keys: Sequence[tuple[str, str]],
    *,
    std_error: float = 0.2,
    shift: dict[tuple[str, str], float] | None = None,
    flags: dict[tuple[str, str], str] | None = None,
    category: dict[str, str] | None = None,
) -> pl.DataFrame:
    """An ``elasticities`` table for ``keys`` with true elasticities (plus ``shift``)."""
    t = truth(len(keys))
    shift, flags = shift or {}, flags or {}
    rows = []
    for (item, market), e in zip(keys, t["elasticity"].to_list(), strict=True):
        e = e + shift.get((item, market), 0.0)
        rows.append(
            {
                "item_id": item,
                "market": market,
                "elasticity": e,
                "std_error": std_error,
                "ci_low": e - Z95 * std_error,
                "ci_high": e + Z95 * std_error,
                "n_obs": 104,
                "method": "poisson",
                "n_zero": 40,
                "price_variation": 0.08,
                "flags": flags.get((item, market), ""),
            }
        )
    df = pl.DataFrame(rows)
    if category:
        df = df.with_columns(pl.col("item_id").replace_strict(category).alias("category"))
    return df


def plan_frame(
    est: pl.DataFrame,
    *,
    price: float = 100.0,
    base_weekly: float = 5.0,
    cost_share: float = 0.45,
    weeks: int = 4,
    max_up: float = 0.15,
    max_down: float = 0.20,
) -> pl.DataFrame:
    """A plan: the constant-elasticity optimum p* = c e / (1 + e) within bounds.

    Contract columns plus ``price_change_pct``, as ``optimize`` stores them.
    """
    rows = []
    for k, r in enumerate(est.iter_rows(named=True)):
        p0 = price * (1 + 0.1 * k)
        c = cost_share * p0
        e = r["elasticity"]
        q0 = base_weekly * weeks
        curve = ConstantElasticity(base_price=p0, base_quantity=q0, elasticity=e)
        star = float(curve.optimal_price(c))
        rec = float(min(max(star, (1 - max_down) * p0), (1 + max_up) * p0))
        binding = (
            "max_increase_pct"
            if rec >= (1 + max_up) * p0 - 1e-9
            else "max_decrease_pct"
            if rec <= (1 - max_down) * p0 + 1e-9
            else ""
        )
        q = float(curve.quantity(rec))
        rows.append(
            {
                "item_id": r["item_id"],
                "market": r["market"],
                "current_price": p0,
                "recommended_price": rec,
                "expected_quantity": q,
                "expected_revenue": rec * q,
                "expected_profit": (rec - c) * q,
                "baseline_quantity": q0,
                "baseline_revenue": p0 * q0,
                "baseline_profit": (p0 - c) * q0,
                "binding": binding,
                "price_change_pct": 100 * (rec / p0 - 1),
            }
        )
    return pl.DataFrame(rows)


def scenario_frame(plan: pl.DataFrame, est: pl.DataFrame, change_pct: float = 5.0) -> pl.DataFrame:
    """Two scenarios on the plan's rows: every price +``change_pct``% and the plan itself."""
    df = plan.join(est.select("item_id", "market", "elasticity"), on=["item_id", "market"])
    c = df["current_price"] - df["baseline_profit"] / df["baseline_quantity"]
    out = []
    for name, prices in (
        (f"all-plus-{change_pct:g}", df["current_price"] * (1 + change_pct / 100)),
        ("plan", df["recommended_price"]),
    ):
        curve = ConstantElasticity(
            base_price=df["current_price"].to_numpy(),
            base_quantity=df["baseline_quantity"].to_numpy(),
            elasticity=df["elasticity"].to_numpy(),
        )
        q = pl.Series(curve.quantity(prices.to_numpy()))
        out.append(
            pl.DataFrame(
                {
                    "scenario": name,
                    "item_id": df["item_id"],
                    "market": df["market"],
                    "baseline_price": df["current_price"],
                    "scenario_price": prices,
                    "baseline_quantity": df["baseline_quantity"],
                    "scenario_quantity": q,
                    "quantity_low": q * 0.8,
                    "quantity_high": q * 1.2,
                    "baseline_revenue": df["baseline_revenue"],
                    "scenario_revenue": prices * q,
                    "baseline_profit": df["baseline_profit"],
                    "scenario_profit": (prices - c) * q,
                }
            )
        )
    return pl.concat(out)


def store_run(
    db: Path,
    command: str,
    table: str,
    df: pl.DataFrame,
    *,
    parameters: dict[str, Any] | None = None,
    parents: Sequence[str] = (),
    started_at: dt.datetime | None = None,
) -> str:
    """Record a ``command`` run whose result ``df`` goes to ``table``; returns the run id."""
    with Store.open(db) as store:
        run = record_run(store, command, parameters or {}, list(parents))
        if started_at is not None:
            run.started_at = started_at
        with store.transaction():
            store.write_result(table, df, run.run_id)
            run.finish({"rows": df.height})
        return run.run_id


def write_sales(
    path: Path,
    weekly: dict[tuple[str, str], Sequence[int]],
    start: dt.date = dt.date(2024, 1, 1),
    price: float = 100.0,
) -> Path:
    """A sales CSV: one row per (item, market) and week with the given units."""
    lines = ["item_id,market,date,price,quantity"]
    for (item, market), units in weekly.items():
        for w, q in enumerate(units):
            lines.append(f"{item},{market},{start + dt.timedelta(weeks=w)},{price},{q}")
    path.write_text("\n".join(lines) + "\n")
    return path
