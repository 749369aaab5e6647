"""Rows that cannot be put on their currency's minor unit keep the solver's price, and the
plan says which and why (``unrounded`` in the JSON document, a summary line)."""

from __future__ import annotations

import numpy as np
import polars as pl

from pricelab.optimize import optimize


def test_no_unit_inside_a_rows_limits_is_named() -> None:
    df = pl.DataFrame(
        {
            "item_id": ["A", "B"],
            "market": ["DE", "DE"],
            "elasticity": [-2.3, -2.0],
            "base_price": [10.004, 20.0],
            "base_quantity": [10.0, 5.0],
            "unit_cost": [5.0, 8.0],
            "currency": ["EUR", "EUR"],
        }
    )
    plan = optimize(df, {"bounds": {"max_increase_pct": 0.01, "max_decrease_pct": 0.01}})
    p = plan.table["recommended_price"].to_numpy()
    assert 10.004 * 0.9999 - 1e-9 <= p[0] <= 10.004 * 1.0001 + 1e-9  # within A's limits
    assert p[1] == 20.0  # B is on its cent
    why = "no multiple of its minor unit (0.01 EUR) between its limits 10.003 and 10.005"
    assert plan.extra["unrounded_rows"] == 1
    assert plan.to_dict()["unrounded"] == [
        {"item_id": "A", "market": "DE", "reason": f"{why}: the solver's price is kept"}
    ]
    assert f"1 row(s) not on their currency's minor unit: A/DE: {why}" in plan.summary


def test_parity_no_rounded_pair_can_meet_is_named_for_both_rows() -> None:
    """One item in JPY and EUR, parity 0.1%, limits +-0.37%: the yen row can only be 135
    (122.73 in base currency), which puts the euro row at 122.61 or more, above its cap
    (122.55). Brute force: no pair of unit prices meets both limits and the band; the plan
    keeps the solver's prices (which meet them) and says why for both rows."""
    df = pl.DataFrame(
        {
            "item_id": ["A", "A"],
            "market": ["US", "DE"],
            "elasticity": [-2.0, -2.0],
            "base_price": [135.0, 122.098],
            "base_quantity": [10.0, 10.0],
            "unit_cost": [60.0, 50.0],
            "fx_rate": [1.1, 1.0],
            "currency": ["JPY", "EUR"],
        }
    )
    cons = {
        "bounds": {"max_increase_pct": 0.37, "max_decrease_pct": 0.37},
        "parity": {"max_gap_pct": 0.1},
    }
    lo, hi = df["base_price"].to_numpy() * (1 - 0.0037), df["base_price"].to_numpy() * 1.0037
    yen = np.arange(np.ceil(lo[0]), np.floor(hi[0]) + 1)
    cents = np.arange(np.ceil(lo[1] * 100), np.floor(hi[1] * 100) + 1) / 100
    y, c = np.meshgrid(yen / 1.1, cents, indexing="ij")
    assert len(yen) == 1 and not (np.maximum(y, c) <= 1.001 * np.minimum(y, c)).any()
    plan = optimize(df, cons)
    p = plan.table["recommended_price"].to_numpy()
    b = p / np.array([1.1, 1.0])
    assert b.max() <= 1.001 * b.min() * (1 + 1e-9) and (p >= lo - 1e-9).all()
    assert (p <= hi + 1e-9).all()
    rows = plan.to_dict()["unrounded"]
    assert [(r["item_id"], r["market"]) for r in rows] == [("A", "US"), ("A", "DE")]
    assert all(r["reason"].startswith("no prices on the minor units near the plan") for r in rows)
    assert "2 row(s) not on their currency's minor unit: A/US: no prices" in plan.summary
