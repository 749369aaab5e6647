"""Primal repair: a local search over each open pool's ladder paths.

The Lagrangian's paths are optimal for the pool's multiplier, but with a discrete ladder they
rarely sell exactly the pool's stock: a pool either cuts units (sold out before the season
ends) or salvages stock it could have sold. The best plan is usually a few weeks away from
the dual's path (a markdown a week later, one market a level shallower for its first weeks).

Moves, per row and week t (``min_weeks_between_changes``, monotonicity and the row's allowed
levels are checked on the moved path):

- shift the tail (weeks t..) or the head (weeks ..t) one level deeper or up;
- set the tail or the head to at least / at most the level at t plus or minus 1 or 2
  (a later or earlier markdown, one market's first weeks at a shallower level).

Every round scores every move of every open pool at once from row sums (units, value per
row, the pool's cheapest unit for what a sell-out cuts), checks the ``KEEP`` best per pool
exactly with the fluid model, and applies each pool's best improving move. Pools that did
not improve leave the search. The score is the pool's Lagrangian value (value + mu_g * units
sold for pools under a sell-through target); the caller keeps the targets met.
"""

from __future__ import annotations

import numpy as np

from pricelab.markdown.choose import valid_paths
from pricelab.markdown.dp import path_demand, path_weight
from pricelab.markdown.fluid import fluid

KEEP = 16
ROUNDS = 12
CHUNK_ROWS = 2000


def _moves(path: np.ndarray, nlev: np.ndarray) -> np.ndarray:
    """(R, 12T, T) moved paths; -1 marks a move off the row's ladder (invalid ones are
    dropped later by ``valid_paths``)."""
    r, t_len = path.shape
    wk = np.arange(t_len)
    tail = wk[None, :] >= wk[:, None]  # (T start, T week)
    head = wk[None, :] <= wk[:, None]  # weeks up to t
    p16 = path.astype(np.int16)
    steps = np.concatenate([tail, -1 * tail, head, -1 * head], axis=0).astype(np.int16)
    out = [p16[:, None, :] + steps[None, :, :]]
    at = p16[:, :, None]  # level at the move's week, (R, T, 1)
    for delta in (1, 2):
        for span, deeper in ((tail, True), (tail, False), (head, True), (head, False)):
            k = at + (delta if deeper else -delta)  # (R, T start, 1)
            cur = p16[:, None, :]
            new = np.maximum(cur, k) if deeper else np.minimum(cur, k)
            out.append(np.where(span[None, :, :], new, cur))
    moved = np.concatenate(out, axis=1)
    top = (nlev - 1).astype(np.int16)[:, None, None]
    return np.where((moved < 0) | (moved > top), -1, moved)


