"""Sell-through targets as covers: feasibility, the primal repair and the exact MILP.

A *cover* is a set of rows that together must sell at least some units: a category target
(the rows of the category's stock pools) or a market target (the market's rows). Covers
couple stock pools, so the per-pool steps of the solver cannot meet them exactly; at the
targets' multipliers (:mod:`pricelab.markdown.market_targets`) only a few pools change
their plan when a multiplier moves. This module

- checks that the targets can be met (alone: a closed form per target naming it; together:
  one LP on units per row) before any multiplier is searched;
- repairs the plan exactly on those few *swing* pools: one MILP (HiGHS) over every ladder
  path of their rows with the stock of their pools and what the targets still need once the
  other pools' sales are counted (the knapsack-like step of a Lagrangian heuristic);
- solves the whole problem as one MILP when the proven gap is still above the tolerance and
  the problem is small enough; its dual bound is then a valid bound as well.

The swing repair is not the pools' MILP (:func:`pricelab.markdown.milp.improve_with_milp`)
again: that one closes each open pool's own gap, batch by batch, and tightens the bound,
but holds every pool's (or category group's) units sold and never sees a market target;
this one trades units between the pools that a target couples, with every target as a row
of one MILP, and proves nothing about the rest. See :mod:`pricelab.markdown.milp`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from pricelab.errors import InfeasibleError
from pricelab.markdown.dp import best_paths, path_demand
from pricelab.markdown.fluid import FluidOutcome
from pricelab.markdown.milp import solve_rows_milp
from pricelab.markdown.problem import MarkdownProblem

if TYPE_CHECKING:  # the solver imports this module
    from pricelab.markdown.solver import MarkdownSolution

REPAIR_CELLS = 6_000  # rows x weeks x levels of the swing pools' MILP
EXACT_CELLS = 4_000  # rows x weeks x levels: the whole problem as one MILP
REPAIR_NODES = 1_000
EXACT_NODES = 5_000


@dataclass
class Covers:
    """Every sell-through target as (name, rows, minimum units); categories first."""

    names: list[str]
    masks: list[np.ndarray]  # (R,) bool each
    units: np.ndarray
    labels: list[str]  # for messages: category 'bags', market 'US'

    def sold(self, sales: np.ndarray) -> np.ndarray:
        """Units each target's rows sell in ``sales`` (R, T)."""
        per_row = sales.sum(axis=1)
        return np.array([per_row[m].sum() for m in self.masks], dtype=float)

    def met(self, sales: np.ndarray) -> bool:
        """Every target met (up to the MILP's feasibility tolerance, a millionth of a unit)."""
        return bool((self.sold(sales) >= self.units * (1 - 1e-6) - 1e-5).all())


def covers(prob: MarkdownProblem) -> Covers:
    """The problem's category and market targets as covers."""
    of_pool, names, units = prob.targets()
    masks = [of_pool[prob.pool] == g for g in range(len(names))]
    row_t, m_names, m_units = prob.market_targets()
    masks += [row_t == g for g in range(len(m_names))]
    return Covers(
        [f"category {n}" for n in names] + [f"market {m}" for m in m_names],
        masks,
        np.r_[units, m_units].astype(float),
        [f"category {n!r}" for n in names] + [f"market {m!r}" for m in m_names],
    )


def most_demand(prob: MarkdownProblem) -> np.ndarray:
    """(R,) the most units a row can be asked for over the season (its deepest path)."""
    cfg = prob.config
    ones = np.ones((len(prob.pool), prob.shape[2]))
    path, _ = best_paths(
        prob.demand,
        ones,
        prob.n_levels(),
        monotone=cfg.monotone,
        min_weeks=cfg.min_weeks_between_changes,
    )
    return path_demand(prob.demand, path).sum(axis=1)


