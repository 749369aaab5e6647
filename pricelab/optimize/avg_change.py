"""Average-change budgets priced out with one multiplier each (optimization.md, "Building
problems that scale"): exact for continuous prices, no candidate grid.

A budget over rows b (``max_avg_change_pct B``) is the contract's revenue-weighted average
price change within +-B, with the weights of the candidate MILP (problem.py's links): the
baseline weekly revenue in base currency r_i = p0_i q0_i / fx_i, normalised over the
link's rows. It is linear in prices,

    (1 - B) R_b <= sum_{i in b} a_i p_i <= (1 + B) R_b,   a_i = q0_i / fx_i,  R_b = sum r_i,

and only one side can bind. With a signed multiplier s_b (s > 0: the upper side, s < 0:
the lower side; per unit of H sum a_i p_i) every row maximises
(p - k) q(p) - s_b q0 p (:mod:`pricelab.optimize.budget_penalty`) and the volume floors /
stock pools / parity keep their own multipliers and band search (:mod:`decompose`).
The dual D(s) = L(p(s), lam(s), mu(s)) + H sum_b (s_b R_b + |s_b| B R_b) is an upper
bound for every s; the budget usage sum a p(s) is non-increasing in s, so s_b comes from a
safeguarded regula falsi (Illinois) over the budgets at once, bracketed by a feasible and
an infeasible end. The plan is the response at the feasible end; its distance to D is the
reported gap.

Concavity: on the upper side (s > 0) every row problem is concave (quantity space for
e < -1, price space for -1 <= e < 0). On the lower side elastic rows are not (raising a
price is rewarded without limit past p_m), so a row can jump from its local maximum to its
cap: the budget then cannot be met with equality by the response, and the rows that jump
are moved back along the segment between the two ends of the bracket to make the budget
tight (profit rises along it for those rows); the remaining gap is reported. Lower sides
with uncapped elastic rows, and parity items under a binding lower side in problems of
fewer than ``LOWER_PARITY_MIN_ROWS`` rows, are left to the candidate MILP (reason in
``BudgetSolve.reason``).

Without parity items or stock pools :func:`solve_budgets` first prices budgets and
floors out jointly (:mod:`pricelab.optimize.joint_dual`: safeguarded secant searches with
warm starts and a polishing LP that switches the rows at a jump); the nested searches
below run only when that plan's proven gap is above ``GAP_TOL`` (the better plan and
the smaller bound are kept).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from pricelab.optimize.decompose import Decomposition, Responder, decompose
from pricelab.optimize.joint_dual import GAP_TOL, JointSolve, rel_gap, solve_joint
from pricelab.optimize.links import AverageChangeBudget, links_hold
from pricelab.optimize.problem import Problem

FEAS = 1e-12  # relative tolerance on the budget rows
TIGHT = 1e-10  # a feasible end this close to the limit stops the search
MAX_STEPS = 100
WIDTH = 1e-10  # relative bracket width at which a jump (non-concave rows) ends the search
# parity items under a binding lower side: their band search is not unimodal (a price reward
# makes elastic markets rise again toward their caps) and every step costs a full band search
# per floor multiplier. Below this many rows the candidate MILP is the faster route; above
# it the MILP is the slow one (150 items x 4 markets: 390 s) and the Lagrangian gap small
LOWER_PARITY_MIN_ROWS = 100
LOWER_PARITY_DOUBLINGS = 24  # then a budget not met after t = 2^24 goes to the MILP


@dataclass
class Budgets:
    """The average-change links laid out for vectorised work."""

    links: list[int]  # indices into prob.links
    group: np.ndarray  # (n,) budget index per row, -1 outside (budgets disjoint)
    block: np.ndarray  # (n,) budget whose linked rows (component) hold the row, -1 none
    a: np.ndarray  # (n,) q0 / fx
    revenue: np.ndarray  # (J,) R_b, baseline weekly revenue in base currency
    frac: np.ndarray  # (J,) B_b as a fraction

    @classmethod
    def build(cls, prob: Problem, resp: Responder) -> Budgets:
        """Budgets of ``prob`` (call :func:`structure` first: they must be unlinked)."""
        links = [j for j, lk in enumerate(prob.links) if isinstance(lk, AverageChangeBudget)]
        group = np.full(prob.n, -1, dtype=np.int64)
        comp = _components(prob, resp)
        owner = np.full(int(comp.max()) + 1, -1, dtype=np.int64)
        for b, j in enumerate(links):
            group[prob.links[j].rows] = b
            owner[comp[prob.links[j].rows[0]]] = b
        a = prob.q0 / prob.fx
        rev = np.array([float((prob.p0 * a)[prob.links[j].rows].sum()) for j in links])
        frac = np.array([prob.links[j].value / 100 for j in links])
        return cls(links, group, owner[comp], a, rev, frac)

    def usage(self, p: np.ndarray) -> np.ndarray:
        """sum_{i in b} a_i p_i per budget."""
        m = self.group >= 0
        out: np.ndarray = np.bincount(
            self.group[m], weights=(self.a * p)[m], minlength=len(self.links)
        )
        return out

    def per_row(self, s: np.ndarray) -> np.ndarray:
        """theta_i = s_b(i) (0 outside budgets)."""
        return np.where(self.group >= 0, s[np.maximum(self.group, 0)], 0.0)


def implied_caps(prob: Problem) -> None:
    """Give inelastic rows without a price cap the cap their budget implies (in place).

    sum a p <= (1 + B) R with every other row at its floor bounds p_i; without it an
    inelastic row (-1 <= e < 0, profit rising with price: optimization.md 2) would look
    unbounded although the budget bounds it. The cap is labelled ``max_avg_change_pct``.
    """
    for lk in prob.links_of(AverageChangeBudget):
        r = lk.rows
        a = prob.q0[r] / prob.fx[r]
        room = (1 + lk.value / 100) * float((a * prob.p0[r]).sum()) - float((a * prob.lo[r]).sum())
        cap = prob.lo[r] + room / a
        open_ = ~np.isfinite(prob.hi[r]) & (prob.e[r] >= -1) & ~prob.frozen[r]
        rows = r[open_]
        prob.hi[rows] = cap[open_]
        prob.hi_src[rows] = lk.key


def structure(prob: Problem, resp: Responder) -> str:
    """Why the multiplier path does not apply ("" when it does).

    Budgets are searched one multiplier each, vectorised, so two budgets must not be linked:
    not overlapping, and not connected through a volume floor, stock pool or parity item.
    """
    budgets = prob.links_of(AverageChangeBudget)
    if not budgets:
        return ""
    comp = _components(prob, resp)
    owner = [int(comp[lk.rows[0]]) for lk in budgets]
    if len(set(owner)) < len(owner):
        return (
            "two max_avg_change_pct budgets share rows or are linked through another "
            "constraint (volume floor, stock pool, parity)"
        )
    return ""


def _components(prob: Problem, resp: Responder) -> np.ndarray:
    """Connected components of rows linked by any link or parity item."""
    src, dst = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for lk in prob.links:
        src.append(lk.rows[:-1])
        dst.append(lk.rows[1:])
    grp = resp.groups
    if (grp >= 0).any():
        idx = np.flatnonzero(grp >= 0)
        idx = idx[np.argsort(grp[idx], kind="stable")]
        same = grp[idx[:-1]] == grp[idx[1:]]
        src.append(idx[:-1][same])
        dst.append(idx[1:][same])
    s, d = np.concatenate(src), np.concatenate(dst)
    g = sp.coo_matrix((np.ones(s.size), (s, d)), shape=(prob.n, prob.n))
    _, comp = connected_components(g, directed=False)
    return np.asarray(comp, dtype=np.int64)


@dataclass
class BudgetSolve:
    """Plan with the budgets priced out (``prices`` None with ``reason`` when not applied)."""

    prices: np.ndarray | None
    dual_bound: float
    multipliers: dict[str, float]  # every link: budgets signed (> 0 upper side binds)
    tight_links: list[int]
    row_shift: np.ndarray | None  # volume / pool shift of k per row (binding labels)
    steps: int
    reason: str
    method: str = "nested searches"


def _declined(reason: str, steps: int = 0) -> BudgetSolve:
    return BudgetSolve(None, np.nan, {}, [], None, steps, reason)


def solve_budgets(prob: Problem, resp: Responder) -> BudgetSolve:
    """Exact continuous plan under average-change budgets (and the decomposed constraints).

    Parameters
    ----------
    prob : Problem
        Continuous prices (no ladder); budgets pairwise unlinked (:func:`structure`).
    resp : Responder
        Row / parity-block responder.

    Returns
    -------
    BudgetSolve
        A feasible plan, the Lagrangian dual bound (base currency over the horizon) and the
        multipliers; or ``prices`` None and the reason (the caller runs the candidate MILP).
    """
    joint = solve_joint(prob) if resp.blocks is None else None
    if joint is not None:
        found = _from_joint(joint)
        obj = float(prob.objective_value(joint.prices).sum())
        if rel_gap(found.dual_bound, obj) <= GAP_TOL:
            return found
        nested = _nested(prob, resp)
        return _better(prob, found, nested)
    return _nested(prob, resp)


def _from_joint(js: JointSolve) -> BudgetSolve:
    method = "joint multipliers, polishing LP"
    return BudgetSolve(
        js.prices, js.dual_bound, js.multipliers, js.tight_links, js.row_shift, js.steps, "", method
    )


def _better(prob: Problem, a: BudgetSolve, b: BudgetSolve) -> BudgetSolve:
    """The better of two plans, with the smaller of their (both valid) dual bounds."""
    if a.prices is None or b.prices is None:
        return a
    best = a if prob.objective_value(a.prices).sum() >= prob.objective_value(b.prices).sum() else b
    return replace(best, dual_bound=min(a.dual_bound, b.dual_bound))


def _nested(prob: Problem, resp: Responder) -> BudgetSolve:
    """The budget multipliers by safeguarded regula falsi around the floors' bisection."""
    bd = Budgets.build(prob, resp)
    J = len(bd.links)
    up, dn = (1 + bd.frac) * bd.revenue, (1 - bd.frac) * bd.revenue

    def run(s: np.ndarray) -> tuple[Decomposition, np.ndarray]:
        dec = decompose(prob, resp, bd.per_row(s) if np.any(s) else None)
        return dec, bd.usage(dec.prices)

    dec0, u0 = run(np.zeros(J))
    side = np.where(u0 > up * (1 + FEAS), 1.0, np.where(u0 < dn * (1 - FEAS), -1.0, 0.0))
    if not side.any():
        return _finish(prob, bd, dec0, np.zeros(J), side, 1)
    low_rows = (bd.group >= 0) & (side[np.maximum(bd.group, 0)] < 0)
    if np.any(low_rows & ~np.isfinite(prob.hi)):
        return _declined(
            "the lower side of max_avg_change_pct binds and some rows have no "
            "max_increase_pct (the budget then has no exact multiplier)"
        )
    lower_parity = bool(np.any(_rows(bd, side < 0) & (resp.groups >= 0)))
    if lower_parity and prob.n < LOWER_PARITY_MIN_ROWS:
        return _declined("parity items under the binding lower side of max_avg_change_pct")
    target = np.where(side > 0, up, dn)

    def rho(u: np.ndarray) -> np.ndarray:  # > 0: infeasible; decreasing in t
        return side * (u - target)

    act = side != 0
    t_lo, r_lo, p_lo = np.zeros(J), rho(u0), dec0.prices.copy()
    t_hi = np.where(act, 1.0, 0.0)
    p_hi = dec0.prices.copy()
    r_hi = np.zeros(J)
    steps = 1
    bad = act.copy()
    for _ in range(LOWER_PARITY_DOUBLINGS if lower_parity else 80):  # bracket: grow t
        dec, u = run(side * t_hi)
        steps += 1
        r = rho(u)
        rows = _rows(bd, bad)
        newly = bad & (r <= 0)
        still = bad & (r > 0)
        p_hi = np.where(rows & _rows(bd, newly), dec.prices, p_hi)
        p_lo = np.where(rows & _rows(bd, still), dec.prices, p_lo)
        r_hi = np.where(newly, r, r_hi)
        t_lo, r_lo = np.where(still, t_hi, t_lo), np.where(still, r, r_lo)
        t_hi = np.where(still, 2 * t_hi, t_hi)
        bad = still
        if not bad.any():
            break
    if bad.any():
        name = prob.links[bd.links[int(np.flatnonzero(bad)[0])]].name
        return _declined(f"{name} cannot be met together with the other constraints", steps)
    todo = act & (-r_hi > TIGHT * target)
    width = t_hi - t_lo
    keep = np.zeros(J)  # Illinois: which end was kept last (+1 hi, -1 lo)
    for _ in range(MAX_STEPS):
        if not todo.any():
            break
        fl, fh = r_lo.copy(), r_hi.copy()
        fl = np.where(keep == -2, 0.5 * fl, fl)
        fh = np.where(keep == 2, 0.5 * fh, fh)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = t_hi - fh * (t_hi - t_lo) / (fh - fl)
        slow = (t_hi - t_lo) > 0.5 * width
        width = t_hi - t_lo
        mid = 0.5 * (t_lo + t_hi)
        x = np.where(~np.isfinite(x) | (x <= t_lo) | (x >= t_hi) | slow, mid, x)
        dec, u = run(side * np.where(todo, x, t_hi))
        steps += 1
        r = rho(u)
        ok = todo & (r <= 0)
        no = todo & (r > 0)
        p_hi = np.where(_rows(bd, ok), dec.prices, p_hi)
        p_lo = np.where(_rows(bd, no), dec.prices, p_lo)
        t_hi, r_hi = np.where(ok, x, t_hi), np.where(ok, r, r_hi)
        t_lo, r_lo = np.where(no, x, t_lo), np.where(no, r, r_lo)
        keep = np.where(
            ok, np.where(keep > 0, 2, 1), np.where(no, np.where(keep < 0, -2, -1), keep)
        )
        tiny = t_hi - t_lo <= WIDTH * np.maximum(t_hi, 1e-300)
        todo &= ~((ok & (-r <= TIGHT * target)) | tiny)
    s = side * t_hi
    dec, u = run(s)
    steps += 1
    if np.any(rho(u) > FEAS * target):  # the final response must be the feasible one
        dec = _replace_prices(dec, p_hi)
    dec = _tighten(prob, bd, dec, p_lo, side, target)
    return _finish(prob, bd, dec, s, side, steps)


