"""Refining the cross route's candidate prices around its plan.

On a coarse grid the combination MILP is exact on the candidates but can sit well below the
continuous optimum (1.5% below a fine brute force with a 5-point grid and a 2% average-change
budget). Each round polishes the plan with continuous prices: a local solve (SLSQP in
log-prices) from the MILP's plan over the rows with continuous prices in enumerated blocks,
under every constraint (units links, budgets, parity and ordering, the rows' limits; the
CVaR floor is left to the MILP), started from the plan and, in the first round, from each
block's best combination ignoring the links and from today's prices. The polished prices and the minor units either side of them
join the candidates and the MILP solves again. The candidates only grow, so every round's
plan is exact on a superset of the last round's candidates: the gap reported stays a proven
one on the final candidate set, which the certificate names. Rounds stop when a round gains
less than :data:`REFINE_GAIN` (relative), or after :data:`MAX_ROUNDS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

from pricelab.demand.curves import CrossElasticity
from pricelab.errors import UsageError
from pricelab.optimize.candidates import search_window
from pricelab.optimize.links import Link
from pricelab.optimize.minor_unit import neighbours, on_units
from pricelab.optimize.problem import Problem

REFINE_GAIN = 1e-7  # a round that gains less than this (relative) is the last
MAX_ROUNDS = 4
STRICT = 1e-7  # margin inside every constraint (shares of its limit, log-price for pairs)
MAX_POLISHED = 400  # rows with continuous prices polished by one local solve at most


@dataclass
class OnCandidates:
    """One candidate matrix, its blocks (enumerated or not) and the MILP's choice on it."""

    P: np.ndarray
    counts: np.ndarray
    blocks: list[np.ndarray]
    small: np.ndarray
    sizes: np.ndarray
    enum: list[dict[str, Any]]
    res: dict[str, Any]

    def prices(self, base: np.ndarray) -> np.ndarray:
        """``base`` with the enumerated blocks' chosen combinations written in."""
        p = base.copy()
        for e, k in zip(self.enum, self.res["choice"], strict=True):
            p[e["rows"]] = e["prices"][k]
        return p

    def value(self) -> float:
        """The enumerated blocks' objective at the chosen combinations."""
        return float(sum(e["value"][k] for e, k in zip(self.enum, self.res["choice"], strict=True)))


def refine(
    prob: Problem,
    curve: CrossElasticity,
    links: list[Link],
    groups: np.ndarray,
    state: OnCandidates,
    solve_on: Callable[[np.ndarray], OnCandidates],
) -> tuple[OnCandidates, int]:
    """Polish and re-solve (see the module docstring): the last state and its round count."""
    rows = np.zeros(prob.n, dtype=bool)
    for e in state.enum:
        rows[e["rows"]] = True
    free = np.flatnonzero(rows & np.isnan(prob.ladder_spacing) & (prob.lo < prob.hi) & ~prob.frozen)
    if free.size == 0 or free.size > MAX_POLISHED:
        return state, 0
    rounds = 0
    for r in range(MAX_ROUNDS):
        starts = [state.prices(prob.p0)]
        if r == 0:  # other basins: each block's best combination ignoring links, today's prices
            best = prob.p0.copy()
            for e in state.enum:
                best[e["rows"]] = e["prices"][int(np.argmax(e["value"]))]
            starts += [best, prob.p0.copy()]
        add = np.concatenate(
            [neighbours(prob, polish(prob, curve, links, groups, x, free)) for x in starts], axis=1
        )
        add[~np.isin(np.arange(prob.n), free)] = np.nan
        P = merge(prob, state.P, add)
        if (~np.isnan(P)).sum() == (~np.isnan(state.P)).sum():  # nothing new
            break
        try:
            nxt = solve_on(P)
        except UsageError:  # a block would grow past the exact route's size
            break
        if nxt.res["status"] == "infeasible":  # not on a superset of a feasible grid
            break
        gain = nxt.value() - state.value()
        state, rounds = nxt, rounds + 1
        if gain <= REFINE_GAIN * max(abs(state.value()), 1e-12):
            break
    return state, rounds