def check_feasible(prob: MarkdownProblem, cov: Covers) -> None:
    """Raise :class:`InfeasibleError` naming the target(s) that no plan can meet.

    Alone, a target's rows sell at most ``sum over pools min(stock, their deepest demand)``;
    together, the targets can be met exactly when an LP on units per row (at most the row's
    deepest demand, pools within stock, every target met) is feasible.
    """
    if not len(cov.units):
        return
    d_max = most_demand(prob)
    n = len(prob.pool_stock)
    for name, mask, need in zip(cov.labels, cov.masks, cov.units, strict=True):
        per_pool = np.bincount(prob.pool[mask], weights=d_max[mask], minlength=n)
        most = float(np.minimum(per_pool, prob.pool_stock).sum())
        if most < need * (1 - 1e-9) - 1e-9:
            raise InfeasibleError(
                f"sell_through_min_pct: {name} needs {need:.0f} units sold, but at most "
                f"{most:.0f} sell even at the deepest allowed discount from week 1",
                hint="lower the target or allow deeper discounts (max_discount_pct, ladder)",
            )
    if len(cov.units) < 2:
        return
    from scipy.optimize import linprog
    from scipy.sparse import csr_matrix, vstack

    r = len(prob.pool)
    stock_rows = csr_matrix((np.ones(r), (prob.pool, np.arange(r))), shape=(n, r))
    cover_rows = csr_matrix(-np.stack(cov.masks).astype(float))
    res = linprog(
        np.zeros(r),
        A_ub=vstack([stock_rows, cover_rows]).tocsr(),
        b_ub=np.r_[prob.pool_stock, -cov.units * (1 - 1e-9)],
        bounds=np.c_[np.zeros(r), d_max],
        method="highs",
    )
    if res.status == 2:
        raise InfeasibleError(
            "sell_through_min_pct: the targets of " + ", ".join(cov.labels) + " cannot all "
            "be met together (they compete for the same stock), although each can alone",
            hint="lower one of the targets or allow deeper discounts",
        )


def outcome_of_sales(
    prob: MarkdownProblem, path: np.ndarray, sales: np.ndarray, base_price: np.ndarray
) -> FluidOutcome:
    """The outcome of given sales (R, T) on ``path``: stock left, revenue, salvage, units."""
    n, t_len = len(prob.pool_stock), sales.shape[1]
    price = np.take_along_axis(base_price, path.astype(np.intp), axis=1)
    sold_week = np.zeros((n, t_len))
    np.add.at(sold_week, prob.pool, sales)
    stock = prob.pool_stock.astype(float)
    sold = sold_week.sum(axis=1)
    left = np.maximum(stock - sold, 0.0)
    return FluidOutcome(
        sales=sales,
        stock_left=np.maximum(stock[:, None] - np.cumsum(sold_week, axis=1), 0.0),
        revenue=np.bincount(prob.pool, weights=(sales * price).sum(axis=1), minlength=n),
        salvage=left * prob.pool_salvage,
        sold=sold,
    )


def _milp_on_rows(
    prob: MarkdownProblem, rows: np.ndarray, cov: Covers, fixed_sold: np.ndarray, nodes: int
) -> tuple[np.ndarray, np.ndarray, float, bool] | None:
    """MILP over ``rows`` (whole pools) with what the targets still need: (path, sales,
    dual bound of ``sum (price - salvage) x`` over those rows, optimal?) or None."""
    pools, local = np.unique(prob.pool[rows], return_inverse=True)
    w = prob.base_price()[rows] - prob.pool_salvage[prob.pool[rows]][:, None]
    need = cov.units - fixed_sold
    path, sales, obj, bound, optimal = solve_rows_milp(
        prob.demand[rows],
        w,
        prob.n_levels()[rows],
        local,
        prob.pool_stock[pools].astype(float),
        monotone=prob.config.monotone,
        min_weeks=prob.config.min_weeks_between_changes,
        node_limit=nodes,
        covers=[(m[rows], float(u)) for m, u in zip(cov.masks, need, strict=True)],
        rel_gap=0.1 * prob.config.gap_tolerance,  # enough for the plan's gap, and faster
    )
    if not np.isfinite(obj):
        return None
    return path, sales, bound, optimal


