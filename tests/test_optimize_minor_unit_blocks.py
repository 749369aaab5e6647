"""When no rounded plan of every coupled row exists at once, each independent block (an
item's markets under parity) is rounded on its own: only the item that cannot be rounded
keeps the solver's prices, the others are on their minor units, checked by brute force over
every pair of unit prices within the limits."""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl

from pricelab.optimize import optimize

#: item A cannot be rounded (tests/test_optimize_minor_unit_unrounded.py: a JPY/EUR pair
#: under parity 0.1% with limits +-0.37%); B, C, D can
ITEMS = {
    "A": (("US", 135.0, 1.1, "JPY"), ("DE", 122.098, 1.0, "EUR")),
    "B": (("US", 21.337, 1.1, "USD"), ("DE", 19.413, 1.0, "EUR")),
    "C": (("US", 33.071, 1.1, "USD"), ("DE", 30.052, 1.0, "EUR")),
    "D": (("GB", 17.119, 0.85, "GBP"), ("DE", 20.146, 1.0, "EUR")),
}
CONS = {
    "horizon_weeks": 4,
    "bounds": {"max_increase_pct": 0.37, "max_decrease_pct": 0.37},
    "parity": {"max_gap_pct": 0.1},
}


def _demand() -> pl.DataFrame:
    rows = []
    for item, markets in ITEMS.items():
        for market, p0, fx, cur in markets:
            rows.append(
                {
                    "item_id": item,
                    "market": market,
                    "elasticity": -2.0,
                    "base_price": p0,
                    "base_quantity": 10.0,
                    "unit_cost": 0.45 * p0,
                    "fx_rate": fx,
                    "currency": cur,
                }
            )
    return pl.DataFrame(rows)


def _best_rounded_pair(rows: pl.DataFrame) -> tuple[float, np.ndarray]:
    """Brute force: the best profit over every pair of unit prices within both rows' limits
    whose base prices fit one 0.1% band (-inf when none does)."""
    unit = {"JPY": 1.0}
    grids, args = [], []
    for r in rows.iter_rows(named=True):
        u = unit.get(r["currency"], 0.01)
        lo, hi = r["base_price"] * (1 - 0.0037), r["base_price"] * 1.0037
        grids.append(np.arange(np.ceil(lo / u - 1e-9), np.floor(hi / u + 1e-9) + 1) * u)
        args.append(r)
    best, arg = -np.inf, None
    for pair in itertools.product(*grids):
        b = [p / r["fx_rate"] for p, r in zip(pair, args, strict=True)]
        if max(b) > 1.001 * min(b) * (1 + 1e-12):
            continue
        v = sum(
            4 * (p - r["unit_cost"]) * 10.0 * (p / r["base_price"]) ** -2.0 / r["fx_rate"]
            for p, r in zip(pair, args, strict=True)
        )
        if v > best:
            best, arg = v, np.array(pair)
    return best, arg


def test_only_the_block_that_cannot_be_rounded_keeps_the_solvers_prices() -> None:
    demand = _demand()
    plan = optimize(demand, CONS)
    t = plan.table.join(demand, on=["item_id", "market"])
    kept = [(r["item_id"], r["market"]) for r in plan.to_dict()["unrounded"]]
    assert kept == [("A", "DE"), ("A", "US")] or kept == [("A", "US"), ("A", "DE")]
    for item in ITEMS:
        rows = t.filter(pl.col("item_id") == item)
        p = rows["recommended_price"].to_numpy()
        # every price within its limits and the item's band (rounded or not)
        p0 = rows["base_price"].to_numpy()
        assert (p >= p0 * (1 - 0.0037) - 1e-9).all() and (p <= p0 * 1.0037 + 1e-9).all()
        b = p / rows["fx_rate"].to_numpy()
        assert b.max() <= 1.001 * b.min() * (1 + 1e-9)
        best, arg = _best_rounded_pair(rows)
        if item == "A":
            assert arg is None  # no rounded pair exists
            continue
        units = np.where(rows["currency"].to_numpy() == "JPY", 1.0, 0.01)
        assert np.allclose(np.round(p / units) * units, p, rtol=0, atol=1e-9)  # on the unit
        c, fx = rows["unit_cost"].to_numpy(), rows["fx_rate"].to_numpy()
        got = float((4 * (p - c) * 10.0 * (p / p0) ** -2.0 / fx).sum())
        assert got <= best * (1 + 1e-12)
        assert got >= best * (1 - 1e-5)  # the rounding search's tolerance (LOSS_TOL)
    assert "2 row(s) not on their currency's minor unit" in plan.summary


def test_a_joint_rounding_stopped_by_its_node_limit_falls_back_to_blocks(monkeypatch) -> None:
    """The joint search stopping without a plan (SolverError: node limit) rounds block by
    block as well, instead of failing the plan: the same rows are rounded."""
    from pricelab.errors import SolverError
    from pricelab.optimize import minor_unit

    real = minor_unit._search
    calls = []

    def stopped(prob, *a, **kw):
        calls.append(prob.n)
        if prob.n == 8:  # the joint search over every item
            raise SolverError("HiGHS MILP failed: node limit reached")
        return real(prob, *a, **kw)

    monkeypatch.setattr(minor_unit, "_search", stopped)
    plan = optimize(_demand(), CONS)
    assert calls[0] == 8 and max(calls[1:]) == 2  # then one item at a time
    assert sorted(r["item_id"] for r in plan.to_dict()["unrounded"]) == ["A", "A"]
    p = plan.table.filter(pl.col("item_id") != "A")["recommended_price"].to_numpy()
    assert np.allclose(np.round(p * 100) / 100, p, rtol=0, atol=1e-9)
