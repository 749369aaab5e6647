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
# (paths per row, combinations per pool, pools: the worst ones first, None = every open pool)
# each pass takes the pools of the largest gap until closing them would prove this fraction
# of the tolerance (the passes stop below half of it)
ENUM_AIM = 0.2
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
    ``best - delta``). Entries stay grouped by row; each week keeps its levels and parents,
    and the paths are read back from the parents at the end.
    """
    r, t_len, lv, m = v.shape
    held_next = np.minimum(np.arange(m) + 1, m - 1)
    delta = delta.astype(float).copy()
    start = v[:, 0, :, 0].copy()
    start[:, 0] = v[:, 0, 0, m - 1]
    best = start.max(axis=1)
    tol = EPS * np.maximum(np.abs(best), 1.0)
    v_flat, g_flat = v.reshape(-1), gain.reshape(-1)
    # week 0: one entry per (row, level)
    row: np.ndarray = np.repeat(np.arange(r), lv)
    k: np.ndarray = np.tile(np.arange(lv), r)
    h: np.ndarray = (k == 0) * (m - 1)
    bound: np.ndarray = start.ravel()
    acc: np.ndarray = np.zeros(len(row))
    par: np.ndarray = np.zeros(len(row), dtype=np.int64)
    levels: list[np.ndarray] = []
    parents: list[np.ndarray] = []
    steps = np.arange(lv)[None, :]
    for t in range(t_len):
        keep = np.nonzero(bound >= (best - delta - tol)[row])[0]
        row, k, h, acc, bound, par = (x[keep] for x in (row, k, h, acc, bound, par))
        (row, k, h, acc, par, bound), delta = _cap(
            row, bound, (k, h, acc, par), best, delta, max_paths
        )
        acc = acc + g_flat[(row * t_len + t) * lv + k]
        levels.append(k.astype(np.int8))
        parents.append(par)
        if t == t_len - 1:
            break
        # expand: every level next week (stay, or change when the price has held long enough)
        stay = steps == k[:, None]
        can = (h == m - 1)[:, None] & ((steps > k[:, None]) if monotone else ~stay)
        i, j = np.nonzero(stay | can)
        h = held_next[h[i]] * (j == k[i])
        row, k, acc, par = row[i], j, acc[i], i
        bound = acc + v_flat[((row * t_len + t + 1) * lv + k) * m + h]
    path = np.empty((len(row), t_len), dtype=np.int8)
    idx = np.arange(len(row))
    for t in range(t_len - 1, -1, -1):
        path[:, t] = levels[t][idx]
        idx = parents[t][idx]
    return row, path, acc, best, delta


def _cap(
    row: np.ndarray,
    bound: np.ndarray,
    rest: tuple[np.ndarray, ...],
    best: np.ndarray,
    delta: np.ndarray,
    cap: int,
) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Keep at most ``cap`` entries per row (the best bounds); lower ``delta`` of the rows
    cut. Returns ((row, *rest, bound) kept, delta)."""
    count = np.bincount(row, minlength=len(best))
    if count.max(initial=0) <= cap:
        return (row, *rest, bound), delta
    thr = _kth_largest(row, bound, count, cap)
    over = count > cap
    delta[over] = np.minimum(delta[over], best[over] - thr[over])
    kept = np.nonzero(bound > thr[row])[0]
    return (row[kept], *(x[kept] for x in rest), bound[kept]), delta


