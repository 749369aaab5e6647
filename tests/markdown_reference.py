"""An independent whole-problem markdown MILP (HiGHS through scipy) for tests: every row's
ladder path, units sold per cell, every pool's stock and every sell-through target (category
and market) in one model. Written without the package's MILP code so that it can catch it."""

from __future__ import annotations

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import lil_matrix


def reference_milp(prob, *, time_limit: float = 900.0):
    """(optimal value incl. salvage, HiGHS's dual bound incl. salvage, sales (R, T)), or None
    when no plan meets every target."""
    r, t, lv = prob.shape
    nl = prob.n_levels()
    w = prob.base_price() - prob.pool_salvage[prob.pool][:, None]
    m = max(1, prob.config.min_weeks_between_changes)
    nz = r * t * lv

    def z(i, s, k):
        return (i * t + s) * lv + k

    def x(i, s, k):
        return nz + z(i, s, k)

    def c(i, s):
        return 2 * nz + i * t + s

    nvar = 2 * nz + r * t
    rows: list[tuple[dict[int, float], float, float]] = []
    for i in range(r):
        for s in range(t):
            rows.append(({z(i, s, k): 1.0 for k in range(lv)}, 1.0, 1.0))
            for k in range(lv):
                rows.append(({x(i, s, k): 1.0, z(i, s, k): -prob.demand[i, s, k]}, -np.inf, 0.0))
            # a change indicator: c >= |z_s - z_{s-1}| per level (full price before week 1)
            for k in range(lv):
                prev = {z(i, s - 1, k): -1.0} if s else {}
                cst = 0.0 if s else (1.0 if k == 0 else 0.0)
                rows.append(({z(i, s, k): 1.0, **prev, c(i, s): -1.0}, -np.inf, cst))
            if s:
                for k in range(lv - 1):  # never up: share at levels <= k never rises
                    row = {z(i, s, j): 1.0 for j in range(k + 1)}
                    for j in range(k + 1):
                        row[z(i, s - 1, j)] = row.get(z(i, s - 1, j), 0.0) - 1.0
                    rows.append((row, -np.inf, 0.0))
            if m > 1:
                win = range(s, min(t, s + m))
                rows.append(({c(i, q): 1.0 for q in win}, -np.inf, 1.0))
    for p in range(len(prob.pool_stock)):
        members = np.nonzero(prob.pool == p)[0]
        row = {x(i, s, k): 1.0 for i in members for s in range(t) for k in range(lv)}
        rows.append((row, -np.inf, float(prob.pool_stock[p])))
    of_pool, _, units = prob.targets()
    for g, need in enumerate(units):
        members = np.nonzero(of_pool[prob.pool] == g)[0]
        row = {x(i, s, k): 1.0 for i in members for s in range(t) for k in range(lv)}
        rows.append((row, float(need), np.inf))
    row_t, _, m_units = prob.market_targets()
    for g, need in enumerate(m_units):
        members = np.nonzero(row_t == g)[0]
        row = {x(i, s, k): 1.0 for i in members for s in range(t) for k in range(lv)}
        rows.append((row, float(need), np.inf))
    a = lil_matrix((len(rows), nvar))
    lo, hi = np.empty(len(rows)), np.empty(len(rows))
    for j, (row, lb, ub) in enumerate(rows):
        for col, v in row.items():
            a[j, col] = v
        lo[j], hi[j] = lb, ub
    cost = np.zeros(nvar)
    ub = np.ones(nvar)
    for i in range(r):
        for s in range(t):
            for k in range(lv):
                cost[x(i, s, k)] = -w[i, k]
                ub[x(i, s, k)] = prob.demand[i, s, k]
                if k >= nl[i]:
                    ub[z(i, s, k)] = 0.0
    integ = np.ones(nvar)
    integ[nz : 2 * nz] = 0
    res = milp(
        cost,
        constraints=LinearConstraint(a.tocsr(), lo, hi),
        integrality=integ,
        bounds=Bounds(np.zeros(nvar), ub),
        options={"mip_rel_gap": 1e-9, "time_limit": time_limit},
    )
    if res.status == 2:
        return None
    assert res.status == 0, res.message
    salv = float((prob.pool_salvage * prob.pool_stock).sum())
    sales = res.x[nz : 2 * nz].reshape(r, t, lv).sum(axis=2)
    return -float(res.fun) + salv, -float(res.mip_dual_bound) + salv, sales