def _rows(bd: Budgets, mask: np.ndarray) -> np.ndarray:
    """Rows linked to the budgets in ``mask`` (their prices move with its multiplier)."""
    return (bd.block >= 0) & mask[np.maximum(bd.block, 0)]


def _replace_prices(dec: Decomposition, p: np.ndarray) -> Decomposition:
    return Decomposition(p, dec.free_prices, dec.multipliers, dec.dual_bound, dec.row_multiplier)


def _tighten(
    prob: Problem,
    bd: Budgets,
    dec: Decomposition,
    p_lo: np.ndarray,
    side: np.ndarray,
    target: np.ndarray,
) -> Decomposition:
    """Use a budget's leftover slack by moving its rows toward the infeasible end.

    The usage is linear in prices, so alpha = slack / (usage(p_lo) - usage(p)) makes the
    budget tight; the move is kept only if every other link still holds and the
    objective rises (a jump of a non-concave row leaves slack that profit can use).
    """
    p = dec.prices
    u, u_lo = bd.usage(p), bd.usage(p_lo)
    slack = side * (target - u)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.clip(slack / (side * (u_lo - u)), 0.0, 1.0)
    use = (side != 0) & (slack > TIGHT * target) & np.isfinite(alpha) & (alpha > 0)
    if not use.any():
        return dec
    al = np.where(_rows(bd, use), alpha[np.maximum(bd.block, 0)], 0.0)
    cand = p + al * (p_lo - p)
    if np.any(side * (bd.usage(cand) - target) > FEAS * target) or not links_hold(prob, cand):
        return dec
    if prob.objective_value(cand).sum() <= prob.objective_value(p).sum():
        return dec
    return _replace_prices(dec, cand)


def _finish(
    prob: Problem, bd: Budgets, dec: Decomposition, s: np.ndarray, side: np.ndarray, steps: int
) -> BudgetSolve:
    const = prob.horizon * float((s * bd.revenue + np.abs(s) * bd.frac * bd.revenue).sum())
    mult = dict(dec.multipliers)
    mult.update({prob.links[j].name: float(x) for j, x in zip(bd.links, s, strict=True)})
    tight = [j for j, sd in zip(bd.links, side, strict=True) if sd != 0]
    return BudgetSolve(
        dec.prices, dec.dual_bound + const, mult, tight, dec.row_multiplier, steps, ""
    )
