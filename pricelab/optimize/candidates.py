"""Candidate-price MILP (optimization.md 5 and 6): ladders, parity, budgets, CVaR.

Each row chooses one of its candidate prices (x_ik binary, sum_k x_ik = 1). Parity uses
one continuous band variable L per item (L <= b_ik-weighted price <= (1 + g) L);
volume floors, stock pools and average-change budgets are single linear rows. Solved with
HiGHS through ``scipy.optimize.milp``; the LP relaxation gives the reported bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, milp

from pricelab.errors import SolverError, UsageError
from pricelab.optimize.closed_form import argmax_interval
from pricelab.optimize.problem import Problem

MAX_CANDIDATES = 400
MIP_REL_GAP = 1e-5  # relative gap at which HiGHS stops (reported with the plan)
STRICT_MARGIN = 2e-6  # linking rows narrowed by this when a plan broke one within HiGHS' MIP
# feasibility tolerance (1e-6 by default; scipy.optimize.milp does not expose it)


def search_window(prob: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Finite price range searched per row: [lo, hi], with open ends closed.

    A missing cap becomes max(2 p0, 2 p*, 2 lo) and a missing floor min(p0, p*) / 4,
    where p* is the row's own optimum; rows with both limits keep them exactly.
    """
    ps = argmax_interval(prob.lo, prob.hi, prob.cost, prob.p0, prob.q0, prob.e)
    ref = np.where(np.isfinite(ps) & (ps > 0), ps, prob.p0)
    top = np.where(
        np.isfinite(prob.hi), prob.hi, np.maximum.reduce([2 * prob.p0, 2 * ref, 2 * prob.lo])
    )
    bottom = np.where(prob.lo > 0, prob.lo, np.minimum(prob.p0, ref) / 4)
    return bottom, top


def candidate_matrix(prob: Problem, n_grid: int = 25) -> np.ndarray:
    """(n, K) candidate prices, NaN-padded: ladder points, or a grid plus key prices.

    Ladder rows get every positive ladder point in their window; other rows a geometric
    grid of ``n_grid`` prices plus their current price and own optimum; fixed rows
    (lo == hi) their one price. Vectorised over rows.
    """
    lo, hi = search_window(prob)
    lad = ~np.isnan(prob.ladder_spacing)
    s = np.where(lad, prob.ladder_spacing, 1.0)
    off = np.where(lad, prob.ladder_offset, 0.0)
    tol = 1e-9 * np.maximum(1.0, hi)
    k0 = np.maximum(np.ceil((lo - off - tol) / s), np.floor(-off / s) + 1)
    k1 = np.floor((hi - off + tol) / s)
    cnt = np.where(lad, np.maximum(k1 - k0 + 1, 0), 0).astype(np.int64)
    too_many = np.flatnonzero(cnt > MAX_CANDIDATES)
    if too_many.size:
        i = too_many[0]
        raise UsageError(
            f"{prob.label(i)}: ladder step {prob.ladder_spacing[i]:g} gives "
            f"more than {MAX_CANDIDATES} prices between {lo[i]:.2f} and "
            f"{hi[i]:.2f}; use a coarser step or tighter bounds (override per "
            "market)"
        )
    K = max(int(cnt.max(initial=0)), n_grid + 2, 1)
    j = np.arange(K)[None, :]
    ladder = np.where(j < cnt[:, None], (k0[:, None] + j) * s[:, None] + off[:, None], np.nan)
    ladder = np.clip(ladder, prob.lo[:, None], prob.hi[:, None])
    g = np.linspace(0.0, 1.0, n_grid)[None, :]
    grid = lo[:, None] * (hi / lo)[:, None] ** g
    ps = argmax_interval(prob.lo, prob.hi, prob.cost, prob.p0, prob.q0, prob.e)
    key = np.stack(
        [
            np.where((prob.p0 >= lo) & (prob.p0 <= hi), prob.p0, np.nan),
            np.where((ps >= lo) & (ps <= hi), ps, np.nan),
        ],
        axis=1,
    )
    free = np.sort(np.concatenate([grid, key], axis=1), axis=1)
    free = np.concatenate([free, np.full((prob.n, K - free.shape[1]), np.nan)], axis=1)
    fixed = np.where(j == 0, prob.lo[:, None], np.nan)
    out = np.where(lad[:, None], ladder, np.where((prob.lo == prob.hi)[:, None], fixed, free))
    keep = ~np.all(np.isnan(out), axis=0)
    keep[0] = True
    return out[:, keep]


