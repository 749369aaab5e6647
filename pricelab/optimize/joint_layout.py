"""The joint dual's layout: multipliers, row responses, dual value, slacks, Hessian.

See :mod:`pricelab.optimize.joint_dual` for the method. The multipliers are
x = (lam per volume floor, mu per stock pool, s+ and s- per average-change budget), all
>= 0; :class:`JointDual` turns them into every row's effective cost and price penalty,
the rows' best responses (:func:`argmax_penalised`), the dual value D(x), its gradient
(the constraints' slacks) and the Hessian of its smooth part.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from pricelab.optimize.budget_penalty import argmax_penalised, penalised_term
from pricelab.optimize.links import AverageChangeBudget, StockPool, VolumeFloor
from pricelab.optimize.problem import Problem


class JointDual:
    """Multiplier layout, responses, dual value, slacks and Hessian of one problem."""

    def __init__(self, prob: Problem) -> None:
        self.prob = prob
        vol, pools = prob.links_of(VolumeFloor), prob.links_of(StockPool)
        self.budgets = [j for j, lk in enumerate(prob.links) if isinstance(lk, AverageChangeBudget)]
        V, P, J = len(vol), len(pools), len(self.budgets)
        self.V, self.P, self.J, self.K = V, P, J, V + P + 2 * J
        self.names = [lk.name for lk in vol] + [lk.name for lk in pools]
        self.names += [prob.links[j].name for j in self.budgets]
        n = prob.n
        self.gv, self.gp, self.gb = (np.full(n, -1, dtype=np.int64) for _ in range(3))
        for j, lk in enumerate(vol):
            self.gv[lk.rows] = j
        for j, pool in enumerate(pools):
            self.gp[pool.rows] = j
        for b, j in enumerate(self.budgets):
            self.gb[prob.links[j].rows] = b
        self.target = np.array([lk.target(prob) for lk in vol], dtype=float)
        self.stock = np.array([lk.value for lk in pools], dtype=float)
        self.a = prob.q0 / prob.fx
        self.rev = np.array(
            [float((prob.p0 * self.a)[prob.links[j].rows].sum()) for j in self.budgets]
        )
        self.frac = np.array([prob.links[j].value / 100 for j in self.budgets], dtype=float)
        h = prob.horizon
        self.scale = np.concatenate([h * self.target, self.stock, h * self.rev, h * self.rev])
        # the lower side of a budget over rows without a cap has no multiplier (rows jump to inf)
        open_ = np.array(
            [bool(np.any(~np.isfinite(prob.hi[prob.links[j].rows]))) for j in self.budgets]
        )
        self.unit = np.array([max(float(prob.p0[lk.rows].mean()), 1e-9) for lk in vol])
        self.fixed = np.concatenate([np.zeros(V + P + J, dtype=bool), open_])
        self._last: np.ndarray | None = None
        self.responses = 0

    def tol_of(self, start: int, size: int, rel: float) -> np.ndarray:
        """Slack tolerance ``rel`` (relative) of ``size`` constraints from slot ``start``."""
        out: np.ndarray = rel * np.maximum(self.scale[start : start + size], 1e-300)
        return out

    def shifts(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(k, theta) per row at multipliers ``x``."""
        pr, V, P, J = self.prob, self.V, self.P, self.J
        lam, mu = x[:V], x[V : V + P]
        s = x[V + P : V + P + J] - x[V + P + J :]
        shift = np.zeros(pr.n)
        if V:
            shift -= np.where(self.gv >= 0, lam[np.maximum(self.gv, 0)], 0.0)
        if P:
            shift += np.where(self.gp >= 0, mu[np.maximum(self.gp, 0)], 0.0)
        theta = np.where(self.gb >= 0, s[np.maximum(self.gb, 0)], 0.0) if J else np.zeros(pr.n)
        return pr.cost + shift * pr.fx, theta

    def respond(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        """Prices maximising the Lagrangian at ``x`` and the dual value D(x)."""
        pr = self.prob
        k, th = self.shifts(x)
        pen = bool(np.any(th))
        p = argmax_penalised(
            pr.lo, pr.hi, k, th if pen else None, pr.p0, pr.q0, pr.e, guess=self._last
        )
        self._last, self.responses = p, self.responses + 1
        inner = float((penalised_term(p, k, th, pr.p0, pr.q0, pr.e) / pr.fx).sum())
        V, P, J, h = self.V, self.P, self.J, pr.horizon
        const = -h * float(x[:V] @ self.target) + float(x[V : V + P] @ self.stock)
        sp_, sm = x[V + P : V + P + J], x[V + P + J :]
        const += h * float(
            (sp_ * (1 + self.frac) * self.rev - sm * (1 - self.frac) * self.rev).sum()
        )
        return p, h * inner + const

    def slack(self, p: np.ndarray) -> np.ndarray:
        """Each constraint's slack at ``p`` (>= 0: holds): the gradient of D."""
        pr, h = self.prob, self.prob.horizon
        q = pr.quantity(p)
        vol = np.bincount(self.gv[self.gv >= 0], weights=q[self.gv >= 0], minlength=self.V)
        pool = np.bincount(self.gp[self.gp >= 0], weights=q[self.gp >= 0], minlength=self.P)
        m = self.gb >= 0
        u = np.bincount(self.gb[m], weights=(self.a * p)[m], minlength=self.J)
        return np.concatenate(
            [
                h * (vol - self.target),
                self.stock - h * pool,
                h * ((1 + self.frac) * self.rev - u),
                h * (u - (1 - self.frac) * self.rev),
            ]
        )

    def _row_terms(self, x: np.ndarray, p: np.ndarray) -> tuple[list, np.ndarray]:
        """The rows' slack gradients as (group index, offset, value) per slot type, and
        c_i = w_i fx_i / H (0 where the response is not an interior stationary point)."""
        pr, h = self.prob, self.prob.horizon
        k, _ = self.shifts(x)
        e = pr.e
        with np.errstate(all="ignore"):
            q = pr.quantity(p)
            dq = e * q / p
            curv = e * q / p**2 * ((e + 1) * p - (e - 1) * k)  # g''(p) per week
            inside = (p > pr.lo * (1 + 1e-12)) & (p < pr.hi * (1 - 1e-12)) & (curv < 0)
            c = np.where(inside & np.isfinite(curv), -pr.fx / (h * curv), 0.0)
        c = np.where(np.isfinite(c), c, 0.0)
        V, P, J = self.V, self.P, self.J
        slots = [
            (self.gv, 0, np.nan_to_num(h * dq)),
            (self.gp, V, np.nan_to_num(-h * dq)),
            (self.gb, V + P, -h * self.a),
            (self.gb, V + P + J, h * self.a),
        ]
        return slots, c

    def hessian(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        """sum_i c_i z_i z_i^T (K x K) by one bincount per pair of slot types."""
        slots, c = self._row_terms(x, p)
        K = self.K
        out = np.zeros(K * K)
        m = c > 0
        for ga, oa, va in slots:
            for gb, ob, vb in slots:
                both = m & (ga >= 0) & (gb >= 0)
                if both.any():
                    idx = (ga[both] + oa) * K + gb[both] + ob
                    out += np.bincount(idx, weights=(c * va * vb)[both], minlength=K * K)
        return out.reshape(K, K)

    def slack_rows(self, rows: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Each row's own contribution to every slack (len(rows) x K) at its price ``p``."""
        pr, h = self.prob, self.prob.horizon
        q = pr.quantity(p, rows)
        out = np.zeros((rows.size, self.K))
        V, P, J = self.V, self.P, self.J
        i = np.arange(rows.size)
        for g, off, v in (
            (self.gv[rows], 0, h * q),
            (self.gp[rows], V, -h * q),
            (self.gb[rows], V + P, -h * self.a[rows] * p),
            (self.gb[rows], V + P + J, h * self.a[rows] * p),
        ):
            m = g >= 0
            out[i[m], g[m] + off] = v[m]
        return out

    def gradients(self, p: np.ndarray) -> sp.csr_matrix:
        """The rows' slack gradients z_i as a sparse n x K matrix."""
        slots, _ = self._row_terms(np.zeros(self.K), p)
        rows, cols, vals = [], [], []
        for g, off, v in slots:
            m = np.flatnonzero(g >= 0)
            rows.append(m)
            cols.append(g[m] + off)
            vals.append(v[m])
        r, cc, vv = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
        return sp.csr_matrix((vv, (r, cc)), shape=(self.prob.n, self.K))
