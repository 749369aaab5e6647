"""The cross route with a tight parity gap on a coarse candidate grid: no combination of
grid prices fits a 0.5% band, so it said "parity cannot be met on the candidate prices".
As on the own-price route, the relaxation's mixture prices (and the units either side) now
join the candidates; checked against brute force over common base prices."""

from __future__ import annotations

import itertools

import numpy as np

from pricelab.optimize.cross import optimize_cross
from tests._cross_cases import category

CONS = {
    "horizon_weeks": 4,
    "bounds": {"max_increase_pct": 20, "max_decrease_pct": 20},
    "parity": {"max_gap_pct": 0.5},
}


def _brute_common_base(d, cross, points: int = 60) -> float:
    """Best profit over plans where each item has one base-currency price in every market
    (a 0% gap, so feasible under 0.5%), on a fine grid of that price: every combination."""
    from pricelab.demand.curves import CrossElasticity

    M = CrossElasticity.from_tables(d, cross).matrix.toarray()
    p0, c, fx, q0 = (
        d[x].to_numpy() for x in ("base_price", "unit_cost", "fx_rate", "base_quantity")
    )
    item = d["item_id"].to_numpy()
    rows = [np.flatnonzero(item == it) for it in ("A", "B", "C")]
    grids = [
        np.linspace((0.8 * p0[r] / fx[r]).max(), (1.2 * p0[r] / fx[r]).min(), points) for r in rows
    ]
    base = np.array(list(itertools.product(*grids)))
    P = np.zeros((base.shape[0], p0.size))
    for k, r in enumerate(rows):
        P[:, r] = base[:, [k]] * fx[r]
    Q = q0 * np.exp(np.log(P / p0) @ M.T)
    return float((4 * (P - c) * Q / fx).sum(axis=1).max())


def test_tight_parity_on_a_coarse_grid_gets_a_plan_near_brute_force() -> None:
    d, cross = category(markets=("US", "GB"), seed=5)
    plan = optimize_cross(d, cross, CONS, n_grid=5)  # before: InfeasibleError
    t = d.join(
        plan.table.select("item_id", "market", "recommended_price"), on=["item_id", "market"]
    )
    p, fx, p0 = (t[x].to_numpy() for x in ("recommended_price", "fx_rate", "base_price"))
    assert np.all(p >= 0.8 * p0 * (1 - 1e-12)) and np.all(p <= 1.2 * p0 * (1 + 1e-12))
    for it in ("A", "B", "C"):
        b = (p / fx)[t["item_id"].to_numpy() == it]
        assert b.max() <= 1.005 * b.min() * (1 + 1e-12)
    best = _brute_common_base(d, cross)
    assert plan.objective >= best * (1 - 1e-3)  # measured: 0.14% above it
