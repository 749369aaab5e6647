"""Small blocks of the cross route: every price combination, and one MILP across blocks.

Each block of substitutes small enough is enumerated (:func:`enumerate_block`: every
combination of its rows' candidate prices with its exact objective and units under the
cross demand). :func:`choose_combinations` then picks one combination per block: the best
one when nothing links blocks, else a HiGHS MILP over the combinations in which parity,
ordering, volume floors, stock and average-change budgets are linear rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from pricelab.demand.curves import CrossElasticity
from pricelab.errors import SolverError
from pricelab.optimize.candidates import MIP_REL_GAP
from pricelab.optimize.links import Link
from pricelab.optimize.problem import Problem

#: no candidate cells (units, prices, rows, mask): a link's MILP row then says only its bounds
_NO_CELLS = (np.empty(0), np.empty(0), np.empty(0, dtype=int), np.empty(0, dtype=bool))


def enumerate_block(
    prob: Problem,
    curve: CrossElasticity,
    P: np.ndarray,
    counts: np.ndarray,
    rows: np.ndarray,
    E: np.ndarray | None = None,
) -> dict[str, Any]:
    """Every price combination of one block: prices, weekly units and objective.

    With own-elasticity draws ``E`` (S, n) (cross terms at their estimates) ``draws`` holds
    each combination's objective under each draw (S, combinations) and ``value`` is their
    mean: the expected objective the ``risk`` MILP maximises."""
    idx = np.indices(tuple(int(c) for c in counts[rows])).reshape(rows.size, -1).T
    prices = P[rows[None, :], idx]
    M = curve.matrix[rows][:, rows].toarray()
    x = np.log(prices / prob.p0[rows])
    q = prob.q0[rows] * np.exp(x @ M.T)
    margin = prob.horizon * (prices - prob.cost[rows]) / prob.fx[rows]
    out = {"rows": rows, "prices": prices, "q": q, "value": (margin * q).sum(axis=1)}
    if E is not None:
        # units under draw s: the cross terms' part of log q, plus the drawn own term
        cross = x @ M.T - x * np.diag(M)
        per = [(margin * prob.q0[rows] * np.exp(cross + x * e[rows])).sum(axis=1) for e in E]
        out["draws"] = np.array(per)
        out["value"] = out["draws"].mean(axis=0)
    return out


def choose_combinations(
    prob: Problem,
    enum: list[dict[str, Any]],
    links: list[Link],
    groups: np.ndarray,
    time_limit: float,
    relax: bool = False,
    cvar: tuple[float, float] | None = None,
    slack: bool = False,
) -> dict[str, Any]:
    """One combination per block: argmax, or the MILP when constraints link blocks.

    ``cvar`` = (alpha, floor): CVaR_alpha of the plan's objective over the blocks' draws
    (:func:`enumerate_block` with ``E``) >= floor, by Rockafellar-Uryasev: one free ``t``
    and one ``u_s >= 0`` per draw, ``u_s >= t - objective_s`` and
    ``t - sum(u) / (alpha S) >= floor``, all linear in the choice.

    ``relax``: solve the LP relaxation only and return ``{"mixture": prices}``, each row's
    price averaged over its block's combinations with the LP's weights (NaN outside the
    blocks), or ``{}`` when the relaxation is infeasible too. Parity, ordering and budgets
    are linear in prices, so the mixture meets them.

    Without a plan, ``{"status": "infeasible"}``. ``slack``: every linking row and the
    CVaR floor get slack variables (in shares of their limit), parity and ordering stay
    hard, and the total slack is minimised: ``{"status": "slack", "slack": {name: share}}``
    names what cannot be met together and by how much (infeasible: parity or ordering
    cannot be met on the candidates at all)."""
    if not links and not (groups >= 0).any() and not prob.ordering and cvar is None:
        return {
            "choice": [int(np.argmax(e["value"])) for e in enum],
            "bound_excess": 0.0,
            "milp": False,
            "status": "optimal",
        }
    nS = enum[0]["draws"].shape[0] if cvar is not None and enum else 0
    col = _Columns.of(prob, enum, groups, nS)
    nx, nvar, off = col.nx, col.nvar, col.off
    V = np.concatenate([e["value"] for e in enum])
    scale = max(float(np.median(np.abs(V))), 1e-12)
    A_rows, lb, ub, soft, parity_from = _rows(prob, col, links, groups)
    if len(enum) == 1 and not (relax or slack or nS):  # one block: every combination checked
        A1 = sp.vstack(A_rows).tocsr()[:, :nx]
        return _one_block(A1, lb, ub, parity_from, enum[0], groups, col.ng, prob)
    if nS and cvar is not None:
        A_rows += _cvar_rows(enum, nvar, nx + col.ng, nS, cvar[0], scale)
        lb += [0.0] * nS + [cvar[1] / scale]
        ub += [np.inf] * (nS + 1)
        name = f"risk cvar:{cvar[0]:g} floor {cvar[1]:,.2f} (the current prices' CVaR)"
        soft.append((len(lb) - 1, name, max(abs(cvar[1]), 1e-12) / scale))
    A = sp.vstack(A_rows).tocsr()
    c = np.zeros(nvar)
    c[:nx] = -V / scale
    integ = np.r_[np.zeros(nx) if relax else np.ones(nx), np.zeros(nvar - nx)]
    vlb = np.r_[np.zeros(nvar - 1), -np.inf if nS else 0.0]
    vub = np.r_[np.ones(nx), np.full(nvar - nx, np.inf)]
    if slack:  # row + unit (s+ - s-) within its limits; minimise s+ + s-
        k = len(soft)
        at = np.repeat([row for row, _, _ in soft], 2)
        unit = np.repeat([un for _, _, un in soft], 2) * np.tile([1.0, -1.0], k)
        S = sp.csr_matrix((unit, (at, np.arange(2 * k))), shape=(A.shape[0], 2 * k))
        A = sp.hstack([A, S]).tocsr()
        c = np.r_[np.zeros(nvar), np.ones(2 * k)]
        integ, vlb = np.r_[integ, np.zeros(2 * k)], np.r_[vlb, np.zeros(2 * k)]
        vub = np.r_[vub, np.full(2 * k, np.inf)]
    cons = LinearConstraint(A, np.array(lb), np.array(ub))
    opts = {"time_limit": time_limit, "mip_rel_gap": MIP_REL_GAP, "presolve": True}
    res = milp(c, constraints=cons, integrality=integ, bounds=Bounds(vlb, vub), options=opts)
    if relax:
        if res.x is None:
            return {}
        mix = np.full(prob.n, np.nan)
        for b, e in enumerate(enum):
            mix[e["rows"]] = res.x[off[b] : off[b + 1]] @ e["prices"]
        return {"mixture": mix}
    if res.status == 2:
        return {"status": "infeasible"}
    if slack and res.x is not None:
        sl = res.x[nvar:].reshape(-1, 2)
        return {
            "status": "slack",
            "slack": {name: float(a - b) for (_, name, _), (a, b) in zip(soft, sl, strict=True)},
        }
    if res.x is None:
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


@dataclass
class _Columns:
    """The MILP's columns: one per combination of each block (block ``b`` at
    ``off[b]:off[b + 1]``), one band variable per parity group, then with ``nS`` draws
    ``u_1..u_S`` and ``t`` (the CVaR rows). ``where`` / ``slot``: each row's block and its
    place in the block (-1 outside the enumerated blocks)."""

    enum: list[dict[str, Any]]
    off: np.ndarray
    where: np.ndarray
    slot: np.ndarray
    ng: int
    nvar: int

    @classmethod
    def of(cls, prob: Problem, enum: list[dict[str, Any]], groups: np.ndarray, nS: int) -> _Columns:
        off = np.cumsum([0, *(e["value"].size for e in enum)])
        where = np.full(prob.n, -1)
        slot = np.full(prob.n, -1)
        for b, e in enumerate(enum):
            where[e["rows"]] = b
            slot[e["rows"]] = np.arange(e["rows"].size)
        ng = int(groups.max()) + 1 if (groups >= 0).any() else 0
        return cls(enum, off, where, slot, ng, int(off[-1]) + ng + (nS + 1 if nS else 0))

    @property
    def nx(self) -> int:
        """Number of combination columns."""
        return int(self.off[-1])

    def coef(self, rows: np.ndarray, per: Any) -> sp.csr_matrix:
        """A constraint row summing ``per(block, local rows, rows)`` over the combinations."""
        v = np.zeros(self.nvar)
        for b in np.unique(self.where[rows]):
            mine = rows[self.where[rows] == b]
            v[self.off[b] : self.off[b + 1]] += per(self.enum[b], self.slot[mine], mine)
        return sp.csr_matrix(v)


def _link_cells(
    prob: Problem, lk: Link, e: dict[str, Any], s: np.ndarray, m: np.ndarray
) -> np.ndarray:
    """The link's own MILP row (as in the own-price candidate MILP) on each cell
    (combination x row) of a block, summed per combination."""
    k = e["value"].size
    Q, Pv = e["q"][:, s].ravel(), e["prices"][:, s].ravel()
    c, _, _ = lk.milp_row(prob, Q, Pv, np.tile(m, k), np.ones(Q.size, dtype=bool))
    return np.asarray(c).reshape(k, s.size).sum(axis=1)


def _rows(
    prob: Problem, col: _Columns, links: list[Link], groups: np.ndarray
) -> tuple[list[sp.csr_matrix], list[float], list[float], list[tuple[int, str, float]], int]:
    """The MILP's rows: one combination per block, the links, ordering, then parity (two
    rows per parity row, from the returned index on): ``(rows, lower, upper, soft,
    parity_from)``, ``soft`` the links' (row, name, unit of its slack)."""
    nx, enum = col.nx, col.enum
    sizes = [e["value"].size for e in enum]
    one = sp.csr_matrix(
        (np.ones(nx), (np.repeat(np.arange(len(enum)), sizes), np.arange(nx))),
        shape=(len(enum), col.nvar),
    )
    A_rows: list[sp.csr_matrix] = [one]
    lb: list[float] = [1.0] * len(enum)
    ub: list[float] = [1.0] * len(enum)
    soft: list[tuple[int, str, float]] = []
    for lk in links:
        soft.append((len(lb), lk.name, 1.0))
        A_rows.append(col.coef(lk.rows, partial(_link_cells, prob, lk)))
        _, lo_b, hi_b = lk.milp_row(prob, *_NO_CELLS)  # the row's bounds
        lb.append(lo_b)
        ub.append(hi_b)
    for lower, upper, f, _name in prob.ordering:
        # p[upper] - f p[lower] >= 0, scaled by the lower row's current price
        for lo_row, up_row in zip(lower.tolist(), upper.tolist(), strict=True):
            up = col.coef(np.array([up_row]), lambda e, s, m: e["prices"][:, s[0]])
            down = col.coef(np.array([lo_row]), lambda e, s, m: e["prices"][:, s[0]])
            A_rows.append((up - f * down) / prob.p0[lo_row])
            lb.append(0.0)
            ub.append(np.inf)
    parity_from = len(lb)
    for g in range(col.ng):
        rows = np.flatnonzero(groups == g)
        ref = float(np.mean(prob.p0[rows] / prob.fx[rows]))
        gap = float(np.nan_to_num(prob.parity_gap[rows[0]]))
        for r in rows:
            base = col.coef(
                np.array([r]), lambda e, s, m, f=ref: e["prices"][:, s[0]] / prob.fx[m[0]] / f
            )
            for mult, lo_, hi_ in ((-1.0, 0.0, np.inf), (-(1 + gap), -np.inf, 0.0)):
                row = base.toarray().ravel()
                row[nx + g] = mult
                A_rows.append(sp.csr_matrix(row))
                lb.append(lo_)
                ub.append(hi_)
    return A_rows, lb, ub, soft, parity_from