def with_ordering_points(prob: Problem, P: np.ndarray) -> np.ndarray:
    """Add the prices that make an ordering pair tight to free (non-ladder) rows.

    Row u above row l gets f * (l's candidates) and l gets (u's candidates) / f, inside
    their limits, so a plan where the ordering binds is on the candidate set.
    """
    free = np.isnan(prob.ladder_spacing) & (prob.lo != prob.hi)
    extra: list[tuple[np.ndarray, np.ndarray]] = []
    for lower, upper, f, _name in prob.ordering:
        for dst, src, mult in ((upper, lower, f), (lower, upper, 1.0 / f)):
            m = free[dst]
            if m.any():
                extra.append((dst[m], P[src[m]] * mult))
    if not extra:
        return P
    add = np.full((prob.n, sum(x.shape[1] for _, x in extra)), np.nan)
    col = 0
    for rows, vals in extra:
        inside = (vals >= prob.lo[rows, None]) & (vals <= prob.hi[rows, None])
        add[rows, col : col + vals.shape[1]] = np.where(inside, vals, np.nan)
        col += vals.shape[1]
    out = np.sort(np.concatenate([P, add], axis=1), axis=1)
    return out[:, ~np.all(np.isnan(out), axis=0)]


@dataclass
class MilpResult:
    """Chosen prices and certificates of the candidate MILP."""

    prices: np.ndarray
    objective: float  # scaled back to money
    dual_bound: float  # HiGHS bound (money)
    lp_bound: float  # LP relaxation bound (money)
    status: str


@dataclass
class _Layout:
    """Variable layout: x (nx candidates) | L (ng parity bands) | u (nS) | t | slacks."""

    nx: int
    ng: int
    nS: int
    n_links: int
    slack: bool

    @property
    def off_L(self) -> int:
        return self.nx

    @property
    def off_u(self) -> int:
        return self.nx + self.ng

    @property
    def off_t(self) -> int:
        return self.off_u + self.nS

    @property
    def off_s(self) -> int:
        return self.off_t + (1 if self.nS else 0)

    @property
    def nvar(self) -> int:
        return self.off_s + (2 * self.n_links if self.slack else 0)


class _Rows:
    """Constraint blocks in COO pieces, each block one csr matrix (stacked in order)."""

    def __init__(self, lay: _Layout) -> None:
        self.lay = lay
        self.mats: list[sp.csr_matrix] = []
        self.lbs: list[np.ndarray] = []
        self.ubs: list[np.ndarray] = []

    def add(self, R: list, C: list, V: list, nrows: int, lb, ub) -> None:
        self.mats.append(
            sp.csr_matrix(
                (np.concatenate(V), (np.concatenate(R), np.concatenate(C))),
                shape=(nrows, self.lay.nvar),
            )
        )
        self.lbs.append(np.asarray(lb, dtype=float))
        self.ubs.append(np.asarray(ub, dtype=float))

    def constraint(self) -> LinearConstraint:
        return LinearConstraint(
            sp.vstack(self.mats).tocsr(), np.concatenate(self.lbs), np.concatenate(self.ubs)
        )


def _link_rows(rows: _Rows, prob: Problem, Q, Pv, ri, margin: float = 0.0) -> None:
    """One row per linking constraint (with a slack pair when diagnosing); ``margin``
    narrows each row's normalised bounds (HiGHS meets rows to 1e-7 only)."""
    lay = rows.lay
    for j, lk in enumerate(prob.links):
        m = np.isin(ri, lk.rows)
        coef, lo_b, hi_b = lk.milp_row(prob, Q, Pv, ri, m)
        if margin and np.isfinite(lo_b):
            lo_b += margin * max(1.0, abs(lo_b))
        if margin and np.isfinite(hi_b):
            hi_b -= margin * max(1.0, abs(hi_b))
        R, C, V = [np.zeros(m.sum(), int)], [np.flatnonzero(m)], [coef]
        if lay.slack:  # row + s_up - s_down within [lb, ub]
            R.append(np.zeros(2, int))
            C.append(np.array([lay.off_s + 2 * j, lay.off_s + 2 * j + 1]))
            V.append(np.array([1.0, -1.0]))
        rows.add(R, C, V, 1, [lo_b], [hi_b])


