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


def ladder_points(lo: float, hi: float, spacing: float, offset: float) -> np.ndarray:
    """Positive ladder prices k * spacing + offset inside [lo, hi] (with a 1e-9 tolerance)."""
    tol = 1e-9 * max(1.0, abs(hi) if np.isfinite(hi) else abs(lo))
    k0 = max(np.ceil((lo - offset - tol) / spacing), np.floor(-offset / spacing) + 1)
    k1 = np.floor((hi - offset + tol) / spacing)
    if k1 - k0 + 1 > MAX_CANDIDATES:
        return np.full(MAX_CANDIDATES + 1, np.nan)
    return np.arange(k0, k1 + 1) * spacing + offset


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
) -> MilpResult:
    """Build and solve the MILP.

    ``value`` (n, K) is the objective per candidate; ``draws_profit`` (S, n, K) and
    ``cvar`` = (alpha, floor) add the Rockafellar-Uryasev constraint
    CVaR_alpha(profit) >= floor. With ``slack=True`` every linking row gets a slack
    variable and the objective minimises total (scaled) slack: used for diagnosis.
    """
    n, K = P.shape
    valid = ~np.isnan(P)
    ri, ki = np.nonzero(valid)
    nx = ri.size
    # objective in units of a typical row's value (robust to extreme candidates)
    scale = max(float(np.nanmedian(np.where(valid, np.abs(value), np.nan))), 1e-12)
    Q = prob.quantity(np.where(valid, P, 1.0))[ri, ki]
    Pv = P[ri, ki]
    blocks: list[sp.csr_matrix] = []
    lbs: list[np.ndarray] = []
    ubs: list[np.ndarray] = []

    def add(rows, cols, vals, nrows, lb, ub, extra_cols=None):
        blocks.append((rows, cols, vals, nrows, extra_cols))
        lbs.append(np.asarray(lb, dtype=float))
        ubs.append(np.asarray(ub, dtype=float))

    add(ri, np.arange(nx), np.ones(nx), n, np.ones(n), np.ones(n))  # one price per row
    link_rows = []
    for lk in prob.links:
        m = np.isin(ri, lk.rows)
        if lk.kind == "min_volume_pct":
            t = lk.value / 100 * prob.q0[lk.rows].sum()
            add(np.zeros(m.sum(), int), np.flatnonzero(m), Q[m] / t, 1, [1.0], [np.inf])
        elif lk.kind == "inventory":
            add(
                np.zeros(m.sum(), int),
                np.flatnonzero(m),
                prob.horizon * Q[m] / lk.value,
                1,
                [-np.inf],
                [1.0],
            )
        else:
            w = prob.p0 * prob.q0 / prob.fx
            w = w / w[lk.rows].sum()
            x = lk.value / 100
            add(
                np.zeros(m.sum(), int),
                np.flatnonzero(m),
                (w[ri] * Pv / prob.p0[ri])[m],
                1,
                [1 - x],
                [1 + x],
            )
        link_rows.append(lk.name)
    if prob.ordering:
        colmap = np.full((n, K), -1, dtype=np.int64)
        colmap[ri, ki] = np.arange(nx)
        for lower, upper, f, _name in prob.ordering:
            # sum_k P[u,k] x[u,k] - f sum_k P[l,k] x[l,k] >= 0, scaled by p0[l]
            R_, C_, V_ = [], [], []
            for rows, sign in ((upper, 1.0), (lower, -f)):
                pi, kk = np.nonzero(valid[rows])
                R_.append(pi)
                C_.append(colmap[rows[pi], kk])
                V_.append(sign * P[rows[pi], kk] / prob.p0[lower[pi]])
            add(
                np.concatenate(R_),
                np.concatenate(C_),
                np.concatenate(V_),
                lower.size,
                np.zeros(lower.size),
                np.full(lower.size, np.inf),
            )
    ng = int(parity_groups.max()) + 1 if (parity_groups >= 0).any() else 0
    if ng:
        m = parity_groups[ri] >= 0
        g = parity_groups[ri][m]
        # float: bincount with weights (numpy's stubs type every bincount as integer)
        ref: np.ndarray = np.bincount(
            parity_groups[parity_groups >= 0],
            weights=(prob.p0 / prob.fx)[parity_groups >= 0],
            minlength=ng,
        )
        ref /= np.bincount(parity_groups[parity_groups >= 0], minlength=ng)
        b = (Pv / prob.fx[ri])[m] / ref[g]
        rows_map = -np.ones(n, int)
        prow = np.flatnonzero(parity_groups >= 0)
        rows_map[prow] = np.arange(prow.size)
        r = rows_map[ri[m]]
        cols = np.flatnonzero(m)
        gap_row = parity_gap[prow]
        # b_i - L_g >= 0  and  b_i - (1+g) L_g <= 0, L scaled by ref
        add(
            r,
            cols,
            b,
            prow.size,
            np.zeros(prow.size),
            np.full(prow.size, np.inf),
            ("L", np.arange(prow.size), parity_groups[prow], -np.ones(prow.size)),
        )
        add(
            r,
            cols,
            b,
            prow.size,
            np.full(prow.size, -np.inf),
            np.zeros(prow.size),
            ("L", np.arange(prow.size), parity_groups[prow], -(1 + gap_row)),
        )
    nS = 0
    if cvar is not None and draws_profit is not None:
        alpha, floor = cvar
        nS = draws_profit.shape[0]
        D = draws_profit[:, ri, ki] / scale  # (S, nx)
        # u_s + sum x D_s - t >= 0 ; t - 1/(alpha S) sum u >= floor
        rows = np.repeat(np.arange(nS), nx)
        cols = np.tile(np.arange(nx), nS)
        add(
            rows,
            cols,
            D.ravel(),
            nS,
            np.zeros(nS),
            np.full(nS, np.inf),
            ("U", np.arange(nS), np.arange(nS), np.ones(nS), -np.ones(nS)),
        )
        add(
            np.zeros(0, int),
            np.zeros(0, int),
            np.zeros(0),
            1,
            [floor / scale],
            [np.inf],
            ("T", alpha, nS),
        )
    # variable layout: x (nx) | L (ng) | u (nS) | t (1 if nS) | slacks (len links)
    off_L, off_u = nx, nx + ng
    off_t = off_u + nS
    off_s = off_t + (1 if nS else 0)
    nvar = off_s + (2 * len(link_rows) if slack else 0)
    mats, lb_all, ub_all = [], [], []
    for bi, (rows, cols, vals, nrows, extra) in enumerate(blocks):
        R, C, V = [rows], [cols], [vals]
        if extra is not None and extra[0] == "L":
            R.append(extra[1])
            C.append(off_L + extra[2])
            V.append(extra[3])  # noqa: E702
        elif extra is not None and extra[0] == "U":
            R += [extra[1], extra[2]]
            C += [off_u + extra[1], np.full(nS, off_t)]
            V += [extra[3], extra[4]]
        elif extra is not None and extra[0] == "T":
            R += [np.zeros(nS, int), np.zeros(1, int)]
            C += [off_u + np.arange(nS), np.array([off_t])]
            V += [np.full(nS, -1.0 / (extra[1] * nS)), np.array([1.0])]
        if slack and 1 <= bi <= len(link_rows):  # row + s_up - s_down within [lb, ub]
            R += [np.zeros(2, int)]
            C += [np.array([off_s + 2 * (bi - 1), off_s + 2 * (bi - 1) + 1])]
            V += [np.array([1.0, -1.0])]
        mats.append(
            sp.csr_matrix(
                (np.concatenate(V), (np.concatenate(R), np.concatenate(C))), shape=(nrows, nvar)
            )
        )
        lb_all.append(lbs[bi])
        ub_all.append(ubs[bi])
    A = sp.vstack(mats).tocsr()
    lb, ub = np.concatenate(lb_all), np.concatenate(ub_all)
    c = np.zeros(nvar)
    if slack:
        c[off_s:] = 1.0
    else:
        c[:nx] = -value[ri, ki] / scale
    integ = np.zeros(nvar)
    integ[:nx] = 1
    vlb, vub = np.zeros(nvar), np.ones(nvar)
    vub[off_L:] = np.inf
    if nS:
        vlb[off_t] = -np.inf
    vlb[off_s:] = 0.0
    cons = LinearConstraint(A, lb, ub)
    opts = {"time_limit": time_limit, "mip_rel_gap": MIP_REL_GAP, "presolve": True}
    res = milp(c, constraints=cons, integrality=integ, bounds=Bounds(vlb, vub), options=opts)
    if res.status == 2:
        return MilpResult(np.full(n, np.nan), np.nan, np.nan, np.nan, "infeasible")
    if res.x is None:
        raise SolverError(f"HiGHS MILP failed: {res.message}")
    x = res.x
    if slack:
        s = x[off_s:].reshape(-1, 2)
        return MilpResult(s[:, 0] - s[:, 1], float(s.sum()), np.nan, np.nan, "slack")
    lp = milp(
        c,
        constraints=cons,
        integrality=np.zeros(nvar),
        bounds=Bounds(vlb, vub),
        options={"time_limit": time_limit},
    )
    lp_bound = -lp.fun * scale if lp.status == 0 else np.nan
    choose = np.zeros((n, K))
    choose[ri, ki] = x[:nx]
    prices = P[np.arange(n), np.argmax(np.where(valid, choose, -1), axis=1)]
    dual = getattr(res, "mip_dual_bound", None)
    status = "optimal" if res.status == 0 else "time_limit"
    return MilpResult(
        prices, -res.fun * scale, -dual * scale if dual is not None else np.nan, lp_bound, status
    )