def _cvar_rows(
    enum: list[dict[str, Any]], nvar: int, off_u: int, nS: int, alpha: float, scale: float
) -> list[sp.csr_matrix]:
    """Rockafellar-Uryasev rows: ``u_s + objective_s - t >= 0`` per draw, then
    ``t - sum(u) / (alpha S) >= floor`` (objectives in units of ``scale``)."""
    D = np.concatenate([e["draws"] for e in enum], axis=1) / scale  # (S, nx)
    nx = D.shape[1]
    t = off_u + nS
    per = sp.hstack(
        [
            sp.csr_matrix(D),
            sp.csr_matrix((nS, off_u - nx)),  # the parity groups' band variables
            sp.identity(nS, format="csr"),
            sp.csr_matrix(-np.ones((nS, 1))),
        ]
    ).tocsr()
    last = np.zeros(nvar)
    last[off_u : off_u + nS] = -1.0 / (alpha * nS)
    last[t] = 1.0
    return [per, sp.csr_matrix(last)]


def _one_block(
    A: sp.csr_matrix,
    lb: list[float],
    ub: list[float],
    parity_from: int,
    e: dict[str, Any],
    groups: np.ndarray,
    ng: int,
    prob: Problem,
) -> dict[str, Any]:
    """The best combination of a single block that meets every row (exact: no MILP).

    Each combination is one column of the rows before ``parity_from``; parity holds when
    each item's base prices fit one band."""
    tol = 1e-12
    V = A.toarray()
    lo, hi = np.array(lb), np.array(ub)
    rows = np.arange(len(lb)) < parity_from  # parity rows need their band variable: below
    ok = np.all(
        (V[rows] >= lo[rows, None] - tol * np.maximum(1, np.abs(lo[rows, None])))
        & (V[rows] <= hi[rows, None] + tol * np.maximum(1, np.abs(hi[rows, None]))),
        axis=0,
    )
    slot = {int(r): k for k, r in enumerate(e["rows"])}
    for g in range(ng):
        mine = [r for r in np.flatnonzero(groups == g).tolist() if r in slot]
        b = e["prices"][:, [slot[r] for r in mine]] / prob.fx[mine]
        gap = float(np.nan_to_num(prob.parity_gap[mine[0]]))
        ok &= b.max(axis=1) <= (1 + gap) * b.min(axis=1) * (1 + tol)
    if not ok.any():
        return {"status": "infeasible"}
    k = int(np.argmax(np.where(ok, e["value"], -np.inf)))
    return {"choice": [k], "bound_excess": 0.0, "milp": False, "status": "optimal"}
