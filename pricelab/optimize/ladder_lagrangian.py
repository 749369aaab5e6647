"""Ladders with volume floors and stock pools: Lagrangian relaxation of the linking rows.

Each linking constraint j (a volume floor sum q >= T_j, or a stock pool H sum q <= S_j,
groups disjoint) gets a multiplier lam_j >= 0 in base currency per unit. For fixed lam
every row, or parity block, solves independently on its ladder with the exact ladder
solver (:mod:`pricelab.optimize.ladder`) at the effective unit cost

    k_i = c_i - lam_j fx_i  (volume floor)     k_i = c_i + lam_j fx_i  (stock pool)

because h (p - c) q / fx + lam h q = h (p - (c - lam fx)) q / fx (base-currency objective,
market-currency prices; with ``objective: revenue`` c is 0 and k is negative).

The dual D_j(lam) = f_j(p(lam)) + lam s_j(p(lam)), with f_j the group's objective and
s_j = H (sum q - T_j) (floor) or S_j - H sum q (pool), is convex and piecewise linear on a
ladder. Its minimiser is found per group by intersecting the two supporting lines at the
bracket ends (lam_lo infeasible, lam_hi feasible): when D at the intersection equals the
lines, that point minimises D, and min D is an upper bound on the ladder optimum. The
plan returned is the (feasible) response at lam_hi; its distance to the bound is the
proven gap, which can be positive on a discrete ladder. Rows whose choice is the same at
both bracket ends keep it inside the bracket (the response is monotone in lam), so only
the rows that still flip are re-solved; the bound is re-checked with one full response.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from pricelab.optimize.closed_form import argmax_interval
from pricelab.optimize.decompose import Responder
from pricelab.optimize.ladder import best_on_ladder, ladder_prices, solve_ladder_band
from pricelab.optimize.links import UnitsLink
from pricelab.optimize.problem import Problem

MAX_STEPS = 200
FEAS = 1e-12  # relative tolerance on the linking rows (as in decompose.py)


@dataclass
class LadderDual:
    """Result of the Lagrangian ladder solve (``prices`` is None when it does not apply)."""

    prices: np.ndarray | None
    dual_bound: float
    multipliers: dict[str, float]
    tight_links: list[int]
    steps: int
    reason: str  # why the path does not apply ("" when it does)


def _applies(prob: Problem, resp: Responder, grp: np.ndarray) -> str:
    counts = np.zeros(prob.n, dtype=np.int64)
    for lk in prob.links:
        if not isinstance(lk, UnitsLink):
            return f"{lk.key} with a ladder"
        counts[lk.rows] += 1
    if (counts > 1).any():
        return "a row in two linking constraints"
    if resp.blocks is not None:
        R = resp.blocks.rows
        g = np.where(R >= 0, grp[np.maximum(R, 0)], -2)
        gmin = np.where(R >= 0, g, np.iinfo(np.int64).max).min(axis=1)
        gmax = g.max(axis=1)
        if (gmin != gmax).any():
            return "a parity item split across linking groups"
        free = np.isnan(prob.ladder_spacing) & (prob.lo != prob.hi)
        bad = np.where(R >= 0, free[np.maximum(R, 0)] & (grp[np.maximum(R, 0)] >= 0), False)
        if bad.any():
            return "a linked parity item without a ladder"
    return ""


class _Respond:
    """Exact best prices of a subset of rows (singles and whole parity blocks) for costs k."""

    def __init__(self, prob: Problem, resp: Responder) -> None:
        self.prob, self.resp = prob, resp
        self.lad = ~np.isnan(prob.ladder_spacing)
        self.inexact = False

    def __call__(self, k: np.ndarray, rows: np.ndarray, p: np.ndarray) -> np.ndarray:
        pr, out = self.prob, p.copy()
        single = rows[self.resp.groups[rows] < 0]
        if single.size:
            lad = single[self.lad[single]]
            if lad.size:
                out[lad], _ = best_on_ladder(
                    pr.lo[lad],
                    pr.hi[lad],
                    k[lad],
                    pr.p0[lad],
                    pr.q0[lad],
                    pr.e[lad],
                    pr.ladder_spacing[lad],
                    pr.ladder_offset[lad],
                )
            cont = single[~self.lad[single]]
            out[cont] = argmax_interval(
                pr.lo[cont], pr.hi[cont], k[cont], pr.p0[cont], pr.q0[cont], pr.e[cont]
            )
        blk = rows[self.resp.groups[rows] >= 0]
        if blk.size and self.resp.blocks is not None:
            R = self.resp.blocks.rows
            hit = np.zeros(pr.n, dtype=bool)
            hit[blk] = True
            sel = np.flatnonzero(np.where(R >= 0, hit[np.maximum(R, 0)], False).any(axis=1))
            r = R[sel][R[sel] >= 0]
            # the band enumeration's window is certified for unimodal rows only
            self.inexact |= bool(np.any((k[r] < 0) & (pr.e[r] > -1)))
            pb, _ = solve_ladder_band(
                R[sel],
                self.resp.blocks.gap[sel],
                k,
                pr.lo,
                pr.hi,
                pr.fx,
                pr.p0,
                pr.q0,
                pr.e,
                pr.ladder_spacing,
                pr.ladder_offset,
            )
            out[r] = pb[r]
        return out


def ladder_dual(prob: Problem, resp: Responder) -> LadderDual:
    """Ladder optimum under disjoint volume floors and stock pools, with its dual bound.

    Parameters
    ----------
    prob : Problem
        Problem with ladders and ``min_volume_pct`` / ``inventory`` links.
    resp : Responder
        Parity layout (and the continuous responder for rows without a ladder).

    Returns
    -------
    LadderDual
        ``prices`` None (with ``reason``) when the path does not apply or cannot certify
        (the caller then runs the candidate MILP); otherwise a feasible plan, the minimum
        of the Lagrangian dual (an upper bound on the ladder optimum, base currency over
        the horizon) and one multiplier per link.
    """
    links = prob.links
    J = len(links)
    grp = np.full(prob.n, -1, dtype=np.int64)
    for j, lk in enumerate(links):
        grp[lk.rows] = j
    why = _applies(prob, resp, grp)
    if why:
        return LadderDual(None, np.nan, {}, [], 0, why)
    units = cast(list[UnitsLink], links)  # _applies checked: every link counts units
    sgn = np.array([lk.sense for lk in units])
    rhs = np.array([lk.rhs(prob) for lk in units])
    m = grp >= 0
    gm = grp[m]

    def k_of(lam: np.ndarray) -> np.ndarray:
        return prob.cost - np.where(m, (sgn * lam)[np.maximum(grp, 0)], 0.0) * prob.fx

    def stats(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        f = np.bincount(gm, weights=prob.objective_value(p)[m], minlength=J)
        u = np.bincount(gm, weights=prob.quantity(p)[m], minlength=J)
        s = np.array([lk.slack(prob, x) for lk, x in zip(units, u, strict=True)], dtype=float)
        ok = np.array(
            [lk.units_hold(prob, x, FEAS) for lk, x in zip(units, u, strict=True)], dtype=bool
        )
        return f, s, ok

    respond = _Respond(prob, resp)
    p_lo, msgs = ladder_prices(prob, resp.groups, resp.blocks, resp(prob.cost))
    if msgs:
        return LadderDual(None, np.nan, {}, [], 0, "; ".join(msgs))
    f_lo, s_lo, ok = stats(p_lo)
    lam_lo, lam_hi = np.zeros(J), np.zeros(J)
    need = ~ok
    lam_hi[need] = [max(prob.p0[links[j].rows].max(), 1e-9) for j in np.flatnonzero(need)]
    p_hi = p_lo.copy()
    bad = need.copy()
    steps = 0
    for _ in range(80):  # bracket: grow lam until every violated group is feasible
        rows = np.flatnonzero(m & bad[np.maximum(grp, 0)])
        p_hi = respond(k_of(lam_hi), rows, p_hi)
        steps += 1
        _, _, ok = stats(p_hi)
        bad = need & ~ok
        if not bad.any():
            break
        lam_hi[bad] *= 2
    if bad.any():
        return LadderDual(
            None,
            np.nan,
            {},
            [],
            steps,
            f"{links[int(np.flatnonzero(bad)[0])].name} not met on the ladder",
        )
    f_hi, s_hi, _ = stats(p_hi)
    todo = need.copy()
    width = np.full(J, np.inf)
    for _ in range(MAX_STEPS):
        if not todo.any():
            break
        with np.errstate(divide="ignore", invalid="ignore"):
            x = (f_lo - f_hi) / (s_hi - s_lo)
        x = np.where(np.isfinite(x), np.clip(x, lam_lo, lam_hi), 0.5 * (lam_lo + lam_hi))
        # safeguard: if the last step shrank the bracket by less than half, bisect
        slow = (lam_hi - lam_lo) > 0.5 * width
        width = lam_hi - lam_lo
        x = np.where(slow, 0.5 * (lam_lo + lam_hi), x)
        flip = m & todo[np.maximum(grp, 0)] & (p_lo != p_hi)
        p_x = respond(k_of(np.where(todo, x, lam_hi)), np.flatnonzero(flip), p_lo)
        steps += 1
        f_x, s_x, ok_x = stats(p_x)
        line = np.maximum(f_lo + x * s_lo, f_hi + x * s_hi)
        d_x = f_x + x * s_x
        tol = 1e-12 * np.maximum(np.abs(line), 1e-300)
        done = todo & ~slow & (d_x <= line + tol)
        tiny = todo & (lam_hi - lam_lo <= 1e-13 * np.maximum(lam_hi, 1e-300))
        upd_hi = todo & ((~done & ok_x) | (done & ok_x & (f_x > f_hi)))
        upd_lo = todo & ~done & ~ok_x
        lam_hi = np.where(done | upd_hi, x, lam_hi)
        lam_lo = np.where(upd_lo, x, lam_lo)
        rows_hi = m & upd_hi[np.maximum(grp, 0)]
        rows_lo = m & upd_lo[np.maximum(grp, 0)]
        p_hi = np.where(rows_hi, p_x, p_hi)
        p_lo = np.where(rows_lo, p_x, p_lo)
        f_hi, s_hi = np.where(upd_hi, f_x, f_hi), np.where(upd_hi, s_x, s_hi)
        f_lo, s_lo = np.where(upd_lo, f_x, f_lo), np.where(upd_lo, s_x, s_lo)
        todo &= ~(done | tiny)
    # certify: one full response at the final multipliers gives the dual value (a valid
    # upper bound for any lam >= 0, whatever happened above), and the plan is checked
    lam = np.where(need, lam_hi, 0.0)
    p_full = respond(k_of(lam), np.flatnonzero(m), p_lo)
    if respond.inexact:
        return LadderDual(
            None, np.nan, {}, [], steps, "inelastic parity rows with a volume multiplier above cost"
        )
    f_d, s_d, _ = stats(p_full)
    _, s_p, ok_p = stats(p_hi)
    if not ok_p.all():
        return LadderDual(None, np.nan, {}, [], steps, "multiplier search did not converge")
    rest = float(prob.objective_value(p_hi)[~m].sum())
    bound = float((f_d + lam * s_d).sum()) + rest
    tight = [j for j in range(J) if need[j] or s_p[j] <= 1e-6 * abs(rhs[j])]
    mult = {lk.name: float(x) for lk, x in zip(links, lam, strict=True)}
    return LadderDual(p_hi, bound, mult, tight, steps, "")
