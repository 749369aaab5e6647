"""Price ladders solved exactly without a MILP when nothing but parity links rows.

A row's objective g(p) = (p - k) q0 (p / p0) ** e with k >= 0 is unimodal on p > 0
(rising up to its maximiser, falling after), so on any interval [a, z] its best ladder
point is one of the two ladder points next to the clipped continuous optimum
(:func:`best_on_ladder`).

Parity (all base prices of an item in [L, (1 + g) L]): in an optimal plan the lowest base
price L* is some market's ladder point t / fx_m, and at L = L* every market's best ladder
point in [max(lo, L fx), min(hi, (1 + g) L fx)] is at least as good as the plan's. So the
exact optimum is the best of F(L) over the finitely many breakpoints L = t / fx_m
(:func:`solve_ladder_band`), evaluated for all items at once. Outside [Lb, Ub] (Lb the
lowest clipped optimum in base currency over (1 + g), Ub the highest) every market sits on
the same side of its optimum and F is monotone over feasible breakpoints, so enumerating
breakpoints in [Lb, Ub] plus up to the first feasible one beyond each end is exhaustive;
the window is widened for the items where that is not yet certified.
"""

from __future__ import annotations

import numpy as np

from pricelab.errors import SolverError
from pricelab.optimize.band import Blocks
from pricelab.optimize.closed_form import argmax_interval, term
from pricelab.optimize.problem import Problem

REL = 1e-10  # relative tolerance for "on the ladder" and "inside the interval"
CHUNK = 4_000_000  # evaluations (items x breakpoints x markets) per vectorised chunk


def ladder_index(x: np.ndarray, spacing: np.ndarray, offset: np.ndarray, *, up: bool) -> np.ndarray:
    """Index k of the ladder point k * spacing + offset at or above (``up``) / below ``x``."""
    with np.errstate(invalid="ignore"):
        u = (x - offset) / spacing
        tol = REL * np.maximum(1.0, np.abs(u))
        return np.ceil(u - tol) if up else np.floor(u + tol)


