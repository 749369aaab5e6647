"""Primal recovery for the joint dual: a feasible, tight plan near the dual optimum.

Near the dual optimum many rows sit on a bound and a few are indifferent between two
candidates (a jump), so the response misses the limits by about one row's share.
Interior rows move along their Newton directions (:func:`newton_repair`); rows on a
bound by one LP over small moves and whole switches of the rows nearest a jump
(:func:`polish`).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from pricelab.optimize.budget_penalty import penalised_term
from pricelab.optimize.joint_layout import JointDual

MARGIN = 1e-11  # a repaired plan keeps this relative slack inside every limit
REPAIRS = 6
CANDIDATES = 3000  # rows the polishing LP may move
SWITCHES = 400  # rows the polishing LP may switch to their other bound
MOVE = 0.05  # the polishing LP moves a price by at most this fraction


def newton_repair(dual: JointDual, x: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Move interior rows along their Newton directions toward tight binding limits.

    The move minimises the rows' second-order loss sum (p_i - p'_i)^2 / (2 c_i) subject
    to the linearised slacks reaching the margin: the exact correction where the
    response is smooth. Rows on a bound do not move (left to :func:`_polish`'s LP).
    """
    pr = dual.prob
    margin = MARGIN * np.maximum(dual.scale, 1e-300)
    Z = dual.gradients(p)
    _, c = dual._row_terms(x, p)
    for _ in range(REPAIRS):
        s = dual.slack(p)
        if np.all(s >= 0) and np.all(s[x > 0] <= 4 * margin[x > 0]):
            break
        idx = np.flatnonzero((x > 0) | (s < 0))
        Za = Z[:, idx]
        Ha = (Za.T @ Za.multiply(c[:, None])).toarray()
        if not np.any(Ha):
            break
        dm = np.linalg.lstsq(Ha, 2 * margin[idx] - s[idx], rcond=None)[0]
        p = np.clip(p + c * np.asarray(Za @ dm).ravel(), pr.lo, pr.hi)
    return p


def _local_lp(
    dual: JointDual, x: np.ndarray, p: np.ndarray, flips: bool
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """One LP: small moves of rows on a bound and (``flips``) whole switches of the rows
    closest to a jump to their other bound. Returns (prices, switched fractions)."""
    pr, h = dual.prob, dual.prob.horizon
    Z = dual.gradients(p)
    _, c = dual._row_terms(x, p)
    with np.errstate(all="ignore"):
        q = pr.quantity(p)
        grad = np.nan_to_num(h * ((p - pr.cost) * pr.e * q / p + q) / pr.fx)
    s = dual.slack(p)
    margin = 2 * MARGIN * np.maximum(dual.scale, 1e-300)
    # rows on a bound whose Lagrangian changes least per unit of slack moved
    reach = np.asarray(abs(Z) @ (1.0 / np.maximum(dual.scale, 1e-300))).ravel()
    with np.errstate(all="ignore"):
        score = np.where((reach > 0) & (c == 0), np.abs(grad + Z @ x) / reach, np.inf)
    linked = np.flatnonzero(np.isfinite(score))
    rows = linked[np.argsort(score[linked], kind="stable")[:CANDIDATES]]
    lb = np.minimum(np.maximum(pr.lo[rows], p[rows] * (1 - MOVE)) - p[rows], 0.0)
    ub = np.maximum(np.minimum(pr.hi[rows], p[rows] * (1 + MOVE)) - p[rows], 0.0)
    cost, A, bounds = [-grad[rows]], [Z[rows]], [np.column_stack([lb, ub])]
    sw = np.zeros(0, dtype=np.int64)
    alt = p
    if flips:
        alt = np.where(p <= pr.lo, pr.hi, np.where(p >= pr.hi, pr.lo, p))
        k, th = dual.shifts(x)
        with np.errstate(all="ignore"):
            lost = (
                penalised_term(p, k, th, pr.p0, pr.q0, pr.e)
                - penalised_term(alt, k, th, pr.p0, pr.q0, pr.e)
            ) / pr.fx
        ok = (alt != p) & np.isfinite(alt) & np.isfinite(lost) & (reach > 0)
        cand = np.flatnonzero(ok)
        sw = cand[np.argsort(lost[cand], kind="stable")[:SWITCHES]]
        gain = (pr.objective_value(alt) - pr.objective_value(p))[sw]
        ds = dual.slack_rows(sw, alt[sw]) - dual.slack_rows(sw, p[sw])
        cost.append(-gain)
        A.append(sp.csr_matrix(ds))
        bounds.append(np.column_stack([np.zeros(sw.size), np.ones(sw.size)]))
    res = linprog(
        np.concatenate(cost),
        A_ub=-sp.vstack(A).T.tocsr(),
        b_ub=s - margin,
        bounds=np.vstack(bounds),
        method="highs",
    )
    if res.status != 0:
        return None
    out = p.copy()
    out[rows] = np.clip(p[rows] + res.x[: rows.size], pr.lo[rows], pr.hi[rows])
    w = res.x[rows.size :]
    if flips:
        on = sw[w > 0.5]
        out[on] = alt[on]
    return out, w


def polish(dual: JointDual, x: np.ndarray, p: np.ndarray) -> np.ndarray | None:
    """Make every constraint hold and the binding ones tight (None if it cannot).

    Near the dual optimum many rows sit on a bound and a few are indifferent between two
    candidates (a jump), so the response misses the limits by about one row's share.
    Interior rows move by :func:`newton_repair`; then, if a limit is still missed or
    slack, LPs over the rows on a bound: small moves (at most ``MOVE`` of the price,
    toward the inside) with the objective's first-order change (linear from a bound),
    and whole switches to the other bound of the ``SWITCHES`` rows nearest a jump (exact
    changes; fractions rounded, then a second LP of moves only), subject to each slack
    staying >= a small margin: exact for budgets (linear in price) and safe for floors
    and pools (units are convex in price, so the linearised floor understates the
    units). The better feasible result is kept; the caller checks it exactly.
    """
    p = newton_repair(dual, x, p)
    s = dual.slack(p)
    margin = 2 * MARGIN * np.maximum(dual.scale, 1e-300)
    if np.all(s >= 0) and np.all(s[x > 0] <= 2 * margin[x > 0]):
        return p
    found = []
    first = _local_lp(dual, x, p, flips=True)
    if first is not None:
        second = _local_lp(dual, x, first[0], flips=False)
        found += [second[0]] if second is not None else []
    plain = _local_lp(dual, x, p, flips=False)
    found += [plain[0]] if plain is not None else []
    found = [f for f in found if np.all(dual.slack(f) >= 0)]
    if not found:
        return None
    return max(found, key=lambda f: float(dual.prob.objective_value(f).sum()))
