"""Every plan a user gets is on its currency's minor unit: the expected-profit plan
(``--expected``), the CVaR plan (``--risk``) and the cross route, each still meeting every
constraint after rounding (the CVaR floor included)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from pricelab.demand.curves import CrossElasticity
from pricelab.demand.draws import elasticity_draws
from pricelab.optimize import optimize
from pricelab.optimize.cross import optimize_cross
from pricelab.optimize.minor_unit import decimals
from tests._cross_cases import category
from tests._optimize_data import demand
from tests.test_optimize_properties import _violations

CUR = {"US": "JPY", "GB": "GBP", "DE": "KWD", "CH": "CHF"}
CONS = {
    "bounds": {"max_increase_pct": 13.7, "max_decrease_pct": 11.1},
    "min_margin_pct": 20,
    "parity": {"max_gap_pct": 6},
}


def _on_grid(t: pl.DataFrame, df: pl.DataFrame) -> np.ndarray:
    """Rows whose price is on their currency's unit or at the current price."""
    j = t.join(df.select("item_id", "market", "currency"), on=["item_id", "market"])
    p = j["recommended_price"].to_numpy()
    k = p * 10.0 ** np.array([decimals(c) for c in j["currency"].to_list()])
    return (np.abs(k - np.round(k)) <= 1e-6) | (p == j["current_price"].to_numpy())


def _prices(df: pl.DataFrame, t: pl.DataFrame) -> np.ndarray:
    o = df.join(t.select("item_id", "market", "recommended_price"), on=["item_id", "market"])
    return o["recommended_price"].to_numpy()


def _df() -> pl.DataFrame:
    d = demand(3, seed=11, spread=0.06)
    return d.with_columns(pl.col("market").replace_strict(CUR).alias("currency"))


def test_expected_profit_plan_is_on_minor_units_and_meets_every_constraint() -> None:
    df = _df()
    plan = optimize(df, CONS, expected=True, draws=300, seed=3)
    assert _on_grid(plan.table, df).all()
    moved = plan.table["recommended_price"] != plan.table["current_price"]
    assert moved.sum() >= 6  # not a plan that only keeps current prices
    assert _violations(df, _prices(df, plan.table), CONS) == []
    assert "unrounded_rows" not in plan.extra


@pytest.mark.parametrize("alpha", [0.05, 0.2])
def test_cvar_plan_is_on_minor_units_and_keeps_its_cvar_floor(alpha: float) -> None:
    df = _df()
    plan = optimize(df, CONS, risk=f"cvar:{alpha}", draws=300, seed=3)
    assert _on_grid(plan.table, df).all()
    p = _prices(df, plan.table)
    assert _violations(df, p, CONS) == []
    # the floor, recomputed here: CVaR_alpha of total profit over the same draws >= baseline's
    e = df["elasticity"].to_numpy()
    E = elasticity_draws(e, df["std_error"].to_numpy(), 300, seed=3)
    p0, q0, c, fx = (
        df[x].to_numpy() for x in ("base_price", "base_quantity", "unit_cost", "fx_rate")
    )

    def cvar(price: np.ndarray) -> float:
        tot = ((price - c) * q0 * (price / p0) ** E / fx).sum(axis=1) * 4
        k = int(np.ceil(alpha * tot.size))
        return float(np.sort(tot)[:k].mean())

    assert cvar(p) >= cvar(p0) * (1 - 1e-9)


def test_cross_plan_is_on_minor_units_and_meets_every_constraint() -> None:
    d, cross = category(markets=("US", "DE"), seed=5)
    d = d.with_columns(
        pl.col("market").replace_strict(CUR).alias("currency"),
        fx_rate=pl.col("market").replace_strict({"US": 150.0, "GB": 0.86, "DE": 0.31}),
        base_price=pl.col("base_price")
        * pl.col("market").replace_strict({"US": 150.0, "GB": 0.86, "DE": 0.31}),
        unit_cost=pl.col("unit_cost")
        * pl.col("market").replace_strict({"US": 150.0, "GB": 0.86, "DE": 0.31}),
    )
    cons = {
        "horizon_weeks": 4,
        "bounds": {"max_increase_pct": 23.3, "max_decrease_pct": 17.7},
        "min_margin_pct": 15,
        "parity": {"max_gap_pct": 8},
        "min_volume_pct": 90,
    }
    plan = optimize_cross(d, cross, cons, n_grid=5)  # 5^3 combinations a block: fast
    t = plan.table
    assert _on_grid(t, d).all()
    p = _prices(d, t)
    assert (p != d["base_price"].to_numpy()).sum() >= 4
    bad = [v for v in _violations(d, p, cons) if v != "min_volume_pct"]
    assert bad == []
    q = CrossElasticity.from_tables(d, cross).quantity(p)  # the volume floor on cross units
    assert q.sum() >= 0.9 * d["base_quantity"].sum() * (1 - 1e-9)
    yen = t.filter(pl.col("market") == "US")["recommended_price"].to_numpy()
    assert (yen == np.round(yen)).all()
