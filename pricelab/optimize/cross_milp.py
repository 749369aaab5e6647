"""Small blocks of the cross route: every price combination, and one MILP across blocks.

Each block of substitutes small enough is enumerated (:func:`enumerate_block`: every
combination of its rows' candidate prices with its exact objective and units under the
cross demand). :func:`choose_combinations` then picks one combination per block: the best
one when nothing links blocks, else a HiGHS MILP over the combinations in which parity,
ordering, volume floors, stock and average-change budgets are linear rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from pricelab.demand.curves import CrossElasticity
from pricelab.errors import SolverError, UsageError
from pricelab.optimize import diagnose as dg
from pricelab.optimize.candidates import MIP_REL_GAP
from pricelab.optimize.links import AverageChangeBudget, Link, UnitsLink
from pricelab.optimize.problem import Problem


def enumerate_block(
    prob: Problem, curve: CrossElasticity, P: np.ndarray, counts: np.ndarray, rows: np.ndarray
) -> dict[str, Any]:
    """Every price combination of one block: prices, weekly units and objective."""
    idx = np.indices(tuple(int(c) for c in counts[rows])).reshape(rows.size, -1).T
    prices = P[rows[None, :], idx]
    M = curve.matrix[rows][:, rows].toarray()
    x = np.log(prices / prob.p0[rows])
    q = prob.q0[rows] * np.exp(x @ M.T)
    value = (prob.horizon * (prices - prob.cost[rows]) * q / prob.fx[rows]).sum(axis=1)
    return {"rows": rows, "prices": prices, "q": q, "value": value}


def choose_combinations(
    prob: Problem,
    enum: list[dict[str, Any]],
    links: list[Link],
    groups: np.ndarray,
    time_limit: float,
    relax: bool = False,
) -> dict[str, Any]:
    """One combination per block: argmax, or the MILP when constraints link blocks.

    ``relax``: solve the LP relaxation only and return ``{"mixture": prices}``, each row's
    price averaged over its block's combinations with the LP's weights (NaN outside the
    blocks), or ``{}`` when the relaxation is infeasible too. Parity, ordering and budgets
    are linear in prices, so the mixture meets them."""
    if not links and not (groups >= 0).any() and not prob.ordering:
        return {
            "choice": [int(np.argmax(e["value"])) for e in enum],
            "bound_excess": 0.0,
            "milp": False,
            "status": "optimal",
        }
    sizes = [e["value"].size for e in enum]
    off = np.cumsum([0, *sizes])
    nx = int(off[-1])
    where = np.full(prob.n, -1)
    slot = np.full(prob.n, -1)
    for b, e in enumerate(enum):
        where[e["rows"]] = b
        slot[e["rows"]] = np.arange(e["rows"].size)
    V = np.concatenate([e["value"] for e in enum])
    scale = max(float(np.median(np.abs(V))), 1e-12)
    ng = int(groups.max()) + 1 if (groups >= 0).any() else 0
    nvar = nx + ng
    A_rows: list[sp.csr_matrix] = []
    lb: list[float] = []
    ub: list[float] = []

    def coef(rows: np.ndarray, per: Any) -> sp.csr_matrix:
        """A constraint row summing ``per(block, local rows)`` over the combinations."""
        v = np.zeros(nvar)
        for b in np.unique(where[rows]):
            mine = rows[where[rows] == b]
            v[off[b] : off[b + 1]] += per(enum[b], slot[mine], mine)
        return sp.csr_matrix(v)

    one = sp.csr_matrix(
        (np.ones(nx), (np.repeat(np.arange(len(enum)), sizes), np.arange(nx))),
        shape=(len(enum), nvar),
    )
    A_rows.append(one)
    lb += [1.0] * len(enum)
    ub += [1.0] * len(enum)
    for lk in links:
        rows = lk.rows
        if isinstance(lk, UnitsLink):
            # weekly units over the limit's weekly units: >= 1 for a floor, <= 1 for a cap
            lim = lk.weekly_limit(prob)
            A_rows.append(coef(rows, lambda e, s, m, t=lim: e["q"][:, s].sum(axis=1) / t))
            lb.append(1.0 if lk.sense > 0 else -np.inf)
            ub.append(np.inf if lk.sense > 0 else 1.0)
        elif isinstance(lk, AverageChangeBudget):
            w = lk.weights(prob) * prob.p0[rows]
            wr = np.zeros(prob.n)
            wr[rows] = w / w.sum()
            A_rows.append(
                coef(
                    rows,
                    lambda e, s, m, w=wr: (e["prices"][:, s] * (w[m] / prob.p0[m])).sum(axis=1),
                )
            )
            lb.append(1 - lk.value / 100)
            ub.append(1 + lk.value / 100)
        else:
            raise UsageError(f"{lk.name}: not supported under cross-price demand")
    for lower, upper, f, _name in prob.ordering:
        # p[upper] - f p[lower] >= 0, scaled by the lower row's current price
        for lo_row, up_row in zip(lower.tolist(), upper.tolist(), strict=True):
            up = coef(np.array([up_row]), lambda e, s, m: e["prices"][:, s[0]])
            down = coef(np.array([lo_row]), lambda e, s, m: e["prices"][:, s[0]])
            A_rows.append((up - f * down) / prob.p0[lo_row])
            lb.append(0.0)
            ub.append(np.inf)
    for g in range(ng):
        rows = np.flatnonzero(groups == g)
        ref = float(np.mean(prob.p0[rows] / prob.fx[rows]))
        gap = float(np.nan_to_num(prob.parity_gap[rows[0]]))
        for r in rows:
            base = coef(
                np.array([r]), lambda e, s, m, f=ref: e["prices"][:, s[0]] / prob.fx[m[0]] / f
            )
            for mult, lo_, hi_ in ((-1.0, 0.0, np.inf), (-(1 + gap), -np.inf, 0.0)):
                row = base.toarray().ravel()
                row[nx + g] = mult
                A_rows.append(sp.csr_matrix(row))
                lb.append(lo_)
                ub.append(hi_)
    A = sp.vstack(A_rows).tocsr()
    c = np.zeros(nvar)
    c[:nx] = -V / scale
    integ = np.r_[np.zeros(nx) if relax else np.ones(nx), np.zeros(ng)]
    vub = np.r_[np.ones(nx), np.full(ng, np.inf)]
    cons = LinearConstraint(A, np.array(lb), np.array(ub))
    opts = {"time_limit": time_limit, "mip_rel_gap": MIP_REL_GAP, "presolve": True}
    res = milp(c, constraints=cons, integrality=integ, bounds=Bounds(0, vub), options=opts)
    if relax:
        if res.x is None:
            return {}
        mix = np.full(prob.n, np.nan)
        for b, e in enumerate(enum):
            mix[e["rows"]] = res.x[off[b] : off[b + 1]] @ e["prices"]
        return {"mixture": mix}
    if res.status == 2 or res.x is None:
        if res.status == 2:
            dg.raise_infeasible(
                [
                    f"{name} cannot be met together with the other constraints under "
                    "cross-price demand"
                    for name in [lk.name for lk in links]
                    + [f"ordering {od[3]}" for od in prob.ordering]
                ]
                or ["parity cannot be met on the candidate prices"]
            )
        raise SolverError(f"HiGHS MILP failed: {res.message}")
    choice = [int(np.argmax(res.x[off[b] : off[b + 1]])) for b in range(len(enum))]
    obj = -res.fun * scale
    dual = getattr(res, "mip_dual_bound", None)
    bound = -dual * scale if dual is not None else obj
    return {
        "choice": choice,
        "bound_excess": max(0.0, bound - obj),
        "milp": True,
        "status": "optimal" if res.status == 0 else "time_limit",
    }