def _ordering_rows(rows: _Rows, prob: Problem, P: np.ndarray, valid, ri, ki) -> None:
    n, K = P.shape
    colmap = np.full((n, K), -1, dtype=np.int64)
    colmap[ri, ki] = np.arange(ri.size)
    for lower, upper, f, _name in prob.ordering:
        # sum_k P[u,k] x[u,k] - f sum_k P[l,k] x[l,k] >= 0, scaled by p0[l]
        R_, C_, V_ = [], [], []
        for sel, sign in ((upper, 1.0), (lower, -f)):
            pi, kk = np.nonzero(valid[sel])
            R_.append(pi)
            C_.append(colmap[sel[pi], kk])
            V_.append(sign * P[sel[pi], kk] / prob.p0[lower[pi]])
        R, C, V = [np.concatenate(R_)], [np.concatenate(C_)], [np.concatenate(V_)]
        rows.add(R, C, V, lower.size, np.zeros(lower.size), np.full(lower.size, np.inf))


def _parity_rows(rows: _Rows, prob: Problem, groups, gap, Pv, ri, margin: float = 0.0) -> None:
    """b_i - L_g >= 0 and b_i - (1 + g) L_g <= 0 (b: base-currency price over the reference).

    With ``margin`` both rows are narrowed by it where the gap is positive (b_i - L_g >= m,
    b_i - (1 + g) L_g <= -m), so a solution within HiGHS' feasibility tolerance still has
    max b <= (1 + g) min b exactly; a zero gap (equal prices) is left as it is."""
    n, ng, off_L = prob.n, rows.lay.ng, rows.lay.off_L
    m = groups[ri] >= 0
    g = groups[ri][m]
    # float: bincount with weights (numpy's stubs type every bincount as integer)
    ref: np.ndarray = np.bincount(
        groups[groups >= 0], weights=(prob.p0 / prob.fx)[groups >= 0], minlength=ng
    )
    ref /= np.bincount(groups[groups >= 0], minlength=ng)
    b = (Pv / prob.fx[ri])[m] / ref[g]
    rows_map = -np.ones(n, int)
    prow = np.flatnonzero(groups >= 0)
    rows_map[prow] = np.arange(prow.size)
    r = rows_map[ri[m]]
    cols = np.flatnonzero(m)
    band = [np.arange(prow.size)], [off_L + groups[prow]]
    k = prow.size
    m_row = np.where(gap[prow] > 0, margin, 0.0)
    rows.add([r, *band[0]], [cols, *band[1]], [b, -np.ones(k)], k, m_row, np.full(k, np.inf))
    rows.add(
        [r, *band[0]],
        [cols, *band[1]],
        [b, -(1 + gap[prow])],
        k,
        np.full(k, -np.inf),
        -m_row,
    )


def _cvar_rows(rows: _Rows, D: np.ndarray, alpha: float, floor: float) -> None:
    """u_s + sum x D_s - t >= 0 and t - 1/(alpha S) sum u >= floor (Rockafellar-Uryasev)."""
    lay = rows.lay
    nS, nx = lay.nS, lay.nx
    s_idx = np.arange(nS)
    rows.add(
        [np.repeat(s_idx, nx), s_idx, s_idx],
        [np.tile(np.arange(nx), nS), lay.off_u + s_idx, np.full(nS, lay.off_t)],
        [D.ravel(), np.ones(nS), -np.ones(nS)],
        nS,
        np.zeros(nS),
        np.full(nS, np.inf),
    )
    rows.add(
        [np.zeros(0, int), np.zeros(nS, int), np.zeros(1, int)],
        [np.zeros(0, int), lay.off_u + s_idx, np.array([lay.off_t])],
        [np.zeros(0), np.full(nS, -1.0 / (alpha * nS)), np.array([1.0])],
        1,
        [floor],
        [np.inf],
    )


