"""All linking multipliers at once: a projected Newton method on the K-dimensional dual.

Average-change budgets, volume floors and stock pools (optimization.md, "Building problems
that scale") are priced out together. With multipliers x = (lam_g for floors, mu_p for
pools, s+_b and s-_b for the two sides of each budget), all >= 0, every row maximises

    g_i(p) = (p - k_i) q_i(p) - theta_i q0_i p,   k_i = c_i + fx_i (mu_p(i) - lam_g(i)),
                                                  theta_i = s+_b(i) - s-_b(i),

exactly (:func:`pricelab.optimize.budget_penalty.argmax_penalised`), and the dual

    D(x) = H sum_i g_i(p_i(x)) / fx_i - H lam.T + mu.S + H sum_b (s+ (1 + B) R - s- (1 - B) R)

is an upper bound on the optimum for every x >= 0 (weekly targets T, stock S, baseline
budget revenue R, as in :mod:`avg_change`). D is convex; its gradient is the vector of
slacks (volume - T, S - H units, both budget sides), and where a row's response is an
interior stationary point, dp_i/dx = (w_i fx_i / H) z_i with z_i the row's slack gradient
and w_i = -1 / g_i''(p_i); so the Hessian is sum_i (w_i fx_i / H) z_i z_i^T, a K x K
matrix built from sparse rows in one product. Newton steps with an active set (x >= 0)
and a backtracking line search on D converge in a few responses instead of nested 1-D
searches (one per budget step).

Where a budget holds prices up (s- > 0) a row's problem is not concave: its response can
jump to its cap, D is then not smooth and the search stops where D no longer falls. The
plan is the response at the final x repaired onto the constraints: interior rows move
along their Newton directions (linear in the multipliers' change) until every slack is
>= a tiny margin. The reported bound is D at the final x, so the gap is proven either way.
Parity items (band search) are left to :func:`avg_change.solve_budgets`' searches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from pricelab.optimize.joint_layout import JointDual
from pricelab.optimize.joint_polish import polish
from pricelab.optimize.links import links_hold
from pricelab.optimize.problem import Problem

GAP_TOL = 1e-5  # a budget plan with a larger proven gap is compared with other routes
TOL = 1e-6  # relative slack at which a floor search stops (the polish makes it tight)
OUTER_TOL = 1e-6  # the same for budgets (their leftover slack costs more objective)
JUMP = 1e-5  # a bracket whose ends' slacks are both this close stops a search (a jump)
WIDTH = 1e-6  # relative bracket width at which a floor search stops at a larger jump
OUTER_WIDTH = 1e-5  # the same for budgets (the polishing LP takes up what is left)
MAX_STEPS = 60


@dataclass
class JointSolve:
    """Plan, dual bound and multipliers of the joint search."""

    prices: np.ndarray
    dual_bound: float
    multipliers: dict[str, float]  # floors, pools; budgets signed (> 0: upper side)
    tight_links: list[int]  # prob.links indices of budgets with a non-zero multiplier
    row_shift: np.ndarray  # k - cost per row (binding labels)
    steps: int  # responses computed


class _Roots:
    """Smallest x >= 0 with r(x) >= 0 per coordinate (r non-decreasing, maybe with jumps).

    Near the optimum most rows sit on a bound and r moves by the jumps of rows switching
    between two candidates, so the smooth part's slope (``slope``, from the Hessian) is
    used only until two points are known; then secant steps, and once the root is
    bracketed [lo (r < 0), hi (r >= 0)] Illinois regula falsi with bisection as a
    safeguard. A coordinate is done when |r| <= tol, or when the bracket's ends are both
    within ``JUMP`` (relative) or narrower than ``WIDTH``: it then sits at the feasible
    end. Vectorised over independent coordinates (floors of different groups; budgets of
    different components).
    """

    def __init__(self, x: np.ndarray, tol: np.ndarray, unit: np.ndarray, width: float) -> None:
        self.x, self.tol, self.unit, self.jump = x.copy(), tol, unit, tol * JUMP / TOL
        self.rel_width = width
        n = x.size
        self.lo, self.hi = np.full(n, -1.0), np.full(n, np.inf)  # lo -1: none known
        self.rlo, self.rhi = np.zeros(n), np.zeros(n)
        self.xprev, self.rprev = np.full(n, np.nan), np.full(n, np.nan)
        self.kept = np.zeros(n)  # Illinois: +1 / -1 the end kept last time (lo / hi moved)
        self.width = np.full(n, np.inf)
        self.done = np.zeros(n, dtype=bool)

    def update(self, r: np.ndarray, slope: Callable[[], np.ndarray]) -> np.ndarray:
        """Record r at ``self.x``; return the next point (``done`` marks converged ones).

        ``slope()`` (the smooth part's dr/dx) is called only where no secant is usable.
        """
        x = self.x
        feas = r >= 0
        self.hi, self.rhi = np.where(feas, x, self.hi), np.where(feas, r, self.rhi)
        self.lo, self.rlo = np.where(feas, self.lo, x), np.where(feas, self.rlo, r)
        known = (self.lo >= 0) & np.isfinite(self.hi)
        close = (np.abs(r) <= self.tol) | (feas & (x == 0))
        narrow = self.hi - self.lo <= self.rel_width * np.maximum(self.hi, 1e-300)
        jump = ~close & known & (narrow | ((self.rhi <= self.jump) & (-self.rlo <= self.jump)))
        self.done |= close | jump
        # Illinois: the end kept twice in a row has its value halved
        kept = np.where(feas, -1.0, 1.0)
        again = known & (kept == self.kept)
        rlo = np.where(again & (kept > 0), 0.5 * self.rlo, self.rlo)
        rhi = np.where(again & (kept < 0), 0.5 * self.rhi, self.rhi)
        self.rlo, self.rhi, self.kept = rlo, rhi, kept
        with np.errstate(all="ignore"):
            falsi = self.hi - rhi * (self.hi - self.lo) / (rhi - rlo)
            sec = (r - self.rprev) / (x - self.xprev)
        mid = 0.5 * (self.lo + self.hi)
        shrunk = (self.hi - self.lo) <= 0.5 * self.width
        self.width = np.where(known, self.hi - self.lo, np.inf)
        in_br = (falsi > self.lo) & (falsi < self.hi) & (shrunk | ~np.isfinite(self.width))
        bracketed = np.where(in_br, falsi, mid)
        use = np.isfinite(sec) & (sec > 0)
        need = ~use & ~known & ~self.done
        d = np.where(use, sec, slope() if need.any() else 0.0)
        with np.errstate(all="ignore"):
            step = -r / d
        up = x + np.where((d > 0) & np.isfinite(step), np.clip(step, 0.0, None), self.unit)
        up = np.minimum(up, x + np.maximum(4 * np.abs(x - np.nan_to_num(self.xprev)), self.unit))
        down = np.where((d > 0) & np.isfinite(step), np.maximum(x + step, 0.0), 0.0)
        nxt = np.where(known, bracketed, np.where(feas, down, up))
        nxt = np.where(jump, self.hi, np.where(self.done, x, nxt))
        self.xprev, self.rprev = x, r
        self.x = nxt
        return nxt


def _schur_slopes(H: np.ndarray, inner: np.ndarray, outer: np.ndarray) -> np.ndarray:
    """d r_outer / d x_outer with the ``inner`` coordinates re-optimised (Schur complement)."""
    Hoo = np.diag(H)[outer]
    if not inner.size:
        return Hoo
    Hii = H[np.ix_(inner, inner)] + 1e-14 * np.eye(inner.size) * max(np.abs(H).max(), 1e-300)
    Hio = H[np.ix_(inner, outer)]
    corr = np.einsum("ij,ij->j", Hio, np.linalg.lstsq(Hii, Hio, rcond=None)[0])
    return Hoo - corr


class _Search:
    """Nested searches: floors (inner, vectorised over floors) for each budget step."""

    def __init__(self, dual: JointDual) -> None:
        self.dual = dual
        self.best = np.inf  # smallest dual value seen: a bound on the optimum
        self.lam = np.zeros(dual.V)
        self.history: list[tuple[np.ndarray, np.ndarray]] = []  # (outer, floor multipliers)

    def guess(self, outer: np.ndarray) -> np.ndarray:
        """Floor multipliers extrapolated along the last two budget steps (warm start)."""
        if len(self.history) < 2:
            return self.lam
        (o1, l1), (o2, l2) = self.history[-2:]
        do = o2 - o1
        nn = float(do @ do)
        if nn == 0:
            return self.lam
        t = float((outer - o2) @ do) / nn
        out: np.ndarray = np.maximum(l2 + t * (l2 - l1), 0.0)
        return out

    def eval(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p, D = self.dual.respond(x)
        self.best = min(self.best, D)
        return p, self.dual.slack(p)

    def floor_slopes(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        """d slack / d lam per floor (the Hessian's diagonal)."""
        out: np.ndarray = np.diag(self.dual.hessian(x, p))[: self.dual.V]
        return out

    def budget_slopes(
        self, x: np.ndarray, p: np.ndarray, inner: np.ndarray, slot: np.ndarray
    ) -> np.ndarray:
        """d slack / d s per budget with the floors re-optimised (Schur complement)."""
        return _schur_slopes(self.dual.hessian(x, p), inner, slot)

    def inner(
        self, outer: np.ndarray, rel: float = TOL
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Floor multipliers for budget multipliers ``outer`` (x's budget slots), to a
        relative slack ``rel`` (looser while the budgets are far from theirs)."""
        d, V = self.dual, self.dual.V
        self.lam = self.guess(outer)
        x = np.concatenate([self.lam, outer])
        p, s = self.eval(x)
        if not V:
            return x, p, s
        roots = _Roots(self.lam, rel * np.maximum(d.scale[:V], 1e-300), d.unit[:V], WIDTH)
        for _ in range(MAX_STEPS):
            nxt = roots.update(s[:V], partial(self.floor_slopes, x, p))
            if np.array_equal(nxt, x[:V]) and roots.done.all():
                break
            x = np.concatenate([nxt, outer])
            p, s = self.eval(x)
            if roots.done.all():
                break
        self.lam = x[:V]
        self.history.append((outer.copy(), self.lam.copy()))
        return x, p, s


def _search(dual: JointDual) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Budget multipliers outside, floor multipliers inside: (x, response, best bound)."""
    srch = _Search(dual)
    V, J = dual.V, dual.J
    x, p, s = srch.inner(np.zeros(2 * J))
    up, dn = s[V : V + J], s[V + J :]
    side = np.where(
        up < -dual.tol_of(V, J, TOL), 1, np.where(dn < -dual.tol_of(V + J, J, TOL), -1, 0)
    )
    if np.any((side < 0) & dual.fixed[V + J :]):
        return None
    slot = V + np.where(side > 0, np.arange(J), J + np.arange(J))  # each budget's active side
    act = side != 0
    if not act.any():
        return x, p, srch.best
    roots = _Roots(
        np.zeros(J), OUTER_TOL * np.maximum(dual.scale[slot], 1e-300), np.full(J, 0.01), OUTER_WIDTH
    )
    roots.done |= ~act
    sig = np.zeros(J)
    for _ in range(MAX_STEPS):
        inner = np.flatnonzero(x[:V] > 0)
        nxt = roots.update(s[slot], partial(srch.budget_slopes, x, p, inner, slot))
        if roots.done.all() and np.array_equal(nxt, sig):
            break
        sig = nxt
        outer = np.zeros(2 * J)
        outer[slot - V] = sig
        far = float(np.max(np.abs(s[slot]) / np.maximum(dual.scale[slot], 1e-300)))
        x, p, s = srch.inner(outer, float(np.clip(0.001 * far, TOL, 1e-4)))
    return x, p, srch.best


def rel_gap(bound: float, objective: float) -> float:
    """Proven relative gap ``max(0, (bound - objective) / |objective|)``."""
    return max(0.0, (bound - objective) / max(abs(objective), 1e-12))


def solve_joint(prob: Problem) -> JointSolve | None:
    """Exact continuous plan with every budget, floor and pool priced out together.

    Returns None when the search cannot certify a feasible plan (the caller then uses the
    nested searches of :func:`avg_change.solve_budgets`, which also explain why not).
    """
    dual = JointDual(prob)
    if dual.P:  # stock pools stay with the nested searches of decompose.py
        return None
    with np.errstate(all="ignore"):
        found = _search(dual)
        if found is None:
            return None
        x, p, D = found
        fixed = polish(dual, x, p)
    if fixed is None or not np.all(np.isfinite(fixed)) or not links_hold(prob, fixed, 0.0):
        return None
    V, P, J = dual.V, dual.P, dual.J
    s = x[V + P : V + P + J] - x[V + P + J :]
    mult = dict(zip(dual.names, [*x[: V + P].tolist(), *s.tolist()], strict=True))
    tight = [j for j, sj in zip(dual.budgets, s, strict=True) if sj != 0]
    k, _ = dual.shifts(x)
    return JointSolve(fixed, float(D), mult, tight, k - prob.cost, dual.responses)
