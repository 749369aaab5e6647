"""Best ladder path of every row at once: a dynamic programme over (week, level, weeks held).

For per-unit weights ``w[r, k]`` (base currency), a row's path value is
``sum_t demand[r, t, k_t] * max(w[r, k_t], 0)`` (units are sold only where they are worth
it, so the value is an upper bound for the fluid model). The state is the ladder level and
how many weeks the current price has held (capped at ``min_weeks_between_changes``); the
price starts the season at full price. All arrays are rows × levels × held: numpy does the
rows, Python loops only over weeks and levels.
"""

from __future__ import annotations

import numpy as np

NEG = -np.inf


def _best_change(v: np.ndarray, monotone: bool) -> tuple[np.ndarray, np.ndarray]:
    """For each level k, the best value over levels one may change to and its level.

    Monotone: levels k' > k (the smallest k' among ties); else any k' != k.
    """
    r, lv = v.shape
    val = np.full((r, lv), NEG)
    arg = np.zeros((r, lv), dtype=np.int8)
    if monotone:
        for k in range(lv - 2, -1, -1):
            take = v[:, k + 1] >= val[:, k + 1]
            val[:, k] = np.where(take, v[:, k + 1], val[:, k + 1])
            arg[:, k] = np.where(take, k + 1, arg[:, k + 1])
        return val, arg
    a1 = np.argmax(v, axis=1)
    t1 = np.take_along_axis(v, a1[:, None], axis=1)[:, 0]
    v2 = v.copy()
    np.put_along_axis(v2, a1[:, None], NEG, axis=1)
    a2 = np.argmax(v2, axis=1)
    t2 = np.take_along_axis(v2, a2[:, None], axis=1)[:, 0]
    own = np.arange(lv)[None, :] == a1[:, None]
    val = np.where(own, t2[:, None], t1[:, None])
    arg = np.where(own, a2[:, None], a1[:, None]).astype(np.int8)
    return val, arg


def best_paths(
    demand: np.ndarray,
    weight: np.ndarray,
    n_levels: np.ndarray,
    *,
    monotone: bool = True,
    min_weeks: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Path (R, T) of ladder levels maximising the clipped value, and that value (R,).

    Ties go to the shallower discount (and to keeping the price).
    """
    r, t_len, lv = demand.shape
    m = max(1, int(min_weeks))
    gain_w = np.maximum(weight, 0.0)
    invalid = np.arange(lv)[None, :] >= n_levels[:, None]
    held_next = np.minimum(np.arange(m) + 1, m - 1)
    nxt = np.empty((max(t_len - 1, 0), r, lv, m), dtype=np.int8)
    levels = np.broadcast_to(np.arange(lv, dtype=np.int8)[None, :], (r, lv))
    v = np.zeros((r, lv, m))
    for t in range(t_len - 1, -1, -1):
        gain = demand[:, t, :] * gain_w
        gain[invalid] = NEG
        if t == t_len - 1:
            v = np.repeat(gain[:, :, None], m, axis=2)
            continue
        best = v[:, :, held_next]
        ch_val, ch_arg = _best_change(v[:, :, 0], monotone)
        free = best[:, :, m - 1]
        move = ch_val > free
        dec = np.repeat(levels[:, :, None], m, axis=2)
        dec[:, :, m - 1] = np.where(move, ch_arg, levels)
        best[:, :, m - 1] = np.where(move, ch_val, free)
        nxt[t] = dec
        v = gain[:, :, None] + best
    start = v[:, :, 0].copy()
    start[:, 0] = v[:, 0, m - 1]  # full price continues: free to change next week
    k = np.argmax(start, axis=1)
    value = start[np.arange(r), k]
    path = np.empty((r, t_len), dtype=np.int8)
    path[:, 0] = k
    held = np.where(k == 0, m - 1, 0)
    rows = np.arange(r)
    for t in range(t_len - 1):
        k2 = nxt[t][rows, k, held]
        held = np.where(k2 == k, held_next[held], 0)
        k = k2
        path[:, t + 1] = k
    return path, value


def path_demand(demand: np.ndarray, path: np.ndarray) -> np.ndarray:
    """(R, T) expected demand along ``path``."""
    return np.take_along_axis(demand, path[:, :, None].astype(np.intp), axis=2)[:, :, 0]


def path_weight(weight: np.ndarray, path: np.ndarray) -> np.ndarray:
    """(R, T) per-unit weight along ``path``."""
    return np.take_along_axis(weight, path.astype(np.intp), axis=1)
