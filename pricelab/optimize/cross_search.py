"""Large blocks of the cross route: best-response search and a proven upper bound.

A block of substitutes with too many price combinations to enumerate is priced by
coordinate ascent over its candidate prices (from the current and the own-optimal prices),
and its optimum is bounded from above by a concave relaxation in log-price space solved by
best-first branch and bound (:func:`relaxation_bound`); the route reports the gap.
"""

from __future__ import annotations

import numpy as np

from pricelab.demand.curves import CrossElasticity
from pricelab.optimize.candidates import search_window
from pricelab.optimize.problem import Problem


def block_objective(
    prob: Problem, curve: CrossElasticity, p: np.ndarray, rows: np.ndarray | None = None
) -> np.ndarray:
    """Per-row objective over the horizon (base currency) at the full price vector ``p``."""
    q = curve.quantity(p)
    v = prob.horizon * (p - prob.cost) * q / prob.fx
    return v if rows is None else v[rows]


def best_response(
    prob: Problem, curve: CrossElasticity, P: np.ndarray, counts: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """Coordinate ascent on the candidates from the current and the own-optimal prices."""
    Mc = curve.matrix.tocsc()
    best_p, best_v = None, -np.inf
    own = np.array(
        [_nearest(P[r, : counts[r]], x) for r, x in zip(rows, prob.p0[rows], strict=True)]
    )
    values = prob.objective_value(np.where(np.isnan(P), 1.0, P))
    start2 = P[rows, np.nanargmax(np.where(np.isnan(P[rows]), -np.inf, values[rows]), axis=1)]
    for start in (own, start2):
        p = prob.p0.copy()
        p[rows] = start
        for _ in range(100):
            moved = False
            for r in rows:
                col = Mc[:, r]
                s = col.indices
                cand = P[r, : counts[r]]
                q = curve.quantity(p)
                shift = np.exp(np.outer(np.log(cand / p[r]), col.data))  # (K, |s|)
                price = np.broadcast_to(p[s], shift.shape).copy()
                price[:, s == r] = cand[:, None]
                v = (prob.horizon * (price - prob.cost[s]) * q[s] * shift / prob.fx[s]).sum(axis=1)
                k = int(np.argmax(v))
                cur = float((prob.horizon * (p[s] - prob.cost[s]) * q[s] / prob.fx[s]).sum())
                if v[k] > cur * (1 + 1e-12) + 1e-12 and cand[k] != p[r]:
                    p[r] = cand[k]
                    moved = True
            if not moved:
                break
        val = float(block_objective(prob, curve, p, rows).sum())
        if val > best_v:
            best_p, best_v = p[rows].copy(), val
    assert best_p is not None
    return best_p


def _nearest(cands: np.ndarray, x: float) -> float:
    return float(cands[np.argmin(np.abs(cands - x))])


def relaxation_bound(
    prob: Problem,
    curve: CrossElasticity,
    rows: np.ndarray,
    incumbent: float = -np.inf,
    max_nodes: int = 300,
    rtol: float = 1e-4,
) -> float:
    """Upper bound on a block's objective over its price window (log-price relaxation).

    With u = log(p / p0) in a box, revenue_i = p0 q0 exp(a_i'u) (a_i: row i of the matrix
    plus 1 on the diagonal) is convex in u: over the box it lies below its secant on the
    range [L_i, U_i] of a_i'u. The cost term -c q0 exp(b_i'u) is concave, so the relaxed
    objective f is concave; at any point x, f(x) + max over the box of grad f(x)'(u - x)
    bounds it from above (rigorously, however inexact the local solve). Boxes are split
    best-first on their widest coordinate until the bound is within ``rtol`` of
    ``incumbent`` or ``max_nodes`` boxes were solved; the largest open bound is returned.
    """
    import heapq

    lo, hi = search_window(prob)
    lo_b, hi_b = np.log(lo[rows] / prob.p0[rows]), np.log(hi[rows] / prob.p0[rows])
    B = curve.matrix[rows][:, rows].toarray()
    A = B + np.eye(rows.size)
    w = prob.horizon / prob.fx[rows]
    rev = w * prob.p0[rows] * prob.q0[rows]
    cost = w * prob.cost[rows] * prob.q0[rows]
    scale = max(float(rev.sum()), 1e-12)
    rev, cost = rev / scale, cost / scale

    def node(ulo: np.ndarray, uhi: np.ndarray) -> float:
        L = np.minimum(A * ulo, A * uhi).sum(axis=1)
        U = np.maximum(A * ulo, A * uhi).sum(axis=1)
        eL = np.exp(L)
        slope = np.where(U - L > 1e-12, (np.exp(U) - eL) / np.maximum(U - L, 1e-300), eL)

        def fg(u: np.ndarray) -> tuple[float, np.ndarray]:
            ec = cost * np.exp(B @ u)
            f = float(rev @ (eL + slope * (A @ u - L)) - ec.sum())
            return f, A.T @ (rev * slope) - B.T @ ec

        # projected gradient ascent with backtracking: any point gives a valid bound,
        # a better point a tighter one
        x = (ulo + uhi) / 2
        f, g = fg(x)
        step = 1.0
        for _ in range(200):
            xn = np.clip(x + step * g, ulo, uhi)
            fn, gn = fg(xn)
            if fn >= f + 1e-4 * float(g @ (xn - x)):
                moved = float(np.abs(xn - x).max())
                x, f, g, step = xn, fn, gn, step * 2.0
                if moved < 1e-10:
                    break
            else:
                step *= 0.5
                if step < 1e-14:
                    break
        return float(f + np.maximum(g * (ulo - x), g * (uhi - x)).sum())

    target = incumbent / scale
    heap = [(-node(lo_b, hi_b), 0, lo_b, hi_b)]
    count = 1
    while heap and count < max_nodes:
        nb, _, ulo, uhi = heap[0]
        if -nb <= target + rtol * abs(target):
            break
        heapq.heappop(heap)
        j = int(np.argmax(uhi - ulo))
        mid = (ulo[j] + uhi[j]) / 2
        for a_, b_ in ((ulo[j], mid), (mid, uhi[j])):
            lo2, hi2 = ulo.copy(), uhi.copy()
            lo2[j], hi2[j] = a_, b_
            count += 1
            heapq.heappush(heap, (-node(lo2, hi2), count, lo2, hi2))
    best = max(-heap[0][0], target) if heap else target
    return float(best) * scale * (1 + 1e-9)