def _kth_largest(group: np.ndarray, x: np.ndarray, count: np.ndarray, k: int) -> np.ndarray:
    """Per group, the (k+1)-th largest ``x`` (-inf where a group has at most k): keeping
    ``x > that`` keeps at most k per group. Entries are contiguous by group; only the groups
    over k go into a groups x entries table, partitioned row by row (no sort)."""
    thr = np.full(len(count), -np.inf)
    over = np.nonzero(count > k)[0]
    if not len(over):
        return thr
    first = np.cumsum(count) - count
    lookup = np.full(len(count), -1, dtype=np.int64)
    lookup[over] = np.arange(len(over))
    e = np.nonzero(lookup[group] >= 0)[0]
    table = np.full((len(over), int(count[over].max())), -np.inf)
    table[lookup[group[e]], e - first[group[e]]] = x[e]
    thr[over] = -np.partition(-table, k, axis=1)[:, k]
    return thr


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

    ``p_row``/``p_rc``: row and reduced cost of each listed path (sorted by row, then by
    reduced cost). Each step adds one rank of the pools' rows and only the paths that still
    fit the budget (counted on a rows x paths table). Returns (pool (C,), path ids
    (C, max rows per pool) with -1 for absent ranks, limit).
    """
    limit = limit.astype(float).copy()
    width = int(rank_of_row.max()) + 1 if len(rank_of_row) else 0
    n_rows = len(pool_of_row)
    starts = np.searchsorted(p_row, np.arange(n_rows))
    counts = np.bincount(p_row, minlength=n_rows)
    table = np.full((n_rows + 1, max(int(counts.max(initial=0)), 1)), np.inf)
    table[p_row, np.arange(len(p_row)) - starts[p_row]] = p_rc
    table[n_rows, 0] = -np.inf  # row -1 (no row at this rank): one empty choice
    starts = np.append(starts, -1)
    rc_ext = np.append(p_rc, 0.0)
    row_at = np.full((n_pools, width), -1)
    row_at[pool_of_row, rank_of_row] = np.arange(n_rows)
    c_pool = np.arange(n_pools)
    c_rc = np.zeros(n_pools)
    cols: list[np.ndarray] = []
    for j in range(width):
        rj = row_at[c_pool, j]
        lim = limit[c_pool]
        budget = lim + EPS * np.maximum(1.0, np.abs(lim)) - c_rc
        cnt = (table[rj] < budget[:, None]).sum(axis=1)
        rep = np.repeat(np.arange(len(c_pool)), cnt)
        off = np.arange(len(rep)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        pid = starts[rj[rep]] + off
        c_pool, c_rc = c_pool[rep], c_rc[rep] + rc_ext[pid]
        cols = [c[rep] for c in cols] + [pid]
        n_c = np.bincount(c_pool, minlength=n_pools)
        if n_c.max(initial=0) > max_combos:
            thr = -_kth_largest(c_pool, -c_rc, n_c, max_combos)  # (k+1)-th smallest
            limit = np.minimum(limit, thr)
            keep = np.nonzero(c_rc < thr[c_pool])[0]
            c_pool, c_rc = c_pool[keep], c_rc[keep]
            cols = [c[keep] for c in cols]
    c_ids = np.stack(cols, axis=1) if cols else np.full((len(c_pool), 0), -1)
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


def _value_combinations(
    demand: np.ndarray,
    wmu: np.ndarray,
    nlev: np.ndarray,
    rows: np.ndarray,
    pl_: np.ndarray,
    rank: np.ndarray,
    p_row: np.ndarray,
    p_path: np.ndarray,
    c_pool: np.ndarray,
    c_ids: np.ndarray,
    stock: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(relaxed, fluid) value of every combination without sorting its cells.

    The relaxed value (units sold best weight first up to the stock, none at a negative
    weight) is a fractional knapsack, equal to its dual ``min_lam lam S + sum_c d_c (w_c -
    lam)+`` over ``lam >= 0``, whose minimum is at 0 or at one of the cells' weights. A
    row's weight depends only on its level, so the pool's candidates are its rows' positive
    level weights: per listed path ``g(lam)`` at each (running sums over the sorted
    candidates), per combination a binary search for the minimum (the first candidate where
    the units above it fit the stock) and a sum of ``g``. The fluid value also sells units of a
    negative weight while stock is left; it differs only for combinations with such units,
    which are valued by sorting their cells (:func:`knapsack_value`).
    """
    n_p, lv = len(stock), wmu.shape[1]
    t_len = demand.shape[1]
    width = int(rank.max()) + 1 if len(rank) else 0
    pos = (np.arange(lv)[None, :] < nlev[:, None]) & (wmu > 0)
    grid = np.zeros((n_p, width * lv + 1))  # lam candidates per pool (0 first)
    grid[pl_[:, None], 1 + rank[:, None] * lv + np.arange(lv)[None, :]] = np.where(pos, wmu, 0.0)
    n = len(p_row)
    lev = p_path.astype(np.intp)
    d_p = demand[rows[p_row][:, None], np.arange(t_len)[None, :], lev]  # (N, T)
    per_level = np.bincount(
        (np.arange(n)[:, None] * lv + lev).ravel(), weights=d_p.ravel(), minlength=n * lv
    ).reshape(n, lv)
    # sorted candidates; each row-level weight's place among its pool's candidates
    slot = 1 + rank[:, None] * lv + np.arange(lv)[None, :]
    order = np.argsort(grid, axis=1, kind="stable")
    grid = np.take_along_axis(grid, order, axis=1)
    n_j = grid.shape[1]
    place = np.empty_like(order)
    np.put_along_axis(place, order, np.broadcast_to(np.arange(n_j), order.shape), axis=1)
    at = place[pl_[:, None], slot]  # (R, L); a candidate below a weight is one before it
    # per path: units and value of the weights above each candidate (a reversed running sum
    # from each weight's place), g = value above - lam x units above; the last row (id -1,
    # no row at that rank) stays 0
    live = (per_level > 0) & pos[p_row]
    cell = (np.arange(n)[:, None] * n_j + at[p_row] - 1)[live]
    size = (n + 1) * n_j
    above = np.bincount(cell, weights=per_level[live], minlength=size).reshape(n + 1, n_j)
    worth = np.bincount(cell, weights=(per_level * wmu[p_row])[live], minlength=size)
    above = np.cumsum(above[:, ::-1], axis=1)[:, ::-1]
    worth = np.cumsum(worth.reshape(n + 1, n_j)[:, ::-1], axis=1)[:, ::-1]
    lam_n = np.vstack([grid[pl_[p_row]], np.zeros((1, n_j))])
    g = worth - lam_n * above
    # the dual is convex with its kinks on the grid: its minimum is at the first candidate
    # where the units above it fit the stock (binary search, all combinations at once)
    s_c = stock[c_pool]
    lo = np.zeros(len(c_pool), dtype=np.int64)
    hi = np.full(len(c_pool), n_j - 1, dtype=np.int64)
    g_flat, above_flat = g.ravel(), above.ravel()
    base = [c_ids[:, j] * n_j for j in range(c_ids.shape[1])]  # -1: the zero row
    base = [np.where(b < 0, n * n_j, b) for b in base]
    while (lo < hi).any():
        mid = (lo + hi) // 2
        units = np.zeros(len(c_pool))
        for b in base:
            units += above_flat[b + mid]
        fits = units <= s_c
        hi = np.where(fits, mid, hi)
        lo = np.where(fits, lo, mid + 1)
    rel = grid[c_pool, lo] * s_c
    for b in base:
        rel += g_flat[b + lo]
    fl = rel.copy()
    neg = np.append((per_level * (wmu[p_row] < 0)).sum(axis=1) > 0, False)
    odd = np.nonzero(neg[c_ids].any(axis=1))[0]
    if len(odd):
        ok = c_ids[odd] >= 0
        pid = np.maximum(c_ids[odd], 0)
        r_loc = p_row[pid]
        lv_c = p_path[pid].astype(np.intp)
        d = demand[rows[r_loc][:, :, None], np.arange(t_len)[None, None, :], lv_c] * ok[..., None]
        w = np.take_along_axis(wmu[r_loc], lv_c, axis=2)
        fl[odd], _ = knapsack_value(
            d.reshape(len(odd), -1), w.reshape(len(odd), -1), stock[c_pool[odd]]
        )
    return rel, fl


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
    order = np.lexsort((best[p_row] - p_val, p_row))  # by row, then reduced cost
    p_row, p_path, p_val = p_row[order], p_path[order], p_val[order]
    limit = slack.copy()
    np.minimum.at(limit, pl_, delta)
    first = np.r_[True, pl_[1:] != pl_[:-1]]
    rank = np.arange(len(rows)) - np.maximum.accumulate(np.where(first, np.arange(len(rows)), 0))
    c_pool, c_ids, limit = combine(pl_, rank, n_p, p_row, best[p_row] - p_val, limit, max_combos)
    rel, fl = _value_combinations(
        demand, wmu, nlev[rows], rows, pl_, rank, p_row, p_path, c_pool, c_ids, s_p
    )
    bound = np.maximum(upper - limit, phi[pools])  # dropped combinations: worth <= phi
    np.maximum.at(bound, c_pool, rel)
    found = np.full(n_p, -np.inf)
    np.maximum.at(found, c_pool, fl)
    improves = found > phi[pools] + EPS * np.maximum(np.abs(phi[pools]), 1.0)
    win = np.zeros(len(c_pool), dtype=bool)
    win[improves[c_pool] & (fl >= found[c_pool])] = True
    wi = np.nonzero(win)[0]
    wi = wi[np.unique(c_pool[wi], return_index=True)[1]]  # one combination per pool
    new_path = np.full((len(rows), demand.shape[1]), -1, dtype=np.int8)
    ids = c_ids[wi]
    sel = ids >= 0
    new_path[p_row[ids[sel]]] = p_path[ids[sel]]
    return np.minimum(bound, upper), np.maximum(found, phi[pools]), rows, new_path
