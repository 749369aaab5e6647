"""Per-market sell-through targets, priced out with one multiplier per market.

A target ``units sold in market m >= T_m`` gets a multiplier ``mu_m >= 0``; for fixed
multipliers every unit sold in market m is worth ``mu_m`` more, which is the core solver
with a per-row bonus on the price (the DP, the pools' stock multipliers, the enumeration,
the local search and the stock allocation all see it; no loop over rows). The plan is then
valued at the real prices with the same allocation (shared stock goes to the units worth
most including the bonus: the target's market first). The multipliers are found by bisection, all markets at once: the
smallest found at which the plan meets every market target. For any multipliers
``bound(mu) - sum_m mu_m T_m`` bounds every plan that meets the targets from above; the
smallest such bound seen is reported.

Targets couple pools, so at the multipliers a few pools sit on a tie (their plan differs
just below and just above). While the proven gap is above the tolerance, those swing pools
are re-planned exactly by one MILP with every target (category and market) and the other
pools as they are, and a problem small enough is solved whole by MILP
(:mod:`pricelab.markdown.targets`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from pricelab.markdown.fluid import fluid
from pricelab.markdown.problem import MarkdownProblem
from pricelab.markdown.targets import check_feasible, close_gap, covers

if TYPE_CHECKING:  # the solver imports this module when a plan has market targets
    from pricelab.markdown.solver import MarkdownSolution

ITERS = 30
BRACKET = 1e-4  # relative width of the multipliers' bracket at which the search stops


def solve_with_market_targets(
    prob: MarkdownProblem, core: Callable[..., MarkdownSolution]
) -> MarkdownSolution:
    """The plan meeting every per-market target; see the module docstring."""
    row_t, names, units = prob.market_targets()
    n = len(names)
    tagged = row_t >= 0
    base_price = prob.base_price()
    best_ub = np.inf
    cov = covers(prob)
    check_feasible(prob, cov)  # names the target(s) no plan can meet
    tried: list[np.ndarray] = []  # paths at multipliers below the chosen ones

    def run(mu: np.ndarray) -> tuple[MarkdownSolution, np.ndarray]:
        nonlocal best_ub
        bonus = np.where(tagged, mu[np.maximum(row_t, 0)], 0.0)
        sol = core(prob, bonus, milp=False)  # the pools' MILP does not see market targets
        out = fluid(
            prob.demand,
            sol.path,
            prob.pool,
            prob.pool_stock,
            prob.pool_salvage,
            base_price,
            priority=bonus,
        )
        best_ub = min(best_ub, sol.upper_bound - float((mu * units).sum()))
        sold = np.bincount(row_t[tagged], weights=out.sales.sum(axis=1)[tagged], minlength=n)
        return replace(sol, outcome=out, value=float(out.value.sum())), sold

    def met(sold: np.ndarray) -> np.ndarray:
        return np.asarray(sold >= units * (1 - 1e-9) - 1e-9)

    zero = np.zeros(n)
    sol, sold = run(zero)
    mu = zero
    if not met(sold).all():
        tried.append(sol.path)
        scale = float(np.nanmax(base_price))
        need = ~met(sold)
        lo, hi = zero.copy(), np.where(need, scale, 0.0)
        sol, sold = run(hi)
        for _ in range(40):  # grow until every target is met (feasible: checked above)
            short = ~met(sold)
            if not short.any():
                break
            tried.append(sol.path)
            need |= short  # a market met alone can fall short once the others are pushed
            lo = np.where(short, hi, lo)
            hi = np.where(short, np.where(hi > 0, hi * 4.0, scale), hi)
            sol, sold = run(hi)
        mu = hi
        for _ in range(ITERS):
            act = need & ((hi - lo) > BRACKET * np.maximum(1.0, hi))
            if not act.any() or _closed(prob, best_ub, sol.value):
                break
            mid = np.where(act, 0.5 * (lo + hi), hi)
            s_mid, sold_mid = run(mid)
            ok = met(sold_mid)
            if ok.all() and s_mid.value >= sol.value:
                sol, sold, mu = s_mid, sold_mid, mid
            elif not ok.all():
                tried.append(s_mid.path)
            hi = np.where(act & ok, mid, hi)
            lo = np.where(act & ~ok, mid, lo)
    sol, best_ub = close_gap(prob, sol, cov, best_ub, tried[-1:])
    cat_sold = cov.sold(sol.outcome.sales)
    n_cat = len(cov.units) - n
    return replace(
        sol,
        upper_bound=best_ub,
        target_names=[*sol.target_names, *(f"market {m}" for m in names)],
        target_units=np.r_[sol.target_units, units],
        target_multiplier=np.r_[sol.target_multiplier, mu],
        target_sold=cat_sold if n_cat == len(sol.target_units) else np.r_[sol.target_sold, sold],
        stats={**sol.stats, "market_targets": n},
    )


def _closed(prob: MarkdownProblem, upper: float, value: float, share: float = 0.5) -> bool:
    """True when the proven gap is within ``share`` of the tolerance."""
    return upper - value <= share * prob.config.gap_tolerance * max(abs(upper), 1e-12)
