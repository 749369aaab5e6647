"""Cross-market parity under constant elasticity: the 1-D band search (optimization.md 5b).

Parity for one item: every base-currency price b_m = p_m / fx_m lies in [L, (1 + g) L].
For fixed L each market's best price is its closed-form maximiser on
[max(lo_m, L fx_m), min(hi_m, (1 + g) L fx_m)], so the item's value is a function F(L)
of one number. F is evaluated for all items at once on a grid of L that contains every
breakpoint (where a market's clipped interval changes piece), then refined by golden
section around the best point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pricelab.optimize.budget_penalty import argmax_penalised, penalised_term
from pricelab.optimize.closed_form import unconstrained_price

GRID = 48
GOLDEN_STEPS = 60


@dataclass
class Blocks:
    """Rows of parity items laid out as an items x markets matrix (padded)."""

    rows: np.ndarray  # (G, M) row index, -1 = padding
    gap: np.ndarray  # (G,)

    @classmethod
    def build(cls, groups: np.ndarray, gap: np.ndarray) -> Blocks:
        """``groups``: group code per row (-1 = no parity); ``gap``: per-row gap fraction."""
        idx = np.flatnonzero(groups >= 0)
        order = idx[np.argsort(groups[idx], kind="stable")]
        g = groups[order]
        uniq, start, counts = np.unique(g, return_index=True, return_counts=True)
        m = int(counts.max()) if counts.size else 0
        rows = np.full((uniq.size, m), -1, dtype=np.int64)
        pos = np.arange(order.size) - np.repeat(start, counts)
        rows[np.repeat(np.arange(uniq.size), counts), pos] = order
        gg = np.minimum.reduceat(gap[order], start) if counts.size else np.zeros(0)
        return cls(rows, gg)


def _mat(x: np.ndarray, rows: np.ndarray, fill: float) -> np.ndarray:
    return np.where(rows >= 0, x[np.maximum(rows, 0)], fill)


def feasible_range(
    b: Blocks, lo: np.ndarray, hi: np.ndarray, fx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Range [Lmin, Lmax] of the band's lower edge for which every market can comply."""
    lo_b = _mat(lo / fx, b.rows, 0.0)
    hi_b = _mat(hi / fx, b.rows, np.inf)
    return lo_b.max(axis=1) / (1 + b.gap), hi_b.min(axis=1)


