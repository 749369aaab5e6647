"""Ladders with volume floors / stock pools by Lagrangian relaxation, against brute force
and against the candidate MILP: the plan is feasible and within its reported gap."""

import itertools

import numpy as np
import polars as pl
import pytest

from pricelab.optimize import load_constraints, optimize
from pricelab.optimize.decompose import Responder
from pricelab.optimize.ladder import best_on_ladder
from pricelab.optimize.links import StockPool, VolumeFloor
from pricelab.optimize.problem import build_problem
from pricelab.optimize.routes import candidate_milp
from tests._optimize_data import demand

FX3 = ("US", "GB", "CH")


def _points(lo, hi, step):
    k = np.arange(np.ceil(lo / step - 1e-9), np.floor(hi / step + 1e-9) + 1)
    return k[k > 0] * step


def _brute(prob, step):
    """Best objective over every ladder combination, every constraint checked."""
    grids = [_points(prob.lo[i], prob.hi[i], step) for i in range(prob.n)]
    P = np.array(list(itertools.product(*grids)))
    val = prob.objective_value(P.T).sum(axis=0)
    Q = prob.quantity(P.T)
    ok = np.ones(P.shape[0], dtype=bool)
    for lk in prob.links:
        u = Q[lk.rows].sum(axis=0)
        if isinstance(lk, VolumeFloor):
            ok &= u >= lk.value / 100 * prob.q0[lk.rows].sum() * (1 - 1e-12)
        else:
            ok &= prob.horizon * u <= lk.value * (1 + 1e-12)
    if (~np.isnan(prob.parity_gap)).any():
        for it in np.unique(prob.item):
            r = np.flatnonzero(prob.item == it)
            b = P[:, r] / prob.fx[r]
            ok &= b.max(axis=1) <= b.min(axis=1) * (1 + prob.parity_gap[r[0]]) * (1 + 1e-12)
    return float(val[ok].max()) if ok.any() else -np.inf


def _check(plan, prob, step):
    p = plan.table["recommended_price"].to_numpy()
    assert np.allclose(np.round(p / step) * step, p, rtol=0, atol=1e-9)
    assert (p >= prob.lo * (1 - 1e-9)).all() and (p <= prob.hi * (1 + 1e-9)).all()
    q = prob.quantity(p)
    for lk in prob.links:
        if isinstance(lk, VolumeFloor):
            assert q[lk.rows].sum() >= lk.value / 100 * prob.q0[lk.rows].sum() * (1 - 1e-6)
        else:
            assert prob.horizon * q[lk.rows].sum() <= lk.value * (1 + 1e-6)


def _floor_pct(df, cons, rows, frac):
    """A floor between the unconstrained plan's volume and the most the ladder can sell."""
    base = {k: v for k, v in cons.items() if k not in ("min_volume_pct", "overrides")}
    prob = build_problem(df, load_constraints(base))
    p = optimize(df, base).table["recommended_price"].to_numpy()
    low = np.ceil(prob.lo / 5.0 - 1e-9) * 5.0
    r0 = prob.quantity(p)[rows].sum() / prob.q0[rows].sum()
    r1 = prob.quantity(low)[rows].sum() / prob.q0[rows].sum()
    return float(np.floor(1e5 * (r0 + frac * (r1 - r0))) / 1e3)