def first_positive(spacing: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """Index of the smallest ladder point > 0."""
    return np.floor(-offset / spacing) + 1


def best_on_ladder(
    a: np.ndarray,
    z: np.ndarray,
    k: np.ndarray,
    p0: np.ndarray,
    q0: np.ndarray,
    e: np.ndarray,
    spacing: np.ndarray,
    offset: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Best ladder price in [a, z] and its g value (NaN price and -inf where none).

    Exact for any k: g has at most one stationary point, so the best point is next to the
    clipped optimum (unimodal g) or the lowest / highest point (quasi-convex g, k < 0 and
    -1 < e < 0).
    """
    pc = argmax_interval(a, z, k, p0, q0, e)
    kmin = first_positive(spacing, offset)
    best_p = np.full(np.broadcast(a, z, k, spacing).shape, np.nan)
    best_v = np.full(best_p.shape, -np.inf)
    for up in (False, True):
        idx = np.maximum(ladder_index(pc, spacing, offset, up=up), kmin)
        t = idx * spacing + offset
        ok = (t >= a * (1 - REL)) & (t <= z * (1 + REL))
        v = np.where(ok, term(np.where(ok, t, 1.0), k, p0, q0, e), -np.inf)
        better = v > best_v
        best_p = np.where(better, t, best_p)
        best_v = np.where(better, v, best_v)
    if np.any((np.asarray(k) < 0) & (np.asarray(e) > -1)):
        # k < 0 with -1 < e < 0 (a volume multiplier above cost): g is quasi-convex, its
        # best ladder point is the lowest or the highest one in [a, z]
        for up, x in ((True, a), (False, z)):
            idx = np.maximum(ladder_index(x, spacing, offset, up=up), kmin)
            t = idx * spacing + offset
            ok = np.isfinite(t) & (t >= a * (1 - REL)) & (t <= z * (1 + REL))
            v = np.where(ok, term(np.where(ok, t, 1.0), k, p0, q0, e), -np.inf)
            better = v > best_v
            best_p = np.where(better, t, best_p)
            best_v = np.where(better, v, best_v)
    return best_p, best_v


def _eval(
    L: np.ndarray, M: dict[str, np.ndarray], valid: np.ndarray, one_g: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """F(L) for L (G, C): chosen prices (G, C, M) and item values (G, C) (-inf infeasible)."""
    fx = M["fx"][:, None, :]
    a = np.maximum(M["lo"][:, None, :], L[..., None] * fx)
    z = np.minimum(M["hi"][:, None, :], one_g[:, None, None] * L[..., None] * fx)
    args = [M[x][:, None, :] for x in ("k", "p0", "q0", "e", "s", "off")]
    p, v = best_on_ladder(a, z, *args)
    v = np.where(valid[:, None, :], v / fx, 0.0)
    return p, v.sum(axis=2)


def solve_ladder_band(
    rows: np.ndarray,
    gap: np.ndarray,
    k: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    fx: np.ndarray,
    p0: np.ndarray,
    q0: np.ndarray,
    e: np.ndarray,
    spacing: np.ndarray,
    offset: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact parity + ladder optimum for items laid out as ``rows`` (G, M), -1 padded.

    Every row needs a ladder (``spacing`` finite) or a fixed price (lo == hi). Returns the
    prices (n,) (NaN outside the blocks) and each item's value (G,), sum of g / fx.
    """
    prices = np.full(k.shape, np.nan)
    values = np.full(rows.shape[0], -np.inf)
    fixed = lo == hi
    s = np.where(fixed, np.where(lo > 0, lo, 1.0), spacing)
    off = np.where(fixed, 0.0, offset)
    per_item = max(1, rows.shape[1] ** 2 * 64)
    step = max(1, CHUNK // per_item)
    for start in range(0, rows.shape[0], step):
        sl = slice(start, start + step)
        p, v = _solve_chunk(rows[sl], gap[sl], k, lo, hi, fx, p0, q0, e, s, off)
        r = rows[sl]
        prices[r[r >= 0]] = p[r >= 0]
        values[sl] = v
    return prices, values


def _solve_chunk(R, gap, k, lo, hi, fx, p0, q0, e, s, off):
    valid = R >= 0
    ix = np.maximum(R, 0)
    fills = {
        "k": 0.0,
        "lo": 0.0,
        "hi": np.inf,
        "fx": 1.0,
        "p0": 1.0,
        "q0": 0.0,
        "e": -2.0,
        "s": 1.0,
        "off": 0.0,
    }
    src = {"k": k, "lo": lo, "hi": hi, "fx": fx, "p0": p0, "q0": q0, "e": e, "s": s, "off": off}
    M = {n: np.where(valid, x[ix], fills[n]) for n, x in src.items()}
    # padding markets: a free market that is always feasible and worth 0
    M["lo"] = np.where(valid, M["lo"], 0.0)
    one_g = 1 + gap
    pc = argmax_interval(M["lo"], M["hi"], M["k"], M["p0"], M["q0"], M["e"])
    pcb = np.where(valid, pc / M["fx"], np.nan)
    Lb = np.nanmin(pcb, axis=1) / one_g
    Ub = np.nanmax(pcb, axis=1)
    kmin = np.maximum(
        ladder_index(M["lo"], M["s"], M["off"], up=True), first_positive(M["s"], M["off"])
    )
    kmax = ladder_index(M["hi"], M["s"], M["off"], up=False)  # inf where no cap
    core_lo = ladder_index(Lb[:, None] * M["fx"], M["s"], M["off"], up=True)
    core_hi = ladder_index(Ub[:, None] * M["fx"], M["s"], M["off"], up=False)
    G = R.shape[0]
    todo = np.ones(G, dtype=bool)
    best_p = np.full(R.shape, np.nan)
    best_v = np.full(G, -np.inf)
    ext = 2.0
    while todo.any():
        if ext > 2.0**16:
            raise SolverError(
                "ladder band search: no feasible parity band found near the "
                "optimum of some item; widen max_gap_pct or the bounds"
            )
        t = np.flatnonzero(todo)
        k0 = np.maximum(core_lo[t] - ext, kmin[t])
        k1 = np.minimum(core_hi[t] + ext, kmax[t])
        k1 = np.where(valid[t], np.maximum(k1, k0 - 1), k0 - 1)
        cnt = (k1 - k0 + 1).astype(np.int64)
        K = max(1, int(cnt.max()))
        j = np.arange(K)
        idx = k0[:, :, None] + j  # (g, M, K)
        Lc = (idx * M["s"][t][:, :, None] + M["off"][t][:, :, None]) / M["fx"][t][:, :, None]
        Lc = np.where(j < cnt[:, :, None], Lc, np.nan).reshape(t.size, -1)
        sub = {n: x[t] for n, x in M.items()}
        Lsafe = np.where(np.isnan(Lc), 1.0, Lc)
        p, v = _eval(Lsafe, sub, valid[t], one_g[t])
        v = np.where(np.isnan(Lc), -np.inf, v)
        jb = np.argmax(v, axis=1)
        rr = np.arange(t.size)
        best_v[t] = v[rr, jb]
        best_p[t] = p[rr, jb]
        # complete range of breakpoints enumerated, and certification at both ends
        top_all = np.where(k1 >= kmax[t], np.inf, (k1 * M["s"][t] + M["off"][t]) / M["fx"][t])
        bot_all = np.where(k0 <= kmin[t], -np.inf, (k0 * M["s"][t] + M["off"][t]) / M["fx"][t])
        hi_done = np.where(valid[t], top_all, np.inf).min(axis=1)
        lo_done = np.where(valid[t], bot_all, -np.inf).max(axis=1)
        feas = np.isfinite(v)
        inside = (Lsafe <= hi_done[:, None]) & (Lsafe >= lo_done[:, None])
        up_ok = np.isinf(hi_done) | np.any(feas & inside & (Lsafe >= Ub[t][:, None]), axis=1)
        dn_ok = np.isinf(lo_done) | np.any(feas & inside & (Lsafe <= Lb[t][:, None]), axis=1)
        ok = up_ok & dn_ok
        todo[t[ok]] = False
        ext *= 4
    return best_p, best_v


def ladder_prices(
    prob: Problem,
    groups: np.ndarray,
    blocks: Blocks | None,
    free: np.ndarray,
    k: np.ndarray | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Exact prices when ladders are asked for and nothing but parity links rows.

    ``free`` holds the continuous optimum of every row (closed form or band search);
    rows on a ladder are replaced by their exact ladder optimum. Returns the prices and
    infeasibility messages (items or rows for which no ladder price fits). ``k`` are the
    effective unit costs (default: the objective's cost; multipliers shift them).
    """
    lad = ~np.isnan(prob.ladder_spacing)
    k = prob.cost if k is None else k
    p = free.copy()
    single = lad & (groups < 0)
    msgs: list[str] = []
    if single.any():
        r = np.flatnonzero(single)
        pr, _ = best_on_ladder(
            prob.lo[r],
            prob.hi[r],
            k[r],
            prob.p0[r],
            prob.q0[r],
            prob.e[r],
            prob.ladder_spacing[r],
            prob.ladder_offset[r],
        )
        p[r] = pr
        for i in r[np.isnan(pr)]:
            msgs.append(ladder_message(prob, i))
    if blocks is not None and (lad & (groups >= 0)).any():
        R = blocks.rows
        has = np.where(R >= 0, lad[np.maximum(R, 0)], False).any(axis=1)
        sel = np.flatnonzero(has)
        pb, v = solve_ladder_band(
            R[sel],
            blocks.gap[sel],
            k,
            prob.lo,
            prob.hi,
            prob.fx,
            prob.p0,
            prob.q0,
            prob.e,
            prob.ladder_spacing,
            prob.ladder_offset,
        )
        rows = R[sel][R[sel] >= 0]
        p[rows] = pb[rows]
        for g in sel[~np.isfinite(v)]:
            i = R[g][0]
            msgs.append(
                f"{prob.item[i]}: parity max_gap_pct {100 * blocks.gap[g]:g} with the "
                "ladder: no combination of ladder prices within the row limits fits "
                "one band (widen max_gap_pct or the bounds, or use a finer step)"
            )
    return p, msgs


def mixed_blocks(prob: Problem, blocks: Blocks | None) -> bool:
    """True when a parity item mixes laddered markets with free (non-fixed) ones."""
    if blocks is None:
        return False
    R = blocks.rows
    ix = np.maximum(R, 0)
    lad = np.where(R >= 0, ~np.isnan(prob.ladder_spacing)[ix], False)
    free = np.where(R >= 0, np.isnan(prob.ladder_spacing)[ix] & (prob.lo != prob.hi)[ix], False)
    return bool((lad.any(axis=1) & free.any(axis=1)).any())


def ladder_message(prob: Problem, i: int) -> str:
    """A row's ladder has no price point between its limits."""
    off = prob.ladder_offset[i]
    return (
        f"{prob.label(i)}: ladder (points every {prob.ladder_spacing[i]:g}"
        f"{'' if off == 0 else f' ending {off:g}'}) has no price between "
        f"{prob.lo[i]:.2f} ({prob.lo_src[i] or 'no floor'}) and "
        f"{prob.hi[i]:.2f} ({prob.hi_src[i] or 'no cap'})"
    )
