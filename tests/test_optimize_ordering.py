"""Good-better-best ordering: candidate MILP against exhaustive enumeration."""

import itertools

import numpy as np
import polars as pl
import pytest

from pricelab.errors import ConfigError, InfeasibleError
from pricelab.optimize import load_constraints, loads_constraints, optimize
from pricelab.optimize.problem import build_problem

ITEMS = ["BAG-S", "BAG-M", "BAG-L"]


def _frame(seed: int, markets=("US", "GB")) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    fx = {"US": 1.1, "GB": 0.85, "CH": 1.3}
    rows = []
    for j, it in enumerate(ITEMS):
        base = rng.uniform(90, 130) * (1 + 0.04 * j)
        for m in markets:
            rows.append(
                {
                    "item_id": it,
                    "market": m,
                    "elasticity": rng.uniform(-4, -1.3),
                    "base_price": base * fx[m] * rng.uniform(0.95, 1.05),
                    "base_quantity": rng.uniform(1, 20),
                    "unit_cost": rng.uniform(0.3, 0.5) * base * fx[m],
                    "fx_rate": fx[m],
                }
            )
    return pl.DataFrame(rows)


def _brute(df: pl.DataFrame, cons: dict, step: float) -> float:
    prob = build_problem(df, load_constraints(cons))
    grids = []
    for i in range(prob.n):
        k = np.arange(np.ceil(prob.lo[i] / step - 1e-9), np.floor(prob.hi[i] / step + 1e-9) + 1)
        grids.append(k * step)
    P = np.array(list(itertools.product(*grids)))  # (combos, n)
    ok = np.ones(len(P), dtype=bool)
    for lower, upper, f, _ in prob.ordering:
        ok &= (P[:, upper] >= f * P[:, lower] * (1 - 1e-12)).all(axis=1)
    gap = cons.get("parity", {}).get("max_gap_pct")
    if gap is not None:
        for it in ITEMS:
            r = np.flatnonzero(prob.item == it)
            b = P[:, r] / prob.fx[r]
            ok &= b.max(axis=1) <= b.min(axis=1) * (1 + gap / 100) * (1 + 1e-12)
    vals = (prob.horizon * (P - prob.cost) * prob.q0 * (P / prob.p0) ** prob.e / prob.fx).sum(1)
    return float(vals[ok].max()) if ok.any() else -np.inf


@pytest.mark.parametrize("seed", range(8))
def test_ordering_with_ladder_matches_enumeration(seed):
    df = _frame(seed)
    cons = {
        "bounds": {"max_increase_pct": 15, "max_decrease_pct": 15},
        "ladder": {"step": 5},
        "ordering": [{"items": ITEMS, "min_step_pct": 3 + seed}],
        "horizon_weeks": 4,
    }
    if seed % 2:
        cons["parity"] = {"max_gap_pct": 6}
    best = _brute(df, cons, 5.0)
    if not np.isfinite(best):
        with pytest.raises(InfeasibleError, match="ordering|parity"):
            optimize(df, cons)
        return
    plan = optimize(df, cons)
    assert plan.objective == pytest.approx(best, rel=1e-9)
    assert "ordering" in plan.formulation and plan.gap <= 1e-4
    t = plan.table
    for m in ("US", "GB"):
        p = [
            t.filter((pl.col("item_id") == it) & (pl.col("market") == m))["recommended_price"][0]
            for it in ITEMS
        ]
        step = 1 + (3 + seed) / 100
        assert p[1] >= step * p[0] * (1 - 1e-9) and p[2] >= step * p[1] * (1 - 1e-9)


def test_ordering_binds_and_holds_without_ladder():
    df = _frame(3)
    # reverse the natural order: the constraint must bind
    cons = {
        "bounds": {"max_increase_pct": 30, "max_decrease_pct": 30},
        "ordering": [{"items": ITEMS[::-1], "min_step_pct": 5}],
    }
    plan = optimize(df, cons)
    t = plan.table
    for m in ("US", "GB"):
        p = [
            t.filter((pl.col("item_id") == it) & (pl.col("market") == m))["recommended_price"][0]
            for it in ITEMS[::-1]
        ]
        assert p[1] >= 1.05 * p[0] * (1 - 1e-9) and p[2] >= 1.05 * p[1] * (1 - 1e-9)
    assert "ordering" in plan.binding_counts()
    free = optimize(df, {"bounds": cons["bounds"]})
    assert plan.objective <= free.objective + 1e-9


