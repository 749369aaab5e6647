"""Markdown solver against brute force, an independent cvxpy MILP and a published example."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
from scipy.optimize import linprog

from pricelab.errors import InfeasibleError
from pricelab.markdown import (
    MarkdownConfig,
    MarkdownProblem,
    constant_elasticity_demand,
    solve_markdown,
)


def make(rng, n_items, markets, weeks, ladder, shared=True, **cfg) -> MarkdownProblem:
    rows = [(i, m) for i in range(n_items) for m in range(markets)]
    n = len(rows)
    base = rng.uniform(1, 10, (n, 1)) * np.linspace(1, 0.4, weeks)[None, :]
    e = rng.uniform(-3.5, -1.2, n)
    pool = np.array([i for i, _ in rows]) if shared else np.arange(n)
    p = int(pool.max()) + 1
    stock = np.round(np.bincount(pool, weights=base.sum(1), minlength=p) * rng.uniform(0.5, 1.6, p))
    full = rng.uniform(50, 100, n)
    return MarkdownProblem(
        item_id=np.array([f"I{i}" for i, _ in rows]),
        market=np.array([f"M{m}" for _, m in rows]),
        category=np.array(["c"] * n, dtype=object),
        full_price=full,
        fx_rate=rng.choice([1.0, 1.25], n),
        unit_cost=full * 0.4,
        demand=constant_elasticity_demand(base, e, np.array(ladder, dtype=float)),
        pool=pool,
        pool_stock=stock,
        pool_salvage=rng.uniform(5, 20, p),
        pool_item=np.array([f"I{i}" for i in range(p)]),
        pool_market=np.array([""] * p),
        config=MarkdownConfig(ladder=tuple(float(x) for x in ladder), **cfg),
    )


def all_paths(weeks: int, levels: int, min_weeks: int, monotone: bool = True) -> np.ndarray:
    """Every ladder path starting from full price, changes ``min_weeks`` apart (and never
    up when ``monotone``)."""
    out = []
    for p in itertools.product(range(levels), repeat=weeks):
        if monotone and any(b < a for a, b in zip(p, p[1:], strict=False)):
            continue
        last, ok, prev = -(10**6), True, 0
        for t, k in enumerate(p):
            if k != prev:
                ok &= t - last >= min_weeks
                last = t
            prev = k
        if ok:
            out.append(p)
    return np.array(out)


def brute_force_with_floors(prob: MarkdownProblem, floors: list[tuple[np.ndarray, float]]) -> float:
    """Every combination of monotone ladder paths; per combination the best allocation by an
    LP (sales <= demand, pools within stock, each floor's rows (mask) sell at least its units)."""
    from scipy.optimize import linprog

    r, t, lv = prob.shape
    nl = prob.n_levels()
    paths = all_paths(t, lv, prob.config.min_weeks_between_changes)
    per = [paths[(paths < nl[i]).all(axis=1)] for i in range(r)]
    w = prob.base_price() - prob.pool_salvage[prob.pool][:, None]
    n = len(prob.pool_stock)
    a = np.zeros((n + len(floors), r * t))
    a[np.repeat(prob.pool, t), np.arange(r * t)] = 1.0
    for j, (mask, _) in enumerate(floors):
        a[n + j] = -np.repeat(mask, t).astype(float)
    b = np.r_[prob.pool_stock, [-float(u) for _, u in floors]]
    best = -np.inf
    for combo in itertools.product(*[range(len(x)) for x in per]):
        path = np.stack([per[i][c] for i, c in enumerate(combo)])
        d = np.take_along_axis(prob.demand, path[:, :, None], axis=2)[:, :, 0].ravel()
        c = -np.take_along_axis(w, path, axis=1).ravel()
        res = linprog(c, A_ub=a, b_ub=b, bounds=np.c_[0 * d, d], method="highs")
        if res.status == 0:
            best = max(best, -res.fun)
    return best + float((prob.pool_salvage * prob.pool_stock).sum())


def allocation_value(prob: MarkdownProblem, path: np.ndarray) -> tuple[float, float]:
    """Best revenue + salvage of fixed paths by an LP (sales <= demand, pool sales <= stock)."""
    r, t, _ = prob.shape
    d = np.take_along_axis(prob.demand, path[:, :, None], axis=2)[:, :, 0].ravel()
    price = np.take_along_axis(prob.base_price(), path, axis=1).ravel()
    salv = np.repeat(prob.pool_salvage[prob.pool], t)
    a = np.zeros((len(prob.pool_stock), r * t))
    a[np.repeat(prob.pool, t), np.arange(r * t)] = 1.0
    res = linprog(
        -(price - salv), A_ub=a, b_ub=prob.pool_stock, bounds=list(zip(0 * d, d, strict=True))
    )
    sold = float(res.x.sum())
    return -res.fun + float((prob.pool_salvage * prob.pool_stock).sum()), sold


def brute_force(prob: MarkdownProblem, min_units: float = 0.0) -> float:
    r, t, lv = prob.shape
    nl = prob.n_levels()
    paths = all_paths(t, lv, prob.config.min_weeks_between_changes)
    per = [paths[(paths < nl[i]).all(axis=1)] for i in range(r)]
    best = -np.inf
    for combo in itertools.product(*[range(len(x)) for x in per]):
        path = np.stack([per[i][c] for i, c in enumerate(combo)])
        v, sold = allocation_value(prob, path)
        if sold >= min_units - 1e-9:
            best = max(best, v)
    return best


def brute_force_one_pool(prob: MarkdownProblem) -> float:
    """Every combination of monotone paths of one pool's rows at once; for fixed paths the
    best allocation of a single stock is the greedy one (most valuable units first)."""
    r, t, lv = prob.shape
    nl = prob.n_levels()
    paths = all_paths(t, lv, prob.config.min_weeks_between_changes)
    per = [paths[(paths < nl[i]).all(axis=1)] for i in range(r)]
    idx = np.stack(np.meshgrid(*[np.arange(len(x)) for x in per], indexing="ij"), -1).reshape(-1, r)
    d = np.concatenate(
        [
            np.take_along_axis(prob.demand[i][None], per[i][idx[:, i]][:, :, None], 2)[..., 0]
            for i in range(r)
        ],
        axis=1,
    )
    w = prob.base_price() - prob.pool_salvage[0]
    v = np.concatenate([w[i][per[i][idx[:, i]]] for i in range(r)], axis=1)
    order = np.argsort(-v, axis=1)
    d, v = np.take_along_axis(d, order, 1), np.take_along_axis(v, order, 1)
    x = np.clip(prob.pool_stock[0] - (np.cumsum(d, 1) - d), 0, d) * (v > 0)
    return float((x * v).sum(1).max() + prob.pool_salvage[0] * prob.pool_stock[0])


def check_plan(prob: MarkdownProblem, sol) -> None:
    """On the ladder, never up, changes apart, within stock, value within the bound."""
    path = sol.path.astype(int)
    assert (path >= 0).all() and (path < prob.n_levels()[:, None]).all()
    full = np.concatenate([np.zeros((len(path), 1), dtype=int), path], axis=1)
    assert (np.diff(full, axis=1) >= 0).all()
    m = prob.config.min_weeks_between_changes
    for row in full:
        changes = np.nonzero(np.diff(row))[0]
        assert (np.diff(changes) >= m).all()
    sold = np.bincount(
        prob.pool, weights=sol.outcome.sales.sum(axis=1), minlength=len(prob.pool_stock)
    )
    assert (sold <= prob.pool_stock + 1e-7).all()
    d = np.take_along_axis(prob.demand, path[:, :, None], axis=2)[:, :, 0]
    assert (sol.outcome.sales <= d + 1e-9).all()
    assert sol.upper_bound >= sol.value - 1e-6 * abs(sol.value)
    assert 0 <= sol.gap <= prob.config.gap_tolerance


@pytest.mark.parametrize("seed", range(6))
def test_brute_force_shared_and_dedicated(seed: int) -> None:
    rng = np.random.default_rng(seed)
    prob = make(
        rng,
        n_items=1 + seed % 2,
        markets=2 - seed % 2,
        weeks=4,
        ladder=[0, 20, 40],
        shared=seed % 3 != 2,
        min_weeks_between_changes=1 + seed % 2,
        salvage_pct_of_cost=0.0,
    )
    sol = solve_markdown(prob)
    check_plan(prob, sol)
    best = brute_force(prob)
    assert sol.value == pytest.approx(best, rel=1e-7)
    assert sol.upper_bound == pytest.approx(best, rel=1e-4)


@pytest.mark.parametrize("seed", range(3))
def test_brute_force_with_sell_through_target(seed: int) -> None:
    rng = np.random.default_rng(10 + seed)
    prob = make(rng, 2 + seed % 2, 1, 3, [0, 25, 50], sell_through_min_pct=85.0)
    sol = solve_markdown(prob)
    check_plan(prob, sol)
    need = 0.85 * prob.pool_stock.sum()
    assert sol.target_sold[0] >= need - 1e-7
    assert sol.value == pytest.approx(brute_force(prob, need), rel=1e-7)


def test_independent_cvxpy_milp_on_shared_stock() -> None:
    cp = pytest.importorskip("cvxpy")
    rng = np.random.default_rng(42)
    prob = make(rng, 2, 3, 5, [0, 15, 30, 50], min_weeks_between_changes=2)
    sol = solve_markdown(prob)
    check_plan(prob, sol)
    r, t, lv = prob.shape
    w = prob.base_price() - prob.pool_salvage[prob.pool][:, None]
    nl = prob.n_levels()
    z = [cp.Variable((t, lv), boolean=True) for _ in range(r)]
    x = [cp.Variable((t, lv), nonneg=True) for _ in range(r)]
    c = [cp.Variable(t, boolean=True) for _ in range(r)]
    cons = []
    for i in range(r):
        cons += [cp.sum(z[i], axis=1) == 1, x[i] <= cp.multiply(prob.demand[i], z[i])]
        cons += [z[i][:, k] == 0 for k in range(nl[i], lv)]
        for s in range(1, t):  # level index never decreases: cumulative shares never rise
            for k in range(lv - 1):
                cons.append(cp.sum(z[i][s, : k + 1]) <= cp.sum(z[i][s - 1, : k + 1]))
            cons.append(c[i][s] >= z[i][s, :] - z[i][s - 1, :])
        cons.append(c[i][0] >= 1 - z[i][0, 0])
        cons += [c[i][s] + c[i][s + 1] <= 1 for s in range(t - 1)]
    for p in range(len(prob.pool_stock)):
        cons.append(sum(cp.sum(x[i]) for i in np.nonzero(prob.pool == p)[0]) <= prob.pool_stock[p])
    obj = sum(cp.sum(cp.multiply(x[i], np.repeat(w[i][None, :], t, axis=0))) for i in range(r))
    cp.Problem(cp.Maximize(obj), cons).solve(solver="HIGHS")
    ref = obj.value + float((prob.pool_salvage * prob.pool_stock).sum())
    assert sol.value == pytest.approx(ref, rel=1e-6)


def test_tensor_house_multi_interval_example() -> None:
    """Levels 89/79/69/59/49, stock 700, four linear weekly demands: optimum $61,400."""
    levels = np.array([89.0, 79.0, 69.0, 59.0, 49.0])
    a, b = np.array([1500, 1300, 1200, 1100.0]), np.array([10, 15, 15, 18.0])
    demand = np.maximum(a[:, None] - b[:, None] * levels[None, :], 0.0)[None, :, :]
    ladder = tuple(100 * (1 - levels / 89.0))
    prob = MarkdownProblem(
        item_id=np.array(["X"]),
        market=np.array(["US"]),
        category=np.array([""], dtype=object),
        full_price=np.array([89.0]),
        fx_rate=np.array([1.0]),
        unit_cost=np.array([0.0]),
        demand=demand,
        pool=np.array([0]),
        pool_stock=np.array([700.0]),
        pool_salvage=np.array([0.0]),
        pool_item=np.array(["X"]),
        pool_market=np.array([""]),
        config=MarkdownConfig(ladder=ladder),
    )
    sol = solve_markdown(prob)
    assert sol.value == pytest.approx(61400.0, rel=1e-9)
    assert 61400.0 * (1 - 1e-12) <= sol.upper_bound <= 61400.0 * (1 + prob.config.gap_tolerance)
    assert sol.path[0, :2].tolist() == [0, 1]  # $89 in week 1, $79 in week 2 (sold out)


def test_many_pools_with_target_meet_every_rule() -> None:
    rng = np.random.default_rng(7)
    prob = make(rng, 12, 3, 6, [0, 10, 20, 30, 40, 50], min_weeks_between_changes=2)
    prob.category = np.where(prob.pool % 2 == 0, "a", "b").astype(object)
    prob.config = replace(
        prob.config, category_rules={"a": {"sell_through_min_pct": 90.0, "max_discount_pct": 40.0}}
    )
    sol = solve_markdown(prob)
    check_plan(prob, sol)
    assert (prob.ladder[sol.path[prob.category == "a"]] <= 40).all()
    assert sol.target_sold[0] >= sol.target_units[0] - 1e-6


def test_infeasible_target_names_the_category() -> None:
    rng = np.random.default_rng(3)
    prob = make(rng, 2, 1, 3, [0, 10])
    prob.pool_stock = prob.pool_stock * 50
    prob.config = replace(prob.config, sell_through_min_pct=95.0)
    with pytest.raises(InfeasibleError, match="category 'c'"):
        solve_markdown(prob)


def test_search_reaches_the_milp_optimum_where_the_dual_paths_do_not(monkeypatch) -> None:
    """Flat weekly demand: the Lagrangian only offers constant paths, the optimum mixes
    levels over the weeks. The reduced-cost enumeration alone (no local search, no MILP)
    finds the exact (HiGHS) optimum and proves it; without enumeration and local search the
    plan is short of it."""
    from pricelab.markdown import solver

    prob, best = _flat_case()
    sol = solve_markdown(prob)
    check_plan(replace(prob, config=replace(prob.config, gap_tolerance=1.0)), sol)  # no MILP
    assert sol.value == pytest.approx(best, rel=1e-9)
    monkeypatch.setattr(solver, "_polish", lambda prob, path, out, *a: (path, out))
    alone = solve_markdown(prob)
    assert alone.value == pytest.approx(best, rel=1e-9)
    assert alone.gap <= 1e-6 and alone.upper_bound >= best * (1 - 1e-9)
    monkeypatch.setattr(solver, "_enumerate", lambda prob, dp, path, out, ub, *a: (path, out, ub))
    assert solve_markdown(prob).value < best * (1 - 1e-5)


def _flat_case() -> tuple[MarkdownProblem, float]:
    from pricelab.markdown.milp import solve_rows_milp

    rng = np.random.default_rng(203)
    prob = make(rng, 6, 3, 8, [0, 10, 20, 30, 40, 50], min_weeks_between_changes=2)
    prob = replace(prob, config=replace(prob.config, milp_max_pools=0))
    base = rng.uniform(2, 12, (18, 1)) * np.ones((1, 8))
    demand = constant_elasticity_demand(base, rng.uniform(-3.5, -1.2, 18), prob.ladder)
    prob = replace(prob, demand=demand)
    w = prob.base_price() - prob.pool_salvage[prob.pool][:, None]
    _, _, obj, _, optimal = solve_rows_milp(
        prob.demand,
        w,
        prob.n_levels(),
        prob.pool,
        prob.pool_stock.astype(float),
        monotone=True,
        min_weeks=2,
        node_limit=100_000,
    )
    assert optimal
    return prob, obj + float((prob.pool_salvage * prob.pool_stock).sum())


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("caps", [None, ((1, 1, None),), ((2, 3, None), (3, 5, 1))])
def test_enumeration_bound_stays_above_brute_force(seed: int, caps, monkeypatch) -> None:
    """Shared stock, no MILP, no local search: the bound after enumeration is never below
    the brute-force optimum, also when tiny caps cut the enumeration short (the bound then
    only moves as far as the reduced costs prove); uncapped it is the optimum."""
    from pricelab.markdown import exact, solver

    monkeypatch.setattr(solver, "_polish", lambda prob, path, out, *a: (path, out))
    if caps is not None:
        monkeypatch.setattr(exact, "ENUM_PASSES", caps)
    rng = np.random.default_rng(300 + seed)
    prob = make(
        rng,
        1,
        3 - seed % 2,
        5,
        [0, 20, 40],
        min_weeks_between_changes=1 + seed % 2,
        salvage_pct_of_cost=0.0,
        milp_max_pools=0,
        gap_tolerance=0.0,  # every pass runs: uncapped, the bound is the optimum
    )
    sol = solve_markdown(prob)
    best = brute_force_one_pool(prob)
    assert sol.upper_bound >= best * (1 - 1e-9)
    assert sol.value <= best * (1 + 1e-9)
    if caps is None:
        assert sol.value == pytest.approx(best, rel=1e-9)
        assert sol.upper_bound == pytest.approx(best, rel=1e-9)


def test_enumeration_proves_the_independent_milp_optimum_on_many_pools(monkeypatch) -> None:
    """6 items x 3 markets sharing stock, 6 weeks, 5 levels: without MILP or local search
    the plan is within 1e-4 of one whole-problem HiGHS MILP solved to optimality, and the
    bound is not below it."""
    from pricelab.markdown import solver
    from pricelab.markdown.milp import solve_rows_milp

    monkeypatch.setattr(solver, "_polish", lambda prob, path, out, *a: (path, out))
    rng = np.random.default_rng(77)
    prob = make(rng, 6, 3, 6, [0, 10, 20, 30, 40], min_weeks_between_changes=2)
    prob = replace(prob, config=replace(prob.config, milp_max_pools=0))
    sol = solve_markdown(prob)
    check_plan(prob, sol)
    w = prob.base_price() - prob.pool_salvage[prob.pool][:, None]
    _, _, obj, bound, optimal = solve_rows_milp(
        prob.demand,
        w,
        prob.n_levels(),
        prob.pool,
        prob.pool_stock.astype(float),
        monotone=True,
        min_weeks=2,
        node_limit=100_000,
    )
    salv = float((prob.pool_salvage * prob.pool_stock).sum())
    assert optimal
    assert sol.upper_bound >= (obj + salv) * (1 - 1e-9)
    assert sol.value >= (obj + salv) * (1 - 1e-4)
