import itertools

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pricelab.errors import InfeasibleError
from pricelab.optimize import optimize
from tests._optimize_data import demand, profit

B = {"bounds": {"max_increase_pct": 20, "max_decrease_pct": 20}}


def _grid_best(df, grids, ok):
    best = -np.inf
    for combo in itertools.product(*grids):
        p = np.array(combo)
        if ok(p):
            best = max(best, profit(df, p))
    return best


def test_parity_three_markets_fx_matches_brute_force():
    df = demand(1, markets=("US", "GB", "CH"), seed=21, spread=0.15)
    plan = optimize(df, {**B, "parity": {"max_gap_pct": 3}})
    p0, fx = df["base_price"].to_numpy(), df["fx_rate"].to_numpy()
    grids = [np.linspace(0.8 * a, 1.2 * a, 161) for a in p0]
    P = np.stack(np.meshgrid(*grids, indexing="ij"), -1).reshape(-1, 3)
    b = P / fx
    ok = b.max(1) <= 1.03 * b.min(1)
    e, q0, c = (df[x].to_numpy() for x in ("elasticity", "base_quantity", "unit_cost"))
    vals = ((P - c) * q0 * (P / p0) ** e / fx).sum(1)
    grid_best = vals[ok].max()
    bp = plan.table["recommended_price"].to_numpy() / fx
    assert bp.max() <= 1.03 * bp.min() * (1 + 1e-9)
    assert plan.objective >= grid_best - 1e-9
    assert plan.objective - grid_best <= 2e-3 * abs(grid_best)
    assert "parity" in plan.binding_counts()


@pytest.mark.parametrize("ladder", [{"step": 5}, {"ending": 0.99}, {"step": 10, "ending": 9}])
def test_ladder_with_parity_matches_enumeration(ladder):
    df = demand(1, markets=("US", "GB", "DE"), seed=22, spread=0.1)
    cons = {
        "bounds": {"max_increase_pct": 8, "max_decrease_pct": 8},
        "ladder": ladder,
        "parity": {"max_gap_pct": 4},
    }
    plan = optimize(df, cons)
    p0, fx = df["base_price"].to_numpy(), df["fx_rate"].to_numpy()
    sp = ladder.get("step", 1.0)
    off = ladder.get("ending", 0.0)
    grids = [
        [
            k * sp + off
            for k in range(int(0.9 * a / sp) - 1, int(1.1 * a / sp) + 2)
            if 0.92 * a - 1e-9 <= k * sp + off <= 1.08 * a + 1e-9
        ]
        for a in p0
    ]
    best = _grid_best(df, grids, lambda p: (p / fx).max() <= 1.04 * (p / fx).min() + 1e-12)
    rec = plan.table["recommended_price"].to_numpy()
    assert all(
        np.isclose(((r - off) / sp) % 1, 0, atol=1e-9)
        or np.isclose(((r - off) / sp) % 1, 1, atol=1e-9)
        for r in rec
    )
    assert np.isclose(plan.objective, best, rtol=1e-9)
    assert plan.gap <= 1e-3 and "ladder" in plan.formulation


def test_volume_floor_with_ladder_matches_enumeration():
    df = demand(1, markets=("US", "GB", "DE"), seed=23)
    cons = {**B, "ladder": {"step": 5}, "min_volume_pct": 130}
    plan = optimize(df, cons)
    p0, q0, e = (df[x].to_numpy() for x in ("base_price", "base_quantity", "elasticity"))
    grids = [[5 * k for k in range(1, 200) if 0.8 * a <= 5 * k <= 1.2 * a] for a in p0]
    best = _grid_best(df, grids, lambda p: (q0 * (p / p0) ** e).sum() >= 1.3 * q0.sum())
    assert np.isclose(plan.objective, best, rtol=1e-9)