def solve_milp(
    prob: Problem,
    P: np.ndarray,
    value: np.ndarray,
    *,
    parity_groups: np.ndarray,
    parity_gap: np.ndarray,
    draws_profit: np.ndarray | None = None,
    cvar: tuple[float, float] | None = None,
    time_limit: float = 600.0,
    slack: bool = False,
    relax: bool = False,
    margin: float = 0.0,
    node_limit: int | None = None,
) -> MilpResult:
    """Build and solve the MILP.

    ``value`` (n, K) is the objective per candidate; ``draws_profit`` (S, n, K) and
    ``cvar`` = (alpha, floor) add the Rockafellar-Uryasev constraint
    CVaR_alpha(profit) >= floor. With ``slack=True`` every linking row gets a slack
    variable and the objective minimises total (scaled) slack: used for diagnosis. With
    ``relax=True`` only the LP relaxation is solved and ``prices`` are each row's mixture
    sum_k x_ik P_ik (status "relaxed"): on continuous rows a price inside the row's limits
    that meets every constraint linear in prices (parity, ordering, average-change budgets)
    and every stock pool (demand is convex in price, so the mixture sells no more).
    ``margin`` (e.g. :data:`STRICT_MARGIN`) narrows every linking and parity row so that a
    solution HiGHS calls feasible meets it exactly, not only to its feasibility tolerance.
    ``node_limit`` stops the branch and bound after that many nodes: a limit on work done,
    which (unlike ``time_limit``, wall-clock seconds) gives the same plan on a loaded
    machine as on a quiet one.
    """
    n, K = P.shape
    valid = ~np.isnan(P)
    ri, ki = np.nonzero(valid)
    nx = ri.size
    # objective in units of a typical row's value (robust to extreme candidates)
    scale = max(float(np.nanmedian(np.where(valid, np.abs(value), np.nan))), 1e-12)
    Q = prob.quantity(np.where(valid, P, 1.0))[ri, ki]
    Pv = P[ri, ki]
    ng = int(parity_groups.max()) + 1 if (parity_groups >= 0).any() else 0
    use_cvar = cvar is not None and draws_profit is not None
    nS = draws_profit.shape[0] if use_cvar and draws_profit is not None else 0
    lay = _Layout(nx, ng, nS, len(prob.links), slack)
    rows = _Rows(lay)
    rows.add([ri], [np.arange(nx)], [np.ones(nx)], n, np.ones(n), np.ones(n))  # one price a row
    _link_rows(rows, prob, Q, Pv, ri, margin)
    if prob.ordering:
        _ordering_rows(rows, prob, P, valid, ri, ki)
    if ng:
        _parity_rows(rows, prob, parity_groups, parity_gap, Pv, ri, margin)
    if use_cvar and cvar is not None and draws_profit is not None:
        _cvar_rows(rows, draws_profit[:, ri, ki] / scale, cvar[0], cvar[1] / scale)
    opts: dict = {"time_limit": time_limit, "mip_rel_gap": MIP_REL_GAP, "presolve": True}
    if node_limit is not None:
        opts["node_limit"] = node_limit
    return _solve(rows, lay, P, value, ri, ki, scale, opts, relax)


def _solve(
    rows: _Rows, lay: _Layout, P, value, ri, ki, scale, opts: dict, relax=False
) -> MilpResult:
    n, K = P.shape
    nx, nvar = lay.nx, lay.nvar
    c = np.zeros(nvar)
    if lay.slack:
        c[lay.off_s :] = 1.0
    else:
        c[:nx] = -value[ri, ki] / scale
    integ = np.zeros(nvar)
    integ[:nx] = 0 if relax else 1
    vlb, vub = np.zeros(nvar), np.ones(nvar)
    vub[lay.off_L :] = np.inf
    if lay.nS:
        vlb[lay.off_t] = -np.inf
    vlb[lay.off_s :] = 0.0
    cons = rows.constraint()
    res = milp(c, constraints=cons, integrality=integ, bounds=Bounds(vlb, vub), options=opts)
    if res.status == 2:
        return MilpResult(np.full(n, np.nan), np.nan, np.nan, np.nan, "infeasible")
    if res.x is None:
        raise SolverError(f"HiGHS MILP failed: {res.message}")
    x = res.x
    if relax:
        mix = np.zeros((n, K))
        mix[ri, ki] = x[:nx] * P[ri, ki]
        return MilpResult(mix.sum(axis=1), -res.fun * scale, np.nan, -res.fun * scale, "relaxed")
    if lay.slack:
        s = x[lay.off_s :].reshape(-1, 2)
        return MilpResult(s[:, 0] - s[:, 1], float(s.sum()), np.nan, np.nan, "slack")
    lp = milp(
        c,
        constraints=cons,
        integrality=np.zeros(nvar),
        bounds=Bounds(vlb, vub),
        options={"time_limit": opts["time_limit"]},
    )
    lp_bound = -lp.fun * scale if lp.status == 0 else np.nan
    choose = np.zeros((n, K))
    choose[ri, ki] = x[:nx]
    prices = P[np.arange(n), np.argmax(np.where(valid_of(P), choose, -1), axis=1)]
    dual = getattr(res, "mip_dual_bound", None)
    status = "optimal" if res.status == 0 else "time_limit"
    return MilpResult(
        prices, -res.fun * scale, -dual * scale if dual is not None else np.nan, lp_bound, status
    )


def valid_of(P: np.ndarray) -> np.ndarray:
    """Which entries of a NaN-padded candidate matrix are candidates."""
    return ~np.isnan(P)