def _chunk_round(
    dem: np.ndarray,
    w: np.ndarray,
    bp: np.ndarray,
    nlev: np.ndarray,
    path: np.ndarray,
    pl_: np.ndarray,
    stock: np.ndarray,
    salv: np.ndarray,
    mu: np.ndarray,
    min_weeks: int,
    monotone: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """One round on a set of pools: (new paths, True per pool where a move was applied)."""
    n_p = len(stock)
    r, t_len = path.shape
    cur = fluid(dem, path, pl_, stock, salv, bp)
    score = cur.value + mu * cur.sold
    moved = _moves(path, nlev)  # (R, M, T)
    m_n = moved.shape[1]
    off = (moved < 0).any(axis=2)
    safe = np.maximum(moved, 0).astype(np.intp)
    d_new = np.take_along_axis(dem[:, None, :, :], safe[:, :, :, None], axis=3)[..., 0]
    w_new = np.take_along_axis(w[:, None, :], safe, axis=2)  # (R, M, T)
    d_cur = path_demand(dem, path)
    w_cur = path_weight(w, path)
    mu_r = mu[pl_]
    row_val = ((w_cur + mu_r[:, None]) * d_cur).sum(axis=1)
    row_d = d_cur.sum(axis=1)
    new_val = ((w_new + mu_r[:, None, None]) * d_new).sum(axis=2)
    new_d = d_new.sum(axis=2)
    pool_val = np.bincount(pl_, weights=row_val, minlength=n_p)
    pool_d = np.bincount(pl_, weights=row_d, minlength=n_p)
    row_low = np.where(d_cur > 0, w_cur, np.inf).min(axis=1)
    low1 = np.full(n_p, np.inf)
    np.minimum.at(low1, pl_, row_low)
    is_low = row_low <= low1[pl_]
    low2 = np.full(n_p, np.inf)
    np.minimum.at(low2, pl_[~is_low], row_low[~is_low])
    other_low = np.where(is_low, low2[pl_], low1[pl_])
    new_low = np.minimum(np.where(d_new > 0, w_new, np.inf).min(axis=2), other_low[:, None])
    d_tot = (pool_d[pl_] - row_d)[:, None] + new_d
    cut = np.maximum(d_tot - stock[pl_][:, None], 0.0)
    new_low = np.where(np.isfinite(new_low), new_low, 0.0)
    est = (
        salv[pl_][:, None] * stock[pl_][:, None]
        + (pool_val[pl_] - row_val)[:, None]
        + new_val
        - cut * (new_low + mu_r[:, None])
    )
    ok: np.ndarray = np.logical_not(off)
    ok[ok] = valid_paths(moved[ok].astype(np.int8), min_weeks, monotone=monotone)
    gain = np.where(ok, est - score[pl_][:, None], -np.inf)
    # per pool: the KEEP best (row, move) candidates
    first = np.r_[True, pl_[1:] != pl_[:-1]]
    rank = np.arange(r) - np.maximum.accumulate(np.where(first, np.arange(r), 0))
    width = int(rank.max()) + 1
    grid = np.full((n_p, width * m_n), -np.inf)
    grid[pl_[:, None], rank[:, None] * m_n + np.arange(m_n)[None, :]] = gain
    k = min(KEEP, grid.shape[1])
    top = np.argsort(-grid, axis=1, kind="stable")[:, :k]  # (P, k)
    top_gain = np.take_along_axis(grid, top, axis=1)
    live = top_gain > 1e-9 * np.maximum(np.abs(score), 1.0)[:, None]
    if not live.any():
        return path, np.zeros(n_p, dtype=bool)
    row_of = np.full((n_p, width), -1)
    row_of[pl_, rank] = np.arange(r)
    pc, kc = np.nonzero(live)
    cand_row = row_of[pc, top[pc, kc] // m_n]
    cand_move = top[pc, kc] % m_n
    # exact check: every candidate is a copy of its pool with one row moved
    order = np.argsort(pl_, kind="stable")
    start = np.searchsorted(pl_[order], np.arange(n_p))
    size = np.bincount(pl_, minlength=n_p)
    c_n = len(pc)
    rep = np.repeat(np.arange(c_n), size[pc])
    within = np.arange(len(rep)) - np.repeat(np.cumsum(size[pc]) - size[pc], size[pc])
    rows = order[start[pc][rep] + within]
    cp = path[rows].copy()
    hit = rows == cand_row[rep]
    cp[hit] = moved[cand_row[rep[hit]], cand_move[rep[hit]]].astype(np.int8)
    o = fluid(dem[rows], cp, rep, stock[pc], salv[pc], bp[rows])
    c_score = o.value + mu[pc] * o.sold
    best = np.full(n_p, -np.inf)
    np.maximum.at(best, pc, c_score)
    improved = best > score + 1e-9 * np.maximum(np.abs(score), 1.0)
    win = improved[pc] & (c_score >= best[pc])
    wi = np.nonzero(win)[0]
    wi = wi[np.unique(pc[wi], return_index=True)[1]]  # one move per pool
    new = path.copy()
    new[cand_row[wi]] = moved[cand_row[wi], cand_move[wi]].astype(np.int8)
    return new, improved


def local_search(
    demand: np.ndarray,
    weight: np.ndarray,
    base_price: np.ndarray,
    nlev: np.ndarray,
    path: np.ndarray,
    pool: np.ndarray,
    stock: np.ndarray,
    salvage: np.ndarray,
    mu_pool: np.ndarray,
    pools: np.ndarray,
    *,
    min_weeks: int,
    monotone: bool = True,
    rounds: int = ROUNDS,
) -> np.ndarray:
    """Improved paths (R, T) for the rows of ``pools``; other rows are returned unchanged.

    ``weight`` is price minus salvage (base currency) per row and level.
    """
    path = path.copy()
    active = np.asarray(pools)
    for _ in range(rounds):
        if not len(active):
            break
        still: list[np.ndarray] = []
        per_chunk = max(1, CHUNK_ROWS // max(1, int(np.bincount(pool).max())))
        for i in range(0, len(active), per_chunk):
            sel = active[i : i + per_chunk]
            rows = np.nonzero(np.isin(pool, sel))[0]
            lookup = np.full(len(stock), -1, dtype=np.int64)
            lookup[sel] = np.arange(len(sel))
            pl_ = lookup[pool[rows]]
            srt = np.argsort(pl_, kind="stable")
            rows, pl_ = rows[srt], pl_[srt]
            new, improved = _chunk_round(
                demand[rows],
                weight[rows],
                base_price[rows],
                nlev[rows],
                path[rows],
                pl_,
                np.asarray(stock, dtype=float)[sel],
                salvage[sel],
                mu_pool[sel],
                min_weeks,
                monotone,
            )
            path[rows] = new
            still.append(sel[improved])
        active = np.concatenate(still) if still else active[:0]
    return path