def test_ordering_market_missing_item_pairs_neighbours():
    df = _frame(1).filter(~((pl.col("item_id") == "BAG-M") & (pl.col("market") == "GB")))
    prob = build_problem(df, load_constraints({"ordering": [{"items": ITEMS}]}))
    ((lower, upper, f, name),) = prob.ordering
    pairs = {(prob.label(a), prob.label(b)) for a, b in zip(lower, upper, strict=True)}
    assert pairs == {("BAG-S/US", "BAG-M/US"), ("BAG-M/US", "BAG-L/US"), ("BAG-S/GB", "BAG-L/GB")}
    assert f == 1.0 and name == "ordering BAG-S < BAG-M < BAG-L (min_step_pct 0)"


def test_unknown_ordering_ids_named():
    text = "ordering:\n  - items: [BAG-S, BAG-XL, BAG-M, BAG-XXL]\n    min_step_pct: 5\n"
    with pytest.raises(
        ConfigError,
        match=r"line 2: ordering: unknown item id\(s\) BAG-XL, "
        r"BAG-XXL",
    ):
        optimize(_frame(0), loads_constraints(text))


def test_ordering_yaml_errors():
    with pytest.raises(ConfigError, match=r"ordering.0.itms.*did you mean 'items'"):
        loads_constraints("ordering:\n  - itms: [A, B]\n")
    with pytest.raises(ConfigError, match="at least two item ids"):
        loads_constraints("ordering:\n  - items: [A]\n")
    with pytest.raises(ConfigError, match="min_step_pct: must be >= 0"):
        loads_constraints("ordering:\n  - {items: [A, B], min_step_pct: -3}\n")
    with pytest.raises(ConfigError, match="ordering: expected a list"):
        loads_constraints("ordering: {items: [A, B]}\n")


def test_ordering_infeasible_names_rows_and_numbers():
    df = _frame(2)
    cons = {
        "bounds": {"max_increase_pct": 2, "max_decrease_pct": 2},
        "ordering": [{"items": ITEMS[::-1], "min_step_pct": 10}],
    }
    with pytest.raises(
        InfeasibleError,
        match=r"ordering BAG-L < BAG-M < BAG-S \(min_step_pct "
        r"10\): BAG-M/\w+ needs price >= [\d.]+ \(1.1 x "
        r"BAG-L/\w+ at >= [\d.]+\) but max_increase_pct",
    ):
        optimize(df, cons)


def test_ordering_continuous_rows_near_fine_grid_optimum():
    """Free rows are solved on candidates (grid + tight points): close to a fine brute force."""
    df = _frame(5)
    cons = {
        "bounds": {"max_increase_pct": 25, "max_decrease_pct": 25},
        "ordering": [{"items": ITEMS[::-1], "min_step_pct": 4}],
    }
    plan = optimize(df, cons)
    prob = build_problem(df, load_constraints(cons))
    best = 0.0
    for m in ("US", "GB"):
        r = [int(np.flatnonzero((prob.item == it) & (prob.market == m))[0]) for it in ITEMS[::-1]]
        g = [np.linspace(prob.lo[i], prob.hi[i], 121) for i in r]
        P = np.stack(np.meshgrid(*g, indexing="ij"), -1).reshape(-1, 3)
        ok = (P[:, 1] >= 1.04 * P[:, 0]) & (P[:, 2] >= 1.04 * P[:, 1])
        v = ((P - prob.cost[r]) * prob.q0[r] * (P / prob.p0[r]) ** prob.e[r] / prob.fx[r]).sum(1)
        best += v[ok].max()
    assert plan.objective >= best * (1 - 1e-4)  # measured: the plan beats this grid