CASES = ["floor", "floor revenue", "floor + parity", "two floors"]


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("name", CASES)
def test_matches_brute_force_and_milp(seed, name):
    df = demand(2, markets=FX3, seed=300 + seed, spread=0.05, e_range=(-3.5, -0.6))
    cons = {
        "bounds": {"max_increase_pct": 10, "max_decrease_pct": 12},
        "ladder": {"step": 5},
        "horizon_weeks": 2,
    }
    if name == "floor revenue":
        cons["objective"] = "revenue"
    if name == "floor + parity":
        cons["parity"] = {"max_gap_pct": 6}
    us = (df["market"] == "US").to_numpy()
    if name == "two floors":
        cons["overrides"] = [
            {"where": {"market": ["US"]}, "min_volume_pct": _floor_pct(df, cons, us, 0.5)},
            {
                "where": {"market": ["GB", "CH"]},
                "min_volume_pct": _floor_pct(df, cons, ~us, 0.3 + 0.2 * (seed % 2)),
            },
        ]
    else:
        cons["min_volume_pct"] = _floor_pct(df, cons, np.ones(us.size, bool), 0.15 + 0.15 * seed)
    prob = build_problem(df, load_constraints(cons))
    best = _brute(prob, 5.0)
    if not np.isfinite(best):
        with pytest.raises(Exception, match="infeasible"):
            optimize(df, cons)
        return
    plan = optimize(df, cons)
    _check(plan, prob, 5.0)
    # never better than the true optimum, and within the reported (proven) gap of it
    assert plan.objective <= best * (1 + 1e-12)
    assert best <= plan.objective + plan.gap * abs(plan.objective) + 1e-9
    if plan.extra["path"] == "lagrangian":
        assert plan.gap <= 1e-3 and "Lagrangian" in plan.formulation
    else:
        assert "candidate MILP" in plan.formulation
        assert plan.objective == pytest.approx(best, rel=1e-5)
    res, _ = candidate_milp(
        prob, Responder(prob), risk=None, draws=None, seed=0, n_grid=25, time_limit=60
    )
    milp_obj = float(prob.objective_value(res.prices).sum())
    assert abs(milp_obj - plan.objective) <= (plan.gap + 1e-5) * abs(plan.objective)


def test_stock_pool_with_ladder():
    df = demand(3, markets=("US", "GB"), seed=5, e_range=(-3.0, -1.5))
    q0 = df["base_quantity"].to_numpy()
    df = df.with_columns(
        pl.lit("P1").alias("stock_pool"), pl.lit(float(2 * 0.8 * q0.sum())).alias("stock")
    )
    cons = {
        "bounds": {"max_increase_pct": 25, "max_decrease_pct": 25},
        "ladder": {"step": 5},
        "inventory": True,
        "horizon_weeks": 2,
    }
    prob = build_problem(df, load_constraints(cons))
    assert [type(lk) for lk in prob.links] == [StockPool]
    plan = optimize(df, cons)
    _check(plan, prob, 5.0)
    best = _brute(prob, 5.0)
    assert plan.extra["path"] == "lagrangian"
    assert plan.objective <= best * (1 + 1e-12) <= (plan.objective * (1 + plan.gap)) * (1 + 1e-12)
    assert next(iter(plan.multipliers.values())) > 0  # the pool binds


def test_large_gap_falls_back_to_milp():
    # six rows on a coarse ladder: the floor forces a whole step, the dual gap is > 0.1%
    df = demand(2, markets=FX3, seed=300, spread=0.05, e_range=(-3.5, -0.6))
    cons = {
        "bounds": {"max_increase_pct": 10, "max_decrease_pct": 12},
        "ladder": {"step": 5},
        "horizon_weeks": 2,
    }
    cons["min_volume_pct"] = _floor_pct(df, cons, np.ones(df.height, bool), 0.15)
    plan = optimize(df, cons)
    prob = build_problem(df, load_constraints(cons))
    assert plan.objective == pytest.approx(_brute(prob, 5.0), rel=1e-5)
    assert plan.extra["path"] == "milp"
    assert "Lagrangian gap" in plan.formulation and plan.extra["lagrangian_gap"] > 1e-3


@pytest.mark.parametrize("seed", range(5))
def test_best_on_ladder_exact_for_negative_cost(seed):
    """k < 0 with -1 < e < 0 (quasi-convex g): brute force over the ladder."""
    rng = np.random.default_rng(seed)
    n = 50
    e = rng.uniform(-0.95, -0.05, n)
    k = -rng.uniform(1, 200, n)
    p0, q0 = rng.uniform(50, 150, n), rng.uniform(1, 10, n)
    lo, hi = p0 * rng.uniform(0.5, 0.95, n), p0 * rng.uniform(1.05, 1.6, n)
    p, v = best_on_ladder(lo, hi, k, p0, q0, e, np.full(n, 2.5), np.zeros(n))
    for i in range(n):
        g = _points(lo[i], hi[i], 2.5)
        vals = (g - k[i]) * q0[i] * (g / p0[i]) ** e[i]
        assert v[i] == pytest.approx(vals.max(), rel=1e-12)
        assert p[i] == pytest.approx(g[np.argmax(vals)])
