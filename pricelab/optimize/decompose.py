"""Decomposition: linking constraints priced out with multipliers (optimization.md).

Volume floors (sum q >= T over a group, groups disjoint) and shared stock pools
(H sum q <= S) are linear in quantities. With multipliers lam_g >= 0 and mu_p >= 0 each
row maximises (p - k_i) q_i(p) with k_i = c_i - lam_g(i) + mu_p(i): a closed form (or
the band search for parity items). Each group's usage is monotone in its multiplier, so
the multipliers come from vectorised bisection across all groups at once. The dual
function at the final multipliers is an upper bound on the optimum: its distance to
the returned (feasible) plan is the reported gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pricelab.optimize.band import Blocks, solve_band
from pricelab.optimize.budget_penalty import argmax_penalised, penalised_term
from pricelab.optimize.links import Link, StockPool, VolumeFloor
from pricelab.optimize.problem import Problem

ITERATIONS = 64


class Responder:
    """Best prices of all rows for given effective unit costs k."""

    def __init__(self, prob: Problem) -> None:
        self.prob = prob
        groups = np.full(prob.n, -1, dtype=np.int64)
        has = ~np.isnan(prob.parity_gap)
        if has.any():
            codes: dict[object, int] = {}
            item_rows: dict[object, list[int]] = {}
            for i in np.flatnonzero(has).tolist():
                item_rows.setdefault(prob.item[i], []).append(i)
            for it, rows in item_rows.items():
                if len(rows) > 1:
                    groups[rows] = codes.setdefault(it, len(codes))
        self.groups = groups
        self.blocks = (
            Blocks.build(groups, np.nan_to_num(prob.parity_gap)) if (groups >= 0).any() else None
        )
        self.band_low: np.ndarray | None = None
        self._last: np.ndarray | None = None

    def __call__(self, k: np.ndarray, theta: np.ndarray | None = None) -> np.ndarray:
        """Prices maximising sum (p - k) q(p) - theta q0 p under row limits and parity.

        ``theta`` (per row) is the price penalty of average-change budget multipliers
        (None: no budget); the previous response warm-starts the per-row Newton solve.
        """
        pr = self.prob
        pen = theta is not None and bool(np.any(theta))
        p = argmax_penalised(
            pr.lo, pr.hi, k, theta if pen else None, pr.p0, pr.q0, pr.e, guess=self._last
        )
        if pen:
            self._last = p
        if self.blocks is not None:
            pb, self.band_low, _ = solve_band(
                self.blocks, k, pr.lo, pr.hi, pr.fx, pr.p0, pr.q0, pr.e, theta if pen else None
            )
            p = np.where(self.groups >= 0, pb, p)
        return p


@dataclass
class Decomposition:
    """Prices and multipliers of the decomposed solve."""

    prices: np.ndarray
    free_prices: np.ndarray
    multipliers: dict[str, float]
    dual_bound: float
    row_multiplier: np.ndarray  # net k shift per row (for binding labels)


def _group_index(n: int, links: Sequence[Link]) -> np.ndarray:
    g = np.full(n, -1, dtype=np.int64)
    for j, link in enumerate(links):
        g[link.rows] = j
    return g


def _bisect(usage, need_up: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Smallest multiplier per group with usage(m) feasible; usage(m) -> bool array 'ok'."""
    lo = np.zeros_like(scale)
    hi = np.where(need_up, scale, 0.0)
    for _ in range(80):
        ok = usage(hi)
        if ok.all():
            break
        hi = np.where(ok, hi, hi * 2)
    for _ in range(ITERATIONS):
        mid = np.where(need_up, 0.5 * (lo + hi), 0.0)
        ok = usage(mid)
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
        if np.all(hi - lo <= 1e-12 * np.maximum(hi, 1e-300)):
            break
    return hi


def decompose(
    prob: Problem, resp: Responder | None = None, theta: np.ndarray | None = None
) -> Decomposition:
    """Solve bounds + margin + parity + disjoint volume floors + stock pools.

    The objective is summed in base currency (each row's money divided by its fx rate).
    ``theta`` (per row) adds the price penalty - H theta q0 p / fx of average-change
    budget multipliers (:mod:`pricelab.optimize.avg_change`); ``dual_bound`` then is the
    Lagrangian without the budgets' constant terms.
    """
    resp = resp or Responder(prob)
    vol = prob.links_of(VolumeFloor)
    pools = prob.links_of(StockPool)
    gv, gp = _group_index(prob.n, vol), _group_index(prob.n, pools)
    target = np.array([lk.target(prob) for lk in vol])
    stock = np.array([lk.value for lk in pools])
    scale_v = np.array([max(prob.p0[lk.rows].max(), 1e-9) for lk in vol])
    scale_p = np.array([max(prob.p0[lk.rows].max(), 1e-9) for lk in pools])
    cost = prob.cost

    def shift(lam: np.ndarray, mu: np.ndarray) -> np.ndarray:
        s = np.zeros(prob.n)
        if lam.size:
            s = s - np.where(gv >= 0, lam[np.maximum(gv, 0)], 0.0)
        if mu.size:
            s = s + np.where(gp >= 0, mu[np.maximum(gp, 0)], 0.0)
        return s * prob.fx  # multipliers are in base currency per unit

    def sums(p: np.ndarray, g: np.ndarray, size: int) -> np.ndarray:
        m = g >= 0
        return np.bincount(g[m], weights=prob.quantity(p)[m], minlength=size)

    def inner(lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not pools:
            return np.zeros(0), resp(cost + shift(lam, np.zeros(0)), theta)
        p_free = resp(cost + shift(lam, np.zeros(len(pools))), theta)
        need = prob.horizon * sums(p_free, gp, len(pools)) > stock * (1 + 1e-12)

        def ok(mu: np.ndarray) -> np.ndarray:
            q = sums(resp(cost + shift(lam, mu), theta), gp, len(pools))
            return prob.horizon * q <= stock * (1 + 1e-12)

        mu = _bisect(ok, need, scale_p) if need.any() else np.zeros(len(pools))
        return mu, resp(cost + shift(lam, mu), theta)

    lam = np.zeros(len(vol))
    mu, p = inner(lam)
    free = p if not pools else resp(cost, theta)
    if vol:
        need = sums(p, gv, len(vol)) < target * (1 - 1e-12)
        if need.any():
            lam = _bisect(
                lambda x: sums(inner(x)[1], gv, len(vol)) >= target * (1 - 1e-12), need, scale_v
            )
            mu, p = inner(lam)
    k = cost + shift(lam, mu)
    th = np.zeros(prob.n) if theta is None else theta
    inner_max = (penalised_term(p, k, th, prob.p0, prob.q0, prob.e) / prob.fx).sum()
    dual = prob.horizon * (inner_max - float(lam @ target)) + float(mu @ stock)
    mult = {lk.name: float(x) for lk, x in zip(vol, lam, strict=True)}
    mult.update({lk.name: float(x) for lk, x in zip(pools, mu, strict=True)})
    return Decomposition(p, free, mult, float(dual), k - cost)
