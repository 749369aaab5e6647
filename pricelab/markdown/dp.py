"""Best ladder path of every row at once: a dynamic programme over (week, level, weeks held).

For per-unit weights ``w[r, k]`` (base currency), a row's path value is
``sum_t demand[r, t, k_t] * max(w[r, k_t], 0)`` (units are sold only where they are worth
it, so the value is an upper bound for the fluid model). The state is the ladder level and
how many weeks the current price has held (capped at ``min_weeks_between_changes``); the
price starts the season at full price.

The arrays are level-major, levels x rows (demand as weeks x levels x rows,
:func:`level_major`): numpy does the rows as contiguous vectors, Python loops only over
weeks and levels, and choices are made with ``maximum`` and integer blends instead of
``where``/``argmax`` on random masks (several times slower per element).
"""

from __future__ import annotations

from typing import Any

import numpy as np

NEG = -np.inf


def level_major(demand: np.ndarray, block: int = 2048) -> np.ndarray:
    """(T, L, R) contiguous copy of a (R, T, L) demand block, copied ``block`` rows at a
    time (a cache-sized transpose: several times faster than one strided copy)."""
    demand = np.asarray(demand, dtype=float)
    r, t_len, lv = demand.shape
    out = np.empty((t_len, lv, r))
    for i in range(0, r, block):
        out[:, :, i : i + block] = demand[i : i + block].transpose(1, 2, 0)
    return out


def _blend(a: Any, b: Any, take: np.ndarray) -> np.ndarray:
    """``where(take, b, a)`` for small integers, without a branch per element."""
    return a + take * (b - a)


def _monotone_change(v0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each level k: the best value over deeper levels k' > k and the smallest such k'
    among ties (-inf and k itself where there is none)."""
    lv, r = v0.shape
    val = np.empty((lv, r))
    arg = np.empty((lv, r), dtype=np.int8)
    val[lv - 1] = NEG
    arg[lv - 1] = lv - 1
    for k in range(lv - 2, -1, -1):
        take = v0[k + 1] >= val[k + 1]
        np.maximum(v0[k + 1], val[k + 1], out=val[k])
        arg[k] = _blend(arg[k + 1], np.int8(k + 1), take)
    return val, arg


def _any_change(v0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each level k: the best value over every other level and its level (the first
    among ties)."""
    lv, r = v0.shape
    b1, a1 = v0[0].copy(), np.zeros(r, dtype=np.int8)
    for k in range(1, lv):
        better = v0[k] > b1
        a1 = _blend(a1, np.int8(k), better)
        np.maximum(b1, v0[k], out=b1)
    b2, a2 = np.full(r, NEG), np.zeros(r, dtype=np.int8)
    for k in range(lv):
        cand = np.where(a1 == k, NEG, v0[k])
        better = cand > b2
        a2 = _blend(a2, np.int8(k), better)
        np.maximum(b2, cand, out=b2)
    own = np.arange(lv, dtype=np.int8)[:, None] == a1[None, :]
    val = np.where(own, b2[None, :], b1[None, :])
    arg = _blend(a1[None, :], a2[None, :], own).astype(np.int8)
    return val, arg


BLOCK = 16384  # rows per DP block: a week's level x row arrays stay in cache


def best_paths_lm(
    demand_t: np.ndarray,
    weight: np.ndarray,
    n_levels: np.ndarray,
    *,
    monotone: bool = True,
    min_weeks: int = 1,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(path (R, T), clipped value (R,), clipped units (R,)) from level-major demand.

    ``demand_t`` is (T, L, N); ``rows`` picks the R rows of it that ``weight`` (R, L) and
    ``n_levels`` (R,) describe (default: all). Clipped units are the units of the path in
    weeks where its weight is positive. Ties go to the shallower discount (and to keeping
    the price). Rows are solved ``BLOCK`` at a time.
    """
    r = weight.shape[0]
    if r <= BLOCK:
        return _block(demand_t, weight, n_levels, monotone, min_weeks, rows)
    parts = []
    sub: np.ndarray | slice
    for i in range(0, r, BLOCK):
        sel = slice(i, i + BLOCK)
        sub = sel if rows is None else rows[sel]  # a slice reads a view of the block
        parts.append(_block(demand_t, weight[sel], n_levels[sel], monotone, min_weeks, sub))
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )


def _block(
    demand_t: np.ndarray,
    weight: np.ndarray,
    n_levels: np.ndarray,
    monotone: bool,
    min_weeks: int,
    rows: np.ndarray | slice | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`best_paths_lm` on one block of rows."""
    r, lv = weight.shape
    t_len = demand_t.shape[0]
    m = max(1, int(min_weeks))
    gw = np.ascontiguousarray(np.maximum(weight, 0.0).T)
    pen = np.where(np.arange(lv)[:, None] >= n_levels[None, :], NEG, 0.0)

    def dem(t: int) -> np.ndarray:
        return demand_t[t] if rows is None else demand_t[t][:, rows]

    held_next = [min(h + 1, m - 1) for h in range(m)]
    dec = np.empty((max(t_len - 1, 0), lv, r), dtype=np.int8)
    levels = np.arange(lv, dtype=np.int8)[:, None]
    last = dem(t_len - 1) * gw + pen
    v = [last] * m  # v[h]: value from week t on at each level, the price held h weeks
    for t in range(t_len - 2, -1, -1):
        ch_val, ch_arg = (_monotone_change if monotone else _any_change)(v[0])
        move = ch_val > v[m - 1]
        dec[t] = _blend(levels, ch_arg, move)
        g = dem(t) * gw + pen
        stay_free = g + np.maximum(ch_val, v[m - 1])
        v = [g + v[held_next[h]] for h in range(m - 1)] + [stay_free]
    start = v[0].copy()
    start[0] = v[m - 1][0]  # full price continues: free to change next week
    value, k = start[0].copy(), np.zeros(r, dtype=np.int64)
    for j in range(1, lv):
        better = start[j] > value
        k = _blend(k, j, better)
        np.maximum(value, start[j], out=value)
    path = np.empty((r, t_len), dtype=np.int8)
    idx = np.arange(r)
    held = np.where(k == 0, m - 1, 0)
    units = np.zeros(r)
    for t in range(t_len):
        path[:, t] = k
        flat = k * r + idx
        units += dem(t).ravel()[flat] * (gw.ravel()[flat] > 0)
        if t == t_len - 1:
            break
        k2 = _blend(k, dec[t].ravel()[flat].astype(np.int64), held == m - 1)
        held = np.where(k2 == k, np.asarray(held_next)[held], 0)
        k = k2
    return path, value, units


def best_paths(
    demand: np.ndarray,
    weight: np.ndarray,
    n_levels: np.ndarray,
    *,
    monotone: bool = True,
    min_weeks: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Path (R, T) of ladder levels maximising the clipped value, and that value (R,), for
    demand given row-major (R, T, L); see :func:`best_paths_lm`."""
    path, value, _ = best_paths_lm(
        level_major(demand), weight, n_levels, monotone=monotone, min_weeks=min_weeks
    )
    return path, value


def path_demand(demand: np.ndarray, path: np.ndarray) -> np.ndarray:
    """(R, T) expected demand along ``path``."""
    r, t_len, lv = demand.shape
    cell = (np.arange(r)[:, None] * t_len + np.arange(t_len)[None, :]) * lv + path
    return np.ascontiguousarray(demand).reshape(-1)[cell]


def path_weight(weight: np.ndarray, path: np.ndarray) -> np.ndarray:
    """(R, T) per-unit weight along ``path``."""
    return np.take_along_axis(weight, path.astype(np.intp), axis=1)
