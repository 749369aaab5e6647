"""Why the cross route's combination MILP has no plan: the smallest set of linking
constraints (volume floors, stock, average-change budgets, the ``--risk`` CVaR floor) that
cannot be met together on the candidate prices, each with its shortfall.

Units under cross-price demand depend on the siblings' prices, so no per-row interval test
can say whether a volume floor or a stock limit is reachable. The MILP itself decides: with
every linking constraint dropped (row limits, parity and ordering kept) it is either
infeasible (parity or ordering cannot be met on the candidates) or a deletion filter drops
each constraint whose absence leaves the rest infeasible. What remains conflicts, and loses
that property without any one of its members. A slack MILP over those gives each one's
shortfall in shares of its limit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pricelab.optimize.cross_milp import choose_combinations
from pricelab.optimize.links import Link
from pricelab.optimize.problem import Problem


def conflicting_set(
    prob: Problem,
    enum: list[dict[str, Any]],
    links: list[Link],
    groups: np.ndarray,
    time_limit: float,
    cvar: tuple[float, float] | None = None,
) -> list[str]:
    """Messages naming the smallest conflicting set (see the module docstring)."""

    def solve(members: list[int], slack: bool = False) -> dict[str, Any]:
        keep = [links[j] for j in members if j >= 0]
        risk = cvar if -1 in members else None
        return choose_combinations(prob, enum, keep, groups, time_limit, cvar=risk, slack=slack)

    fixed = [x for x in ("parity", "ordering") if _has(prob, x)]
    if solve([])["status"] == "infeasible":
        what = " and ".join(fixed) or "the row limits"
        return [
            f"{what} cannot be met on the candidate prices within the row limits "
            "(widen max_gap_pct or the bounds)"
        ]
    members = list(range(len(links))) + ([-1] if cvar is not None else [])
    for j in list(members):
        trial = [m for m in members if m != j]
        if solve(trial)["status"] == "infeasible":
            members = trial
    short = solve(members, slack=True).get("slack", {})
    parts = [
        f"{name} ({'short of' if v > 0 else 'over'} its limit by {100 * abs(v):.2f}%)"
        for name, v in short.items()
    ]
    within = "the row limits" + "".join(f" and {x}" for x in fixed)
    if len(parts) == 1:
        return [
            f"{parts[0]} cannot be met under cross-price demand within {within} "
            "on the candidate prices"
        ]
    return [
        " and ".join(parts) + " cannot be met together under cross-price demand on the "
        "candidate prices (without any one of them the others can)"
    ]


def _has(prob: Problem, what: str) -> bool:
    if what == "parity":
        return not np.isnan(prob.parity_gap).all()
    return bool(prob.ordering)