def solve_band(
    b: Blocks,
    k: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    fx: np.ndarray,
    p0: np.ndarray,
    q0: np.ndarray,
    e: np.ndarray,
    theta: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best prices of every parity row for effective costs ``k``.

    ``theta`` (per row, optional) is a price penalty from an average-change budget
    multiplier (:mod:`pricelab.optimize.budget_penalty`); each market then maximises
    (p - k) q(p) - theta q0 p, still unimodal where the budget pushes prices down.

    Returns
    -------
    prices : ndarray (n,) with NaN for rows outside parity blocks
    band_low : ndarray (G,) the chosen L per item (base currency)
    value : ndarray (G,) the item's sum of g(p) / fx (base currency) at the chosen prices
    """
    R = b.rows
    valid = R >= 0
    M = {
        name: _mat(x, R, fill)
        for name, x, fill in (
            ("k", k, 0.0),
            ("lo", lo, 0.0),
            ("hi", hi, np.inf),
            ("fx", fx, 1.0),
            ("p0", p0, 1.0),
            ("q0", q0, 0.0),
            ("e", e, -2.0),
            ("th", np.zeros_like(k) if theta is None else theta, 0.0),
        )
    }
    pen = theta is not None and bool(np.any(theta))
    lmin, lmax = feasible_range(b, lo, hi, fx)
    one_g = (1 + b.gap)[:, None]
    # beyond these, moving L further only pushes every market away from its optimum
    if pen:
        pstar = argmax_penalised(M["lo"], M["hi"], M["k"], M["th"], M["p0"], M["q0"], M["e"])
    else:
        pstar = np.minimum(np.maximum(unconstrained_price(M["k"], M["e"]), M["lo"]), M["hi"])
    pb = np.where(valid, pstar / M["fx"], np.nan)
    lmax_eff = np.minimum(lmax, np.nanmax(pb, axis=1))
    lmin_eff = np.maximum(lmin, np.nanmin(pb, axis=1) / (1 + b.gap))
    # a price reward (theta < 0: the lower side of a budget) makes an elastic market's
    # value rise again toward its cap: it is not unimodal, so the whole range is searched
    bimodal = (valid & (M["th"] < 0) & (M["e"] < -1)).any(axis=1)
    lmax_eff = np.where(bimodal, lmax, lmax_eff)
    lmin_eff = np.where(bimodal, lmin, lmin_eff)
    lmin_eff = np.minimum(lmin_eff, lmax_eff)

    def value(L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # L: (G, J) -> prices (G, J, M), values (G, J)
        a = np.maximum(M["lo"][:, None, :], L[..., None] * M["fx"][:, None, :])
        z = np.minimum(M["hi"][:, None, :], one_g[..., None] * L[..., None] * M["fx"][:, None, :])
        z = np.maximum(z, a)
        k_, th, p0_, q0_, e_ = (M[x][:, None, :] for x in ("k", "th", "p0", "q0", "e"))
        p = argmax_penalised(a, z, k_, th if pen else None, p0_, q0_, e_)
        val = penalised_term(p, k_, th, p0_, q0_, e_)
        v = np.where(valid[:, None, :], val / M["fx"][:, None, :], 0.0).sum(axis=2)
        return p, v

    t = np.linspace(0.0, 1.0, GRID)[None, :]
    span_ok = lmax_eff > lmin_eff
    with np.errstate(divide="ignore", invalid="ignore"):
        grid = np.where(
            span_ok[:, None],
            lmin_eff[:, None] * (lmax_eff / lmin_eff)[:, None] ** t,
            lmin_eff[:, None],
        )
    bps = np.concatenate([M["lo"] / M["fx"], M["hi"] / M["fx"], pstar / M["fx"]], axis=1)
    bps = np.concatenate([bps, bps / one_g], axis=1)
    bps = np.where(np.concatenate([valid] * 6, axis=1), bps, lmin_eff[:, None])
    pts = np.sort(
        np.clip(np.concatenate([grid, bps], axis=1), lmin_eff[:, None], lmax_eff[:, None]), axis=1
    )
    _, v = value(pts)
    j = np.argmax(v, axis=1)
    r = np.arange(pts.shape[0])
    a = pts[r, np.maximum(j - 1, 0)]
    z = pts[r, np.minimum(j + 1, pts.shape[1] - 1)]
    best_l, best_v = pts[r, j], v[r, j]
    phi = (np.sqrt(5) - 1) / 2
    x1, x2 = z - phi * (z - a), a + phi * (z - a)
    f1 = value(x1[:, None])[1][:, 0]
    f2 = value(x2[:, None])[1][:, 0]
    for _ in range(GOLDEN_STEPS):
        left = f1 >= f2
        z = np.where(left, x2, z)
        a = np.where(left, a, x1)
        nx = np.where(left, z - phi * (z - a), a + phi * (z - a))
        nf = value(nx[:, None])[1][:, 0]
        x1, x2, f1, f2 = (
            np.where(left, nx, x2),
            np.where(left, x1, nx),
            np.where(left, nf, f2),
            np.where(left, f1, nf),
        )
    for x, fx_ in ((x1, f1), (x2, f2)):
        better = fx_ > best_v
        best_l = np.where(better, x, best_l)
        best_v = np.where(better, fx_, best_v)
    p, v = value(best_l[:, None])
    prices = np.full(k.shape, np.nan)
    prices[R[valid]] = p[:, 0, :][valid]
    return prices, best_l, v[:, 0]