def test_infeasible_names_rows_and_numbers():
    df = pl.DataFrame(
        {
            "item_id": ["IT-7", "IT-8"],
            "market": ["JP", "JP"],
            "elasticity": [-2.0, -2.0],
            "base_price": [180.0, 100.0],
            "base_quantity": [5.0, 5.0],
            "unit_cost": [126.0, 30.0],
        }
    )
    with pytest.raises(InfeasibleError) as exc:
        optimize(df, {"bounds": {"max_increase_pct": 10}, "min_margin_pct": 40})
    assert (
        "IT-7/JP: min_margin_pct 40 needs price >= 210.00 but max_increase_pct 10 caps it at 198.00"
    ) in str(exc.value)
    assert "IT-8" not in str(exc.value)


def test_infeasible_parity_and_volume_named():
    df = demand(1, markets=("US", "GB"), seed=24).with_columns(
        pl.Series("base_price", [110.0, 120.0])
    )
    with pytest.raises(InfeasibleError, match=r"IT-0: parity max_gap_pct 2: .*needs base price"):
        optimize(
            df,
            {
                "bounds": {"max_increase_pct": 5, "max_decrease_pct": 5},
                "parity": {"max_gap_pct": 2},
            },
        )
    with pytest.raises(InfeasibleError, match=r"min_volume_pct 300 \(all rows\) needs"):
        optimize(df, {**B, "min_volume_pct": 300})
    with pytest.raises(InfeasibleError, match=r"min_volume_pct 150 \(all rows\) cannot be met"):
        optimize(df, {**B, "min_volume_pct": 150, "max_avg_change_pct": 1})


def _feasible(plan, df, cons):
    t = plan.table
    p, p0 = t["recommended_price"].to_numpy(), t["current_price"].to_numpy()
    c = df["unit_cost"].to_numpy()
    b = cons["bounds"]
    assert (p <= p0 * (1 + b["max_increase_pct"] / 100) * (1 + 1e-6)).all()
    assert (p >= p0 * (1 - b["max_decrease_pct"] / 100) * (1 - 1e-6)).all()
    assert ((p - c) / p >= cons["min_margin_pct"] / 100 - 1e-6).all()
    if "parity" in cons:
        bp = (
            t.with_columns((pl.col("recommended_price") / pl.col("fx_rate")).alias("b"))
            .group_by("item_id")
            .agg(pl.col("b").min().alias("lo"), pl.col("b").max().alias("hi"))
        )
        g = cons["parity"]["max_gap_pct"] / 100
        assert (bp["hi"] <= bp["lo"] * (1 + g) * (1 + 1e-6)).all()
    if "min_volume_pct" in cons:
        assert t["expected_quantity"].sum() >= cons["min_volume_pct"] / 100 * t[
            "baseline_quantity"
        ].sum() * (1 - 1e-6)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    inc=st.floats(1, 30),
    dec=st.floats(1, 30),
    margin=st.floats(0, 40),
    gap=st.one_of(st.none(), st.floats(0, 15)),
    vol=st.one_of(st.none(), st.floats(50, 120)),
    ladder=st.booleans(),
)
def test_random_problems_feasible_and_no_worse_than_baseline(
    seed, inc, dec, margin, gap, vol, ladder
):
    df = demand(3, seed=seed, spread=0.0, e_range=(-4.0, -0.5))
    cons = {"bounds": {"max_increase_pct": inc, "max_decrease_pct": dec}, "min_margin_pct": margin}
    if gap is not None:
        cons["parity"] = {"max_gap_pct": gap}
    if vol is not None:
        cons["min_volume_pct"] = vol
    if ladder:
        cons["ladder"] = {"step": 0.5}
    try:
        plan = optimize(df, cons)
    except InfeasibleError:
        c, p0 = df["unit_cost"].to_numpy(), df["base_price"].to_numpy()
        lo = np.maximum(p0 * (1 - dec / 100), c / (1 - margin / 100))
        assert (lo > p0 * (1 + inc / 100)).any() or vol is not None or ladder
        return
    _feasible(plan, df, cons)
    base_ok = ((df["base_price"] - df["unit_cost"]) / df["base_price"] >= margin / 100).all()
    if base_ok and not ladder:
        assert plan.objective >= plan.baseline_objective * (1 - 1e-9) - 1e-9
