"""Exact pool optima by Lagrangian reduced-cost enumeration (all open pools at once).

At a pool's stock multiplier ``lam`` every plan P of the pool is worth at most
``L(P) = lam * S + sum_r G_r(P_r)`` (``G_r`` the row's clipped DP value at weight
``w - lam``), and ``L`` is at most the pool's Lagrangian bound ``U = lam * S + sum_r G_r*``.
Write ``rc_r(P_r) = G_r* - G_r(P_r) >= 0`` (the path's reduced cost). A plan can only beat
the best known plan (value ``B``) if ``sum_r rc_r(P_r) <= U - B``. So:

1. per row, every path with reduced cost below ``delta_r`` is listed (a forward expansion
   over weeks pruned by the DP's value-to-go; capped at ``MAX_PATHS`` per row by lowering
   ``delta_r``);
2. per pool, every combination of the listed paths with total reduced cost below
   ``D_p = min(U - B, min_r delta_r)`` (capped at ``MAX_COMBOS`` by lowering ``D_p``) is
   evaluated exactly with the fluid model;
3. the pool's bound becomes ``max(best combination, U - D_p)``: every plan not evaluated
   has a reduced cost of at least ``D_p``. When nothing was capped, ``D_p = U - B`` and the
   bound is the pool's exact optimum.

A pool under a sell-through target is scored with its target multiplier ``mu`` (weights
``w + mu``), as in the Lagrangian.
"""

from __future__ import annotations

import numpy as np

NEG = -np.inf
MAX_PATHS = 24
MAX_COMBOS = 512
EPS = 1e-9
PROBE = np.array([0.0, 0.5, 0.8, 0.9, 0.95, 0.98, 1.02, 1.05, 1.1, 1.2, 1.5, 2.0])
# (paths per row, combinations per pool, pools: the worst ones first, None = every open pool)
ENUM_PASSES: tuple[tuple[int, int, int | None], ...] = (
    (16, 256, None),
    (48, 2048, None),
    (256, 16384, 16),
)


def value_to_go(
    demand: np.ndarray, weight: np.ndarray, n_levels: np.ndarray, monotone: bool, min_weeks: int
) -> tuple[np.ndarray, np.ndarray]:
    """(V (R, T, L, m), gain (R, T, L)): the best clipped value from week t on in state
    (level, weeks held) including week t's gain; -inf where the level is not allowed."""
    r, t_len, lv = demand.shape
    m = max(1, int(min_weeks))
    gain = demand * np.maximum(weight, 0.0)[:, None, :]
    gain[np.broadcast_to((np.arange(lv)[None, :] >= n_levels[:, None])[:, None, :], gain.shape)] = (
        NEG
    )
    held_next = np.minimum(np.arange(m) + 1, m - 1)
    v = np.empty((r, t_len, lv, m))
    v[:, -1] = gain[:, -1, :, None]
    for t in range(t_len - 2, -1, -1):
        nxt = v[:, t + 1]
        best = nxt[:, :, held_next].copy()
        v0 = nxt[:, :, 0]
        if monotone:  # best over deeper levels
            ch = np.maximum.accumulate(v0[:, ::-1], axis=1)[:, ::-1]
            ch = np.concatenate([ch[:, 1:], np.full((r, 1), NEG)], axis=1)
        else:
            ch = np.full((r, lv), NEG)
            for k in range(lv):
                ch[:, k] = np.delete(v0, k, axis=1).max(axis=1, initial=NEG)
        best[:, :, m - 1] = np.maximum(best[:, :, m - 1], ch)
        v[:, t] = gain[:, t, :, None] + best
    return v, gain


