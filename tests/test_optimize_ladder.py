"""Ladders without a MILP: exact against exhaustive enumeration of every ladder combination."""

import itertools
import time
import warnings

import numpy as np
import polars as pl
import pytest

from pricelab.optimize import load_constraints, optimize
from pricelab.optimize.decompose import Responder
from pricelab.optimize.problem import build_problem
from pricelab.optimize.routes import candidate_milp
from tests._optimize_data import demand, profit

FX3 = ("US", "GB", "CH")


def _points(lo, hi, step, off):
    k = np.arange(np.ceil((lo - off) / step - 1e-9), np.floor((hi - off) / step + 1e-9) + 1)
    pts = k * step + off
    return pts[pts > 0]


def _brute(df, cons, step, off):
    """Best plan by enumerating every ladder combination of each item (items independent)."""
    prob = build_problem(df, load_constraints(cons))
    gap = cons.get("parity", {}).get("max_gap_pct")
    total = 0.0
    for item in np.unique(prob.item):
        rows = np.flatnonzero(prob.item == item)
        grids = [
            (
                np.array([prob.p0[i]])
                if prob.frozen[i]
                else _points(prob.lo[i], min(prob.hi[i], 3 * prob.p0[i]), step, off)
            )
            for i in rows
        ]
        best = -np.inf
        for combo in itertools.product(*grids):
            p = np.array(combo)
            b = p / prob.fx[rows]
            if gap is not None and b.max() > b.min() * (1 + gap / 100) * (1 + 1e-12):
                continue
            best = max(
                best,
                float(
                    (
                        prob.horizon
                        * (p - prob.cost[rows])
                        * prob.quantity(p, rows)
                        / prob.fx[rows]
                    ).sum()
                ),
            )
        total += best
    return total


CASES = [
    ({"step": 5}, 3.0),
    ({"ending": 0.99}, 4.0),
    ({"step": 10, "ending": 9}, 6.0),
    ({"step": 2.5}, 0.0),
    ({"step": 20}, 10.0),
]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ladder,gap", CASES)
def test_parity_ladder_matches_enumeration(seed, ladder, gap):
    df = demand(2, markets=FX3, seed=100 + seed, spread=0.08, e_range=(-4.0, -0.6))
    inc, dec = 6 + 3 * (seed % 4), 5 + 4 * (seed % 3)
    cons = {
        "bounds": {"max_increase_pct": inc, "max_decrease_pct": dec},
        "ladder": ladder,
        "parity": {"max_gap_pct": gap},
        "min_margin_pct": 20,
    }
    if seed % 3 == 2:
        cons["frozen"] = ["IT-1"]
    if seed % 2:
        cons["objective"] = "revenue"
    step, off = ladder.get("step", 1.0), ladder.get("ending", 0.0)
    best = _brute(df, cons, step, off)
    if not np.isfinite(best):
        with pytest.raises(Exception, match="parity|ladder"):
            optimize(df, cons)
        return
    plan = optimize(df, cons)
    assert plan.objective == pytest.approx(best, rel=1e-10, abs=1e-9)
    assert "ladder" in plan.formulation and plan.gap == 0.0
    # the candidate MILP over the same ladder agrees (second method)
    prob = build_problem(df, load_constraints(cons))
    res, _ = candidate_milp(
        prob, Responder(prob), risk=None, draws=None, seed=0, n_grid=25, time_limit=60
    )
    assert float(prob.objective_value(res.prices).sum()) == pytest.approx(best, rel=1e-7)