def polish(
    prob: Problem,
    curve: CrossElasticity,
    links: list[Link],
    groups: np.ndarray,
    p: np.ndarray,
    free: np.ndarray,
) -> np.ndarray:
    """A local optimum of the continuous problem from ``p`` over the rows ``free``
    (log-prices, SLSQP); ``p`` where the solve does not end at a feasible point."""
    M = curve.matrix.tocsr()
    MT = M.T.tocsr()
    w = prob.horizon / prob.fx
    scale = max(float(np.abs(w * (prob.p0 - prob.cost) * prob.q0).sum()), 1e-12)
    lo, hi = search_window(prob)
    base = np.log(p)

    def prices(u: np.ndarray) -> np.ndarray:
        x = base.copy()
        x[free] = u
        return np.exp(x)

    def q_of(pr: np.ndarray) -> np.ndarray:
        return prob.q0 * np.exp(M @ np.log(pr / prob.p0))

    def f(u: np.ndarray) -> tuple[float, np.ndarray]:
        pr = prices(u)
        q = q_of(pr)
        m = w * (pr - prob.cost) * q
        g = w * pr * q + MT @ m
        return -float(m.sum()) / scale, -g[free] / scale

    # each constraint with a margin, so that the polished prices meet it exactly
    cons = [
        {**c, "fun": (lambda u, f=c["fun"]: f(u) - STRICT)}
        for c in _constraints(prob, links, groups, free, prices, q_of, MT)
    ]
    u0 = base[free]
    bounds = list(zip(np.log(lo[free]), np.log(hi[free]), strict=True))
    res = minimize(
        f, u0, jac=True, method="SLSQP", bounds=bounds, constraints=cons,
        options={"maxiter": 200, "ftol": 1e-12},
    )  # fmt: skip
    if not np.all(np.isfinite(res.x)):
        return p
    u = np.clip(res.x, np.log(lo[free]), np.log(hi[free]))
    if any(np.min(c["fun"](u)) < -STRICT / 2 for c in cons):
        return p
    return prices(u)


def _constraints(
    prob: Problem,
    links: list[Link],
    groups: np.ndarray,
    free: np.ndarray,
    prices: Callable[[np.ndarray], np.ndarray],
    q_of: Callable[[np.ndarray], np.ndarray],
    MT: Any,
) -> list[dict[str, Any]]:
    """SLSQP inequality constraints (>= 0) in log-prices of the ``free`` rows."""
    out: list[dict[str, Any]] = []
    pos = np.full(prob.n, -1)
    pos[free] = np.arange(free.size)
    for lk in links:  # lower <= a @ q + b @ p <= upper, from the link's own MILP row
        wq, wp, lower, upper = lk.linear_terms(prob)
        sides = np.array([s for s, x in ((1.0, lower), (-1.0, upper)) if np.isfinite(x)])
        limits = np.array([x for x in (lower, upper) if np.isfinite(x)])

        def fun(u: np.ndarray, wq=wq, wp=wp, sides=sides, limits=limits) -> Any:
            p = prices(u)
            return sides * (wq @ q_of(p) + wp @ p - limits)

        def jac(u: np.ndarray, wq=wq, wp=wp, sides=sides) -> Any:
            p = prices(u)  # d/d log p_j of sum_i wq_i q_i + wp_i p_i
            g = (MT @ (wq * q_of(p)) + wp * p)[free]
            return sides[:, None] * g[None, :]

        out.append({"type": "ineq", "fun": fun, "jac": jac})
    pairs = _linear_pairs(prob, groups)
    if pairs:
        # u_a - u_b + c >= 0 for each pair: parity bands and ordering steps, in log-prices
        a_, b_, c_ = (np.array(x) for x in zip(*pairs, strict=True))

        def lfun(u: np.ndarray) -> Any:
            x = np.log(prices(u))
            return x[a_] - x[b_] + c_

        J = np.zeros((a_.size, free.size))
        for k, (a, b) in enumerate(zip(a_, b_, strict=True)):
            if pos[a] >= 0:
                J[k, pos[a]] += 1.0
            if pos[b] >= 0:
                J[k, pos[b]] -= 1.0
        out.append({"type": "ineq", "fun": lfun, "jac": lambda u: J})
    return out


def _linear_pairs(prob: Problem, groups: np.ndarray) -> list[tuple[int, int, float]]:
    """(a, b, c) with log p_a - log p_b + c >= 0: parity (every pair of one item's markets,
    base prices within the gap) and ordering (upper row at least ``f`` x the lower)."""
    out = []
    lfx = np.log(prob.fx)
    for g in np.unique(groups[groups >= 0]):
        rows = np.flatnonzero(groups == g)
        gap = np.log1p(float(np.nan_to_num(prob.parity_gap[rows[0]])))
        for a in rows:
            for b in rows:
                if a != b:  # b_b <= (1 + gap) b_a
                    out.append((int(a), int(b), float(gap - lfx[a] + lfx[b])))
    for lower, upper, f, _name in prob.ordering:
        for lo_row, up_row in zip(lower.tolist(), upper.tolist(), strict=True):
            out.append((int(up_row), int(lo_row), -float(np.log(f))))
    return out


def merge(prob: Problem, P: np.ndarray, add: np.ndarray) -> np.ndarray:
    """Candidates ``P`` plus ``add`` on the minor unit, sorted, repeats dropped."""
    M = np.sort(on_units(prob, np.sort(np.concatenate([P, add], axis=1), axis=1)), axis=1)
    same = np.zeros_like(M, dtype=bool)
    with np.errstate(invalid="ignore"):
        same[:, 1:] = np.isclose(M[:, 1:], M[:, :-1], rtol=1e-12, atol=0.0)
    M = np.sort(np.where(same, np.nan, M), axis=1)
    return M[:, ~np.all(np.isnan(M), axis=0)]
