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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from pricelab.errors import InfeasibleError
from pricelab.markdown.fluid import fluid
from pricelab.markdown.problem import MarkdownProblem

if TYPE_CHECKING:  # the solver imports this module when a plan has market targets
    from pricelab.markdown.solver import MarkdownSolution

ITERS = 30


def solve_with_market_targets(
    prob: MarkdownProblem, core: Callable[..., MarkdownSolution]
) -> MarkdownSolution:
    """The plan meeting every per-market target; see the module docstring."""
    row_t, names, units = prob.market_targets()
    n = len(names)
    tagged = row_t >= 0
    base_price = prob.base_price()
    best_ub = np.inf
    of_pool, cat_names, _ = prob.targets()

    def run(mu: np.ndarray) -> tuple[MarkdownSolution, np.ndarray]:
        nonlocal best_ub
        bonus = np.where(tagged, mu[np.maximum(row_t, 0)], 0.0)
        sol = core(prob, bonus, milp=False)  # the MILP does not see market targets
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
        cat = of_pool >= 0
        cat_sold = np.bincount(of_pool[cat], weights=out.sold[cat], minlength=len(cat_names))
        return (
            replace(sol, outcome=out, value=float(out.value.sum()), target_sold=cat_sold),
            sold,
        )

    def met(sold: np.ndarray) -> np.ndarray:
        return np.asarray(sold >= units * (1 - 1e-9) - 1e-9)

    zero = np.zeros(n)
    sol, sold = run(zero)
    mu = zero
    if not met(sold).all():
        scale = float(np.nanmax(base_price))
        huge = np.where(met(sold), 0.0, 1e6 * scale)
        _, most = run(huge)
        bad = np.nonzero(~met(most))[0]
        if len(bad):
            g = int(bad[0])
            raise InfeasibleError(
                f"sell_through_min_pct: market {names[g]!r} needs {units[g]:.0f} units sold, "
                f"but at most {most[g]:.0f} sell even at the deepest allowed discount "
                "from week 1",
                hint="lower the market's target or allow deeper discounts",
            )
        need = ~met(sold)
        lo, hi = zero.copy(), np.where(need, scale, 0.0)
        sol, sold = run(hi)
        for _ in range(40):  # grow until every target is met
            short = ~met(sold)
            if not short.any():
                break
            lo, hi = np.where(short, hi, lo), np.where(short, hi * 4.0, hi)
            sol, sold = run(hi)
        mu = hi
        for _ in range(ITERS):
            act = need & ((hi - lo) > 1e-6 * np.maximum(1.0, hi))
            if not act.any():
                break
            mid = np.where(act, 0.5 * (lo + hi), hi)
            s_mid, sold_mid = run(mid)
            ok = met(sold_mid)
            if ok.all() and s_mid.value >= sol.value:
                sol, sold, mu = s_mid, sold_mid, mid
            hi = np.where(act & ok, mid, hi)
            lo = np.where(act & ~ok, mid, lo)
    return replace(
        sol,
        upper_bound=best_ub,
        target_names=[*sol.target_names, *(f"market {m}" for m in names)],
        target_units=np.r_[sol.target_units, units],
        target_multiplier=np.r_[sol.target_multiplier, mu],
        target_sold=np.r_[sol.target_sold, sold],
        stats={**sol.stats, "market_targets": n},
    )