def near_optimal_paths(
    v: np.ndarray,
    gain: np.ndarray,
    delta: np.ndarray,
    monotone: bool,
    min_weeks: int,
    max_paths: int = MAX_PATHS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every path of each row whose value is within ``delta`` of the row's best.

    Returns (row (N,), path (N, T), value (N,), best (R,), delta (R,) lowered where a row
    had more than ``max_paths`` such paths: every path not listed is worth at most
    ``best - delta``).
    """
    r, t_len, lv, m = v.shape
    held_next = np.minimum(np.arange(m) + 1, m - 1)
    delta = delta.astype(float).copy()
    start = v[:, 0, :, 0].copy()
    start[:, 0] = v[:, 0, 0, m - 1]
    best = start.max(axis=1)
    tol = EPS * np.maximum(np.abs(best), 1.0)
    # week 0: one entry per (row, level)
    row = np.repeat(np.arange(r), lv)
    k = np.tile(np.arange(lv), r)
    h = np.where(k == 0, m - 1, 0)
    bound = start.ravel()
    acc = np.zeros(len(row))
    hist = np.zeros((len(row), 0), dtype=np.int8)
    for t in range(t_len):
        keep = bound >= best[row] - delta[row] - tol[row]
        row, k, h, acc, hist, bound = (
            row[keep],
            k[keep],
            h[keep],
            acc[keep],
            hist[keep],
            bound[keep],
        )
        row, k, h, acc, hist, bound, delta = _cap(
            row, k, h, acc, hist, bound, best, delta, max_paths
        )
        acc = acc + gain[row, t, k]
        hist = np.concatenate([hist, k[:, None].astype(np.int8)], axis=1)
        if t == t_len - 1:
            break
        # expand: every level next week (stay, or change when the price has held long enough)
        n = len(row)
        k2 = np.broadcast_to(np.arange(lv)[None, :], (n, lv))
        stay = k2 == k[:, None]
        can = (h == m - 1)[:, None] & ((k2 > k[:, None]) if monotone else ~stay)
        ok = stay | can
        h2 = np.where(stay, held_next[h][:, None], 0)
        i, j = np.nonzero(ok)
        row, k, h, acc, hist = row[i], k2[i, j], h2[i, j], acc[i], hist[i]
        bound = acc + v[row, t + 1, k, h]
    return row, hist, acc, best, delta


def _cap(
    row: np.ndarray,
    k: np.ndarray,
    h: np.ndarray,
    acc: np.ndarray,
    hist: np.ndarray,
    bound: np.ndarray,
    best: np.ndarray,
    delta: np.ndarray,
    cap: int,
) -> tuple[np.ndarray, ...]:
    """Keep at most ``cap`` entries per row (the best bounds); lower ``delta`` of the rows cut."""
    count = np.bincount(row, minlength=len(best))
    if count.max(initial=0) <= cap:
        return row, k, h, acc, hist, bound, delta
    order = np.lexsort((-bound, row))
    row, k, h, acc, hist, bound = (
        row[order],
        k[order],
        h[order],
        acc[order],
        hist[order],
        bound[order],
    )
    first = np.r_[0, np.cumsum(count)[:-1]]
    rank = np.arange(len(row)) - first[row]
    over = count > cap
    thr = np.full(len(best), -np.inf)
    at = rank == cap
    thr[row[at]] = bound[at]
    delta[over] = np.minimum(delta[over], best[over] - thr[over])
    keep = (rank < cap) & (bound > thr[row])
    return row[keep], k[keep], h[keep], acc[keep], hist[keep], bound[keep], delta


def combine(
    pool_of_row: np.ndarray,
    rank_of_row: np.ndarray,
    n_pools: int,
    p_row: np.ndarray,
    p_rc: np.ndarray,
    limit: np.ndarray,
    max_combos: int = MAX_COMBOS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every combination (one listed path per row of a pool) with reduced cost below the
    pool's ``limit`` (lowered where a pool had more than ``max_combos``).

    ``p_row``/``p_rc``: row and reduced cost of each listed path (sorted by row). Returns
    (pool (C,), path ids (C, max rows per pool) with -1 for absent ranks, limit).
    """
    limit = limit.astype(float).copy()
    width = int(rank_of_row.max()) + 1 if len(rank_of_row) else 0
    n_rows = len(pool_of_row)
    starts = np.searchsorted(p_row, np.arange(n_rows))
    counts = np.bincount(p_row, minlength=n_rows)
    row_at = np.full((n_pools, width), -1)
    row_at[pool_of_row, rank_of_row] = np.arange(n_rows)
    c_pool = np.arange(n_pools)
    c_rc = np.zeros(n_pools)
    c_ids = np.full((n_pools, 0), -1)
    for j in range(width):
        rj = row_at[c_pool, j]
        cnt = np.where(rj >= 0, counts[np.maximum(rj, 0)], 1)
        rep = np.repeat(np.arange(len(c_pool)), cnt)
        off = np.arange(len(rep)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        has = rj[rep] >= 0
        pid = np.where(has, starts[np.maximum(rj[rep], 0)] + off, -1)
        c_pool, c_ids = c_pool[rep], np.concatenate([c_ids[rep], pid[:, None]], axis=1)
        c_rc = c_rc[rep] + np.where(has, p_rc[np.maximum(pid, 0)], 0.0)
        keep = c_rc < limit[c_pool] + EPS * np.maximum(1.0, np.abs(limit[c_pool]))
        c_pool, c_ids, c_rc = c_pool[keep], c_ids[keep], c_rc[keep]
        n_c = np.bincount(c_pool, minlength=n_pools)
        if n_c.max(initial=0) > max_combos:
            order = np.lexsort((c_rc, c_pool))
            c_pool, c_ids, c_rc = c_pool[order], c_ids[order], c_rc[order]
            rank = np.arange(len(c_pool)) - np.r_[0, np.cumsum(n_c)[:-1]][c_pool]
            thr = np.full(n_pools, np.inf)
            at = rank == max_combos
            thr[c_pool[at]] = c_rc[at]
            limit = np.minimum(limit, thr)
            keep = (rank < max_combos) & (c_rc < thr[c_pool])
            c_pool, c_ids, c_rc = c_pool[keep], c_ids[keep], c_rc[keep]
    return c_pool, c_ids, limit


def knapsack_value(
    d: np.ndarray, w: np.ndarray, stock: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``d``/``w`` (C, cells): (fluid value, relaxed value) of selling the cells
    best weight first up to ``stock`` (C,); the relaxed value skips cells of negative weight
    (what the DP's clipped value allows), the fluid value sells them."""
    order = np.argsort(-w, axis=1, kind="stable")
    dd = np.take_along_axis(d, order, axis=1)
    ww = np.take_along_axis(w, order, axis=1)
    before = np.cumsum(dd, axis=1) - dd
    x = np.clip(stock[:, None] - before, 0.0, dd)
    return (x * ww).sum(axis=1), (x * np.maximum(ww, 0.0)).sum(axis=1)


def close_pools(
    demand: np.ndarray,
    w0: np.ndarray,
    nlev: np.ndarray,
    pool: np.ndarray,
    stock: np.ndarray,
    lam: np.ndarray,
    mu_pool: np.ndarray,
    phi: np.ndarray,
    pools: np.ndarray,
    *,
    monotone: bool,
    min_weeks: int,
    max_paths: int = MAX_PATHS,
    max_combos: int = MAX_COMBOS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Enumerate the open ``pools`` (see the module docstring).

    ``w0``: price minus salvage (R, L), base currency; ``lam``: each pool's stock multiplier
    (>= 0); ``phi``: each pool's current plan value ``sum (w0 + mu) x``. Returns, for
    ``pools``: (bound on the pool's best ``phi``, best ``phi`` found (fluid), rows of those
    pools, their paths in that plan (-1 where no plan beat ``phi``)).
    """
    lam = np.maximum(lam[pools], 0.0)
    lookup = np.full(len(stock), -1, dtype=np.int64)
    lookup[pools] = np.arange(len(pools))
    rows = np.nonzero(lookup[pool] >= 0)[0]
    pl_ = lookup[pool[rows]]
    order = np.argsort(pl_, kind="stable")
    rows, pl_ = rows[order], pl_[order]
    n_p = len(pools)
    wmu = w0[rows] + mu_pool[pools][pl_][:, None]
    v, gain = value_to_go(demand[rows], wmu - lam[pl_][:, None], nlev[rows], monotone, min_weeks)
    start = v[:, 0, :, 0].copy()
    start[:, 0] = v[:, 0, 0, -1]
    s_p = stock[pools].astype(float)
    upper = lam * s_p + np.bincount(pl_, weights=start.max(axis=1), minlength=n_p)
    slack = np.maximum(upper - phi[pools], 0.0)
    p_row, p_path, p_val, best, delta = near_optimal_paths(
        v, gain, slack[pl_], monotone, min_weeks, max_paths
    )
    order = np.argsort(p_row, kind="stable")
    p_row, p_path, p_val = p_row[order], p_path[order], p_val[order]
    limit = slack.copy()
    np.minimum.at(limit, pl_, delta)
    first = np.r_[True, pl_[1:] != pl_[:-1]]
    rank = np.arange(len(rows)) - np.maximum.accumulate(np.where(first, np.arange(len(rows)), 0))
    c_pool, c_ids, limit = combine(pl_, rank, n_p, p_row, best[p_row] - p_val, limit, max_combos)
    # a combination is worth at most its dual value at any multiplier: drop those that cannot
    # beat the plan at one of a few multipliers near lam (dual values add up over rows)
    lam_j = lam[:, None] * PROBE[None, :]  # (pools, J)
    lv_ = p_path.astype(np.intp)
    d_p = demand[rows[p_row][:, None], np.arange(demand.shape[1])[None, :], lv_]
    w_p = np.take_along_axis(wmu[p_row], lv_, axis=1)
    g_j = (np.maximum(w_p[:, :, None] - lam_j[pl_[p_row]][:, None, :], 0.0) * d_p[:, :, None]).sum(
        1
    )
    ok_c = c_ids >= 0
    dual = (g_j[np.maximum(c_ids, 0)] * ok_c[:, :, None]).sum(axis=1) + lam_j[c_pool] * s_p[
        c_pool, None
    ]
    worth = dual.min(axis=1) > phi[pools][c_pool] + EPS * np.maximum(
        np.abs(phi[pools][c_pool]), 1.0
    )
    c_pool, c_ids = c_pool[worth], c_ids[worth]
    # evaluate every combination exactly: (combination, rank x week) cells, absent ranks 0
    t_len = demand.shape[1]
    ok = c_ids >= 0
    pid = np.maximum(c_ids, 0)
    r_loc = p_row[pid]  # (C, width)
    lev = p_path[pid].astype(np.intp)  # (C, width, T)
    d = demand[rows[r_loc][:, :, None], np.arange(t_len)[None, None, :], lev] * ok[:, :, None]
    w = np.take_along_axis(wmu[r_loc], lev, axis=2)
    n_c = len(c_pool)
    cells = d.shape[1] * d.shape[2]
    fl, rel = knapsack_value(d.reshape(n_c, cells), w.reshape(n_c, cells), s_p[c_pool])
    bound = np.maximum(upper - limit, phi[pools])  # dropped combinations: worth <= phi
    np.maximum.at(bound, c_pool, rel)
    found = np.full(n_p, -np.inf)
    np.maximum.at(found, c_pool, fl)
    improves = found > phi[pools] + EPS * np.maximum(np.abs(phi[pools]), 1.0)
    win = np.zeros(len(c_pool), dtype=bool)
    win[improves[c_pool] & (fl >= found[c_pool])] = True
    wi = np.nonzero(win)[0]
    wi = wi[np.unique(c_pool[wi], return_index=True)[1]]  # one combination per pool
    new_path = np.full((len(rows), t_len), -1, dtype=np.int8)
    sel = ok[wi]
    new_path[r_loc[wi][sel]] = p_path[pid[wi][sel]]
    return np.minimum(bound, upper), np.maximum(found, phi[pools]), rows, new_path
