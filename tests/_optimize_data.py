"""Synthetic demand tables for the optimizer tests (known truth: constant elasticity)."""

from __future__ import annotations

import numpy as np
import polars as pl

MARKETS = ("US", "GB", "DE", "CH")
FX = {"US": 1.1, "GB": 0.85, "DE": 1.0, "CH": 1.3}


def demand(
    n_items: int = 3, markets=MARKETS, seed: int = 0, e_range=(-3.5, -1.3), spread: float = 0.03
) -> pl.DataFrame:
    """Items priced near-consistently across markets (base currency), costs in market currency."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_items):
        base = rng.uniform(80, 200)
        cost = rng.uniform(0.25, 0.45) * base
        for m in markets:
            fx = FX[m]
            rows.append(
                {
                    "item_id": f"IT-{i}",
                    "market": m,
                    "elasticity": rng.uniform(*e_range),
                    "base_price": base * fx * rng.uniform(1 - spread, 1 + spread),
                    "base_quantity": rng.uniform(1, 20),
                    "unit_cost": cost * fx,
                    "fx_rate": fx,
                    "category": "bags" if i % 2 else "shoes",
                    "std_error": 0.2,
                }
            )
    return pl.DataFrame(rows)


def profit(df: pl.DataFrame, prices: np.ndarray, weeks: float = 1.0) -> float:
    """Total profit in base currency at ``prices``."""
    e, p0, q0 = (df[c].to_numpy() for c in ("elasticity", "base_price", "base_quantity"))
    c, fx = df["unit_cost"].to_numpy(), df["fx_rate"].to_numpy()
    return float((weeks * (prices - c) * q0 * (prices / p0) ** e / fx).sum())