def repair_swing(
    prob: MarkdownProblem,
    path: np.ndarray,
    out: FluidOutcome,
    others: list[np.ndarray],
    cov: Covers,
    pool_gap: np.ndarray,
) -> tuple[np.ndarray, FluidOutcome] | None:
    """Re-plan the swing pools exactly, the rest as they are: the pools whose path differs
    between the plan ``path`` (meets every target) and the ``others`` (plans at nearby
    multipliers), then the pools with the largest own gap (``pool_gap``), up to
    ``REPAIR_CELLS``. Returns the better plan, or None when it is no better."""
    n = len(prob.pool_stock)
    swing = np.zeros(n, dtype=bool)
    for other in others:
        diff = (other != path).any(axis=1)
        swing[prob.pool[diff]] = True
    _, t_len, lv = prob.shape
    size = np.bincount(prob.pool, minlength=n) * t_len * lv
    rest = np.nonzero(~swing & (pool_gap > 0))[0]
    order = np.r_[np.nonzero(swing)[0], rest[np.argsort(-pool_gap[rest], kind="stable")]]
    keep = order[np.cumsum(size[order]) <= REPAIR_CELLS].astype(np.int64)
    if not len(keep):
        return None
    swing[:] = False
    swing[keep] = True
    rows = np.nonzero(swing[prob.pool])[0]
    fixed = out.sales.copy()
    fixed[rows] = 0.0
    got = _milp_on_rows(prob, rows, cov, cov.sold(fixed), REPAIR_NODES)
    if got is None:
        return None
    new_path, sales = path.copy(), fixed
    new_path[rows], sales[rows] = got[0], got[1]
    new = outcome_of_sales(prob, new_path, sales, prob.base_price())
    if not cov.met(sales) or new.value.sum() <= out.value.sum():
        return None
    return new_path, new


def solve_exact(
    prob: MarkdownProblem, cov: Covers
) -> tuple[np.ndarray, FluidOutcome, float] | None:
    """The whole problem as one MILP when it is small enough: (path, outcome, dual bound
    incl. salvage) or None."""
    r, t_len, lv = prob.shape
    if r * t_len * lv > EXACT_CELLS:
        return None
    rows = np.arange(r)
    got = _milp_on_rows(prob, rows, cov, np.zeros(len(cov.units)), EXACT_NODES)
    if got is None:
        return None
    path, sales, bound, _ = got
    salv = float((prob.pool_salvage * prob.pool_stock).sum())
    out = outcome_of_sales(prob, path, sales, prob.base_price())
    return path, out, bound + salv


def close_gap(
    prob: MarkdownProblem,
    sol: MarkdownSolution,
    cov: Covers,
    upper: float,
    tried: list[np.ndarray] | None = None,
) -> tuple[MarkdownSolution, float]:
    """While the proven gap (``upper`` against the plan) is above the tolerance: the swing
    pools' MILP, then the whole-problem MILP. Returns the plan and the bound."""
    tol = prob.config.gap_tolerance
    gaps = {"gap_search": _gap(upper, sol.value)}
    if gaps["gap_search"] > tol:
        got = repair_swing(prob, sol.path, sol.outcome, tried or [], cov, sol.pool_gap)
        if got is not None:
            sol = _with_plan(sol, got[0], got[1])
        gaps["gap_repair"] = _gap(upper, sol.value)
    if _gap(upper, sol.value) > tol:
        exact = solve_exact(prob, cov)
        if exact is not None:
            path, out, bound = exact
            upper = min(upper, bound)
            if float(out.value.sum()) > sol.value and cov.met(out.sales):
                sol = _with_plan(sol, path, out)
            sol = replace(sol, milp_pools=len(prob.pool_stock))
        gaps["gap_exact"] = _gap(upper, sol.value)
    return replace(sol, stats={**sol.stats, **gaps}), upper


def close_category_gap(prob: MarkdownProblem, sol: MarkdownSolution) -> MarkdownSolution:
    """:func:`close_gap` on a plan with category targets only; the targets' units sold
    follow the new plan."""
    cov = covers(prob)
    sol, upper = close_gap(prob, sol, cov, sol.upper_bound)
    return replace(sol, upper_bound=upper, target_sold=cov.sold(sol.outcome.sales))


def _with_plan(sol: MarkdownSolution, path: np.ndarray, out: FluidOutcome) -> MarkdownSolution:
    """``sol`` with a new plan; each pool's gap moves by what its value changed."""
    return replace(
        sol,
        path=path,
        outcome=out,
        value=float(out.value.sum()),
        pool_gap=sol.pool_gap + sol.outcome.value - out.value,
    )


def _gap(upper: float, value: float) -> float:
    return max(0.0, upper - value) / max(abs(upper), 1e-12)
