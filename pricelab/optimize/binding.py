"""Which constraints hold each price where it is (the plan's ``binding`` column)."""

from __future__ import annotations

import numpy as np

from pricelab.optimize.closed_form import argmax_interval
from pricelab.optimize.problem import Problem

REL = 1e-7


def _close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b) <= REL * np.maximum(1.0, np.abs(b))


def binding_labels(
    prob: Problem,
    p: np.ndarray,
    *,
    parity_groups: np.ndarray,
    row_shift: np.ndarray | None = None,
    tight_links: list[int] | None = None,
    milp: bool = False,
) -> list[str]:
    """Comma-separated constraint names per row.

    A bound binds when the price sits on it; parity when the item's band is tight, the
    row sits on its edge and its own optimum lies elsewhere; a linking constraint when
    its multiplier (decomposition) or tightness (MILP) moves the row off its own optimum;
    a ladder when the row is on a ladder and not on a bound.
    """
    n = prob.n
    labels: list[list[str]] = [[] for _ in range(n)]
    at_hi = np.isfinite(prob.hi) & _close(p, prob.hi)
    at_lo = _close(p, prob.lo) & (prob.lo > 0)
    own = argmax_interval(prob.lo, prob.hi, prob.cost, prob.p0, prob.q0, prob.e)
    moved = ~_close(p, own)
    for i in np.flatnonzero(prob.frozen):
        labels[i].append("frozen")
    for i in np.flatnonzero(at_hi & ~prob.frozen):
        labels[i].append(prob.hi_src[i])
    for i in np.flatnonzero(at_lo & ~prob.frozen):
        for name in ("max_decrease_pct", "min_margin_pct", "inventory", "max_extrapolation_pct"):
            v = prob.sources.get(name, np.full(n, np.nan))[i]
            if not np.isnan(v) and _close(p[i : i + 1], np.array([v]))[0]:
                labels[i].append(name)
    if (parity_groups >= 0).any():
        m = parity_groups >= 0
        g = parity_groups[m]
        b = p[m] / prob.fx[m]
        ng = int(g.max()) + 1
        bmin = np.full(ng, np.inf)
        bmax = np.zeros(ng)
        np.minimum.at(bmin, g, b)
        np.maximum.at(bmax, g, b)
        gap = np.nan_to_num(prob.parity_gap[m])
        tight = bmax[g] >= bmin[g] * (1 + gap) * (1 - 1e-6)
        edge = _close(b, bmin[g]) | _close(b, bmax[g])
        rows = np.flatnonzero(m)[tight & edge]
        for i in rows:
            if moved[i] and not (at_lo[i] or at_hi[i]):
                labels[i].append("parity")
    if row_shift is not None:
        for i in np.flatnonzero((row_shift != 0) & moved & ~at_lo & ~at_hi):
            labels[i].append("inventory" if row_shift[i] > 0 else "min_volume_pct")
    if tight_links:
        for j in tight_links:
            lk = prob.links[j]
            for i in lk.rows[moved[lk.rows]]:
                if lk.key not in labels[i]:
                    labels[i].append(lk.key)
    for lower, upper, f, _name in prob.ordering:
        tight = p[upper] <= f * p[lower] * (1 + REL)
        for i in np.concatenate([lower[tight], upper[tight]]):
            if moved[i] and "ordering" not in labels[i]:
                labels[i].append("ordering")
    if milp:
        for i in np.flatnonzero(~np.isnan(prob.ladder_spacing) & ~at_lo & ~at_hi):
            labels[i].append("ladder")
    return [",".join(dict.fromkeys(x)) for x in labels]