def test_ladder_without_parity_is_point_next_to_optimum_even_unbounded():
    df = demand(4, markets=("US", "GB"), seed=7)
    cons = {"ladder": {"step": 5}, "min_margin_pct": 10}
    plan = optimize(df, cons)
    p = plan.table["recommended_price"].to_numpy()
    e, c = df["elasticity"].to_numpy(), df["unit_cost"].to_numpy()
    pstar = np.maximum(c * e / (1 + e), c / 0.9)
    lo, hi = 5 * np.floor(pstar / 5), 5 * np.ceil(pstar / 5)
    lo = np.where(lo < c / 0.9, hi, lo)
    p0 = df["base_price"].to_numpy()

    def val(x):
        return (x - c[:, None]) * (x / p0[:, None]) ** e[:, None]

    expect = np.where(val(lo[:, None])[:, 0] >= val(hi[:, None])[:, 0], lo, hi)
    # brute force over every multiple of 5 up to 4x the optimum
    grid = 5.0 * np.arange(1, int(4 * pstar.max() / 5) + 2)
    vals = np.where(grid[None] >= c[:, None] / 0.9 - 1e-9, val(grid[None]), -np.inf)
    assert np.allclose(p, grid[np.argmax(vals, axis=1)]) and np.allclose(p, expect)
    assert plan.objective == pytest.approx(profit(df, p))


def test_ladder_parity_bench_shape_is_fast_and_exact():
    from benchmarks.bench_optimize import catalogue

    df = catalogue(1000, seed=2, price_range=(550, 700))
    cons = {
        "bounds": {"max_increase_pct": 17, "max_decrease_pct": 17},
        "min_margin_pct": 30,
        "parity": {"max_gap_pct": 5},
        "ladder": {"step": 10, "ending": 9},
    }
    t = time.perf_counter()
    plan = optimize(df, cons)
    assert time.perf_counter() - t < 20  # ~0.3 s measured; the MILP took 34 s
    assert plan.status == "optimal" and plan.gap == 0.0
    # the same items restricted to three markets, against exhaustive enumeration
    sub = df.filter(
        pl.col("item_id").is_in(["IT-0", "IT-1", "IT-2"])
        & pl.col("market").is_in(["US", "GB", "CH"])
    )
    assert optimize(sub, cons).objective == pytest.approx(_brute(sub, cons, 10, 9), rel=1e-10)


EDGE = {
    "unconstrained": None,
    "only max_increase": {"bounds": {"max_increase_pct": 10}},
    "only max_decrease": {"bounds": {"max_decrease_pct": 10}},
    "frozen": {"frozen": ["A"]},
    "ladder, no bounds": {"ladder": {"step": 5}},
    "ladder + parity, no bounds": {"ladder": {"ending": 0.99}, "parity": {"max_gap_pct": 5}},
    "volume floor, no bounds": {"min_volume_pct": 120},
    "avg change, no bounds": {"max_avg_change_pct": 5},
}


@pytest.mark.parametrize("name", list(EDGE))
def test_edge_cases_raise_no_warning(name):
    df = pl.DataFrame(
        {
            "item_id": ["A", "B", "A"],
            "market": ["US", "US", "GB"],
            "elasticity": [-2.0, -3.0, -2.5],
            "base_price": [100.0, 50.0, 90.0],
            "base_quantity": [10.0, 20.0, 5.0],
            "unit_cost": [40.0, 30.0, 35.0],
            "fx_rate": [1.0, 1.0, 0.9],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan = optimize(df, EDGE[name])
    p = plan.table["recommended_price"].to_numpy()
    assert np.isfinite(p).all() and (p > 0).all()
    assert plan.objective >= plan.baseline_objective - 1e-9
    if name == "unconstrained":
        assert np.allclose(p, [80.0, 45.0, 35 * 2.5 / 1.5])


def test_zero_stock_row_skipped_without_warning():
    df = pl.DataFrame(
        {
            "item_id": ["A", "B"],
            "market": ["US", "US"],
            "elasticity": [-2.0, -3.0],
            "base_price": [100.0, 50.0],
            "base_quantity": [10.0, 20.0],
            "unit_cost": [40.0, 30.0],
            "stock": [0.0, 1000.0],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan = optimize(df, {"inventory": True, "bounds": {"max_increase_pct": 10}})
    assert plan.table["item_id"].to_list() == ["B", "A"]
    assert plan.table["status"].to_list() == ["optimized", "skipped"]
    assert plan.skipped["reason"].to_list() == ["stock 0 under inventory: true (nothing to sell)"]
    assert plan.table["recommended_price"][0] == pytest.approx(45.0)
