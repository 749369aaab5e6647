"""The markdown solver's fast paths against their references: the level-major DP against
every path of small rows, the cutting-plane pool multipliers against the dual on a grid and
the bisection they replace, and the whole plan against the old (bisection) path."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from pricelab.markdown import multipliers, solve_markdown
from pricelab.markdown.dp import best_paths, best_paths_lm, level_major
from tests.test_markdown_solver import all_paths

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_markdown import problem  # noqa: E402


@pytest.mark.parametrize("monotone", [True, False])
@pytest.mark.parametrize("min_weeks", [1, 2, 3])
def test_dp_is_the_best_of_all_paths(monotone: bool, min_weeks: int) -> None:
    """Value = the best clipped value over every allowed path; the path returned reaches
    it; clipped units are those of its positive-weight weeks; ties in demand and weight."""
    rng = np.random.default_rng(10 * min_weeks + monotone)
    r, t, lv = 40, 5, 4
    d = np.round(rng.lognormal(0, 1, (r, t, lv)), 1) * (rng.random((r, t, lv)) > 0.15)
    w = np.round(rng.normal(1, 1.2, (r, lv)), 1)
    nl = rng.integers(1, lv + 1, r)
    paths = all_paths(t, lv, min_weeks, monotone)
    path, value = best_paths(d, w, nl, monotone=monotone, min_weeks=min_weeks)
    rows = np.arange(1, r, 2)
    p2, v2, u2 = best_paths_lm(
        level_major(d), w[rows], nl[rows], monotone=monotone, min_weeks=min_weeks, rows=rows
    )
    assert np.array_equal(p2, path[rows]) and np.array_equal(v2, value[rows])
    for i in range(r):
        ok = paths[(paths < nl[i]).all(axis=1)]
        vals = (d[i][np.arange(t), ok] * np.maximum(w[i][ok], 0)).sum(axis=1)
        assert value[i] == pytest.approx(vals.max(), abs=1e-9)
        assert any((ok == path[i]).all(axis=1))  # an allowed path ...
        mine = (d[i][np.arange(t), path[i]] * np.maximum(w[i][path[i]], 0)).sum()
        assert mine == pytest.approx(value[i], abs=1e-9)  # ... worth the value
    for j, i in enumerate(rows):
        pos = w[i][p2[j]] > 0
        assert u2[j] == pytest.approx(d[i][np.arange(t), p2[j]][pos].sum(), abs=1e-9)
    from pricelab.markdown import dp

    dt = level_major(d, block=7)
    assert np.array_equal(dt, level_major(d))
    for sub in (None, rows):  # rows in blocks of 7: same paths, values and units
        w_s, n_s = (w, nl) if sub is None else (w[sub], nl[sub])
        want = best_paths_lm(dt, w_s, n_s, monotone=monotone, min_weeks=min_weeks, rows=sub)
        old, dp.BLOCK = dp.BLOCK, 7
        try:
            got = best_paths_lm(dt, w_s, n_s, monotone=monotone, min_weeks=min_weeks, rows=sub)
        finally:
            dp.BLOCK = old
        assert all(np.array_equal(a, b) for a, b in zip(want, got, strict=True))


def _dual_at(prob, dp, nu: np.ndarray) -> np.ndarray:
    rows = np.arange(len(prob.pool))
    _, val, _ = dp.solve(rows, dp.w0 - nu[prob.pool][:, None])
    return nu * prob.pool_stock + np.bincount(prob.pool, weights=val)


def test_cutting_planes_find_each_pools_dual_minimum() -> None:
    """Every pool's dual at the cutting planes' bracket is at most its value on a grid
    around it and at the bisection's bracket (a minimum), and the bracket straddles the
    stock: more than the stock sells at the lower end, at most the stock at the upper."""
    from pricelab.markdown.solver import _Rows

    prob = problem(150, 5)
    w0 = prob.base_price() - prob.pool_salvage[prob.pool][:, None]
    dp = _Rows(prob, w0, prob.n_levels())
    stock = prob.pool_stock.astype(float)
    hi = np.zeros(len(stock))
    np.maximum.at(hi, prob.pool, w0.max(axis=1))
    binding = np.ones(len(stock), dtype=bool)
    lo, up = multipliers.pool_multipliers(dp, prob.pool, stock, binding, hi.copy())
    b_lo, b_hi = multipliers.bisect_pools(dp, prob.pool, stock, binding, hi.copy())
    best = np.minimum(_dual_at(prob, dp, lo), _dual_at(prob, dp, up))
    tol = 1e-9 * np.abs(best)
    assert (best <= _dual_at(prob, dp, b_lo) + tol).all()
    assert (best <= _dual_at(prob, dp, b_hi) + tol).all()
    mid = 0.5 * (lo + up)
    for f in (0.5, 0.9, 0.99, 0.999, 1.001, 1.01, 1.1, 2.0):
        assert (best <= _dual_at(prob, dp, mid * f) + tol).all()
    units = [
        np.bincount(prob.pool, weights=dp.clipped_units(np.arange(len(prob.pool)), x[prob.pool]))
        for x in (lo, up)
    ]
    assert (units[0] > stock).all() and (units[1] <= stock).all()


def test_fast_plan_matches_the_bisection_path(monkeypatch) -> None:
    """300 items x 3 markets with shared stock and a category target: the plan with the
    cutting-plane multipliers and the one with the old bisection are worth the same within
    the tolerance, each proves its gap, and each bound is above both plans' values."""
    prob = problem(300, 3)
    fast = solve_markdown(prob)
    monkeypatch.setattr(multipliers, "METHOD", "bisect")
    old = solve_markdown(prob)
    tol = prob.config.gap_tolerance
    for sol in (fast, old):
        assert 0 <= sol.gap <= tol
        assert (sol.target_sold >= sol.target_units - 1e-6).all()
        assert sol.upper_bound >= max(fast.value, old.value) * (1 - 1e-12)
    assert fast.value == pytest.approx(old.value, rel=tol)


