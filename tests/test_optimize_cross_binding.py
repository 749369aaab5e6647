"""``binding`` on cross-route plans names what really holds a price: each coupling constraint
is named on exactly the rows that a re-solve without it (the constraints file minus that key,
solved from scratch here) moves."""

from __future__ import annotations

import numpy as np
import pytest

from pricelab.optimize.cross import optimize_cross
from tests._cross_cases import category

BASE = {
    "horizon_weeks": 4,
    "bounds": {"max_increase_pct": 25, "max_decrease_pct": 20},
    "min_margin_pct": 10,
}


def _labels(plan) -> list[set[str]]:
    return [set(filter(None, b.split(","))) for b in plan.table["binding"].to_list()]


@pytest.mark.parametrize(
    ("extra", "keys"),
    [
        ({"parity": {"max_gap_pct": 5}}, ["parity"]),
        ({"parity": {"max_gap_pct": 4}, "min_volume_pct": 97}, ["parity", "min_volume_pct"]),
        ({"max_avg_change_pct": 1.5}, ["max_avg_change_pct"]),
    ],
    ids=["parity", "parity+volume", "budget"],
)
def test_each_coupling_label_matches_a_re_solve_without_it(extra: dict, keys: list[str]) -> None:
    demand, cross = category(markets=("US", "GB"), seed=3)
    cons = {**BASE, **extra}
    plan = optimize_cross(demand, cross, cons, n_grid=7)
    p = plan.table["recommended_price"].to_numpy()
    labels = _labels(plan)
    named = 0
    for key in keys:
        without = {k: v for k, v in cons.items() if k != key}
        q = optimize_cross(demand, cross, without, n_grid=7).table["recommended_price"].to_numpy()
        moved = ~np.isclose(q, p, rtol=1e-6, atol=0.0)
        has = np.array([key in s for s in labels])
        assert (has == moved).all(), (key, p, q, plan.table["binding"].to_list())
        named += int(has.sum())
    assert named > 0  # the case is one where the constraints hold some prices


def test_a_slack_budget_is_not_named() -> None:
    """A 50% average-change budget holds no price: the route used to name it on every row
    that is not at its own-price optimum (a budget "always counts" in the candidate MILP)."""
    demand, cross = category(markets=("US", "GB"), seed=3)
    cons = {**BASE, "max_avg_change_pct": 50, "parity": {"max_gap_pct": 5}}
    plan = optimize_cross(demand, cross, cons, n_grid=7)
    assert not any("max_avg_change_pct" in s for s in _labels(plan))
    free = optimize_cross(demand, cross, {**BASE, "parity": {"max_gap_pct": 5}}, n_grid=7).table[
        "recommended_price"
    ]
    # the same plan (the continuous polish runs with the slack budget's row too: its prices
    # can differ in the last bits)
    assert plan.table["recommended_price"].to_numpy() == pytest.approx(free.to_numpy(), rel=1e-12)