def test_pool_table_allocation_matches_one_sort_over_all_cells() -> None:
    """The per-pool table allocation gives the same sales as the one-sort allocation,
    with ties in price (earlier week, then earlier row first), uneven pools and empty ones."""
    from pricelab.markdown.fluid import _allocate, _allocate_flat

    rng = np.random.default_rng(1)
    for _ in range(100):
        r, t = int(rng.integers(1, 60)), int(rng.integers(1, 8))
        pool = rng.integers(0, max(1, r // 3), r)
        d = np.round(rng.random((r, t)) * 5, 1)
        rank = np.round(rng.random((r, t)) * 3, 0)
        stock = np.round(rng.random(int(pool.max()) + 2) * 20)
        assert np.allclose(_allocate(d, rank, pool, stock), _allocate_flat(d, rank, pool, stock))


def test_combination_values_match_sorting_their_cells() -> None:
    """The enumeration's knapsack-dual valuation of combinations equals sorting each
    combination's cells (relaxed and fluid value), also with negative weights and absent
    ranks."""
    from pricelab.markdown.exact import _value_combinations, knapsack_value

    rng = np.random.default_rng(2)
    n_rows, t, lv = 9, 4, 3
    demand = rng.random((n_rows, t, lv)) * 5
    wmu = rng.normal(2, 1.5, (n_rows, lv))
    nlev = np.full(n_rows, lv)
    pl_ = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])  # pools of 3, 2 and 4 rows
    rank = np.array([0, 1, 2, 0, 1, 0, 1, 2, 3])
    p_row = np.repeat(np.arange(n_rows), 3)
    p_path = rng.integers(0, lv, (len(p_row), t)).astype(np.int8)
    c_pool = rng.integers(0, 3, 200)
    c_ids = np.full((200, 4), -1)
    for c, p in enumerate(c_pool):
        for j, row in enumerate(np.nonzero(pl_ == p)[0]):
            c_ids[c, j] = 3 * row + rng.integers(0, 3)
    stock = np.array([6.0, 4.0, 30.0])
    rel, fl = _value_combinations(
        demand, wmu, nlev, np.arange(n_rows), pl_, rank, p_row, p_path, c_pool, c_ids, stock
    )
    ok = c_ids >= 0
    pid = np.maximum(c_ids, 0)
    lev = p_path[pid].astype(np.intp)
    d = demand[p_row[pid][:, :, None], np.arange(t)[None, None, :], lev] * ok[..., None]
    w = np.take_along_axis(wmu[p_row[pid]], lev, axis=2)
    want_fl, want_rel = knapsack_value(d.reshape(200, -1), w.reshape(200, -1), stock[c_pool])
    assert np.allclose(rel, want_rel) and np.allclose(fl, want_fl)
    assert (fl < rel - 1e-9).any()  # some combinations do sell units of a negative weight


def test_switch_week_keeps_valid_paths_and_only_improves() -> None:
    """Switching between two paths mid-season: every path stays on the ladder, monotone and
    min_weeks apart, is the old one or a switch of the two, no pool loses value, pools under
    the target sell no fewer units, and some pools gain (a later markdown beats both)."""
    from pricelab.markdown.choose import valid_paths
    from pricelab.markdown.fluid import fluid
    from pricelab.markdown.switch import switch_week

    prob = problem(200, 4)
    r, t, _ = prob.shape
    a = np.full((r, t), 2, dtype=np.int8)
    b = np.ones((r, t), dtype=np.int8)
    b[::3] = 2  # these rows do not switch
    bp = prob.base_price()
    out = fluid(prob.demand, b, prob.pool, prob.pool_stock, prob.pool_salvage, bp)
    of_pool = prob.targets()[0]
    path, new = switch_week(prob, a, b, b, out, bp, of_pool)
    assert valid_paths(path, prob.config.min_weeks_between_changes).all()
    for i in range(r):
        k = int(np.argmax(path[i] != b[i])) if (path[i] != b[i]).any() else 0
        assert (path[i] == b[i]).all() or (
            (path[i, :k] == b[i, :k]).all() and (path[i, k:] == a[i, k:]).all()
        )
    assert (new.value >= out.value - 1e-9).all() and (new.value > out.value + 1e-6).any()
    tgt = of_pool >= 0
    assert (new.sold[tgt] >= out.sold[tgt] - 1e-9).all()


def test_selecting_pools_outcomes_equals_the_fluid_model_on_mixed_paths() -> None:
    """Pools are allocated independently: taking each pool's outcome from one of two plans
    is exactly the fluid model run on the mixed paths."""
    from pricelab.markdown.fluid import fluid, select

    prob = problem(60, 6)
    r, t, _ = prob.shape
    bp = prob.base_price()
    a = np.ones((r, t), dtype=np.int8)
    b = np.full((r, t), 3, dtype=np.int8)
    pick = np.random.default_rng(0).random(len(prob.pool_stock)) < 0.5
    args = (prob.pool, prob.pool_stock, prob.pool_salvage, bp)
    got = select(fluid(prob.demand, a, *args), fluid(prob.demand, b, *args), pick, prob.pool)
    want = fluid(prob.demand, np.where(pick[prob.pool][:, None], b, a), *args)
    for f in ("sales", "stock_left", "revenue", "salvage", "sold"):
        assert np.array_equal(getattr(got, f), getattr(want, f))
