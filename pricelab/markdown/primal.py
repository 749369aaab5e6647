"""Primal steps after the Lagrangian: enumeration, path mixing and local search per pool.

Each works on the pools whose own gap is still open and keeps every sell-through target
met (:func:`pricelab.markdown.choose.choose_and_repair`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pricelab.markdown.fluid import FluidOutcome, fluid, select
from pricelab.markdown.problem import MarkdownProblem

if TYPE_CHECKING:
    from pricelab.markdown.solver import _Rows

CELLS_PER_CHUNK = 12_000_000  # combinations x cells valued at once by the enumeration


def _mix(
    prob: MarkdownProblem,
    path_a: np.ndarray,
    path_b: np.ndarray,
    path: np.ndarray,
    out: FluidOutcome,
    pool_ub: np.ndarray,
    mu_pool: np.ndarray,
    of_pool: np.ndarray,
    base_price: np.ndarray,
) -> tuple[np.ndarray, FluidOutcome]:
    """Try switching from the b path to the a path mid-season in the pools left open.

    At the pool's multiplier both paths are (nearly) optimal for the dual, and so is a
    switch between them; a switch that sells closer to the stock closes most of the gap.
    First all of a pool's rows switch in the same week, then each row (by its rank in the
    pool) on its own. Pools under a sell-through target keep a mix only if it sells at
    least as many units. Works on the open pools' rows only.
    """
    from pricelab.markdown.choose import valid_paths

    score = out.value + mu_pool * out.sold
    open_p = np.nonzero((pool_ub - score) > prob.config.gap_tolerance * np.abs(pool_ub))[0]
    if not len(open_p):
        return path, out
    rows = np.nonzero(np.isin(prob.pool, open_p))[0]
    lookup = np.full(len(prob.pool_stock), -1, dtype=np.int64)
    lookup[open_p] = np.arange(len(open_p))
    pl_ = lookup[prob.pool[rows]]
    dem, bp = prob.demand[rows], base_price[rows]
    stock, salv = prob.pool_stock[open_p], prob.pool_salvage[open_p]
    a, b, cur = path_a[rows], path_b[rows], path[rows]
    targeted = of_pool[open_p] >= 0
    best = fluid(dem, cur, pl_, stock, salv, bp)
    first = np.r_[True, pl_[1:] != pl_[:-1]]
    rank = np.arange(len(rows)) - np.maximum.accumulate(np.where(first, np.arange(len(rows)), 0))
    t_len = path.shape[1]
    groups = [np.ones(len(rows), dtype=bool)] + [rank == j for j in range(int(rank.max()) + 1)]
    for sel in groups if rank.max() > 0 else groups[:1]:
        for k in range(1, t_len):
            mix = cur.copy()
            mix[sel, :k] = b[sel, :k]
            mix[sel, k:] = a[sel, k:]
            bad = np.unique(
                pl_[
                    ~valid_paths(
                        mix, prob.config.min_weeks_between_changes, monotone=prob.config.monotone
                    )
                ]
            )
            o = fluid(dem, mix, pl_, stock, salv, bp)
            better = (o.value > best.value + 1e-12) & (~targeted | (o.sold >= best.sold - 1e-9))
            better[bad] = False
            if better.any():
                cur = np.where(better[pl_][:, None], mix, cur)
                best = fluid(dem, cur, pl_, stock, salv, bp)
    path = path.copy()
    path[rows] = cur
    return path, fluid(prob.demand, path, prob.pool, prob.pool_stock, prob.pool_salvage, base_price)


def _polish(
    prob: MarkdownProblem,
    path: np.ndarray,
    out: FluidOutcome,
    pool_ub: np.ndarray,
    mu_pool: np.ndarray,
    of_pool: np.ndarray,
    units: np.ndarray,
    base_price: np.ndarray,
    nlev: np.ndarray,
) -> tuple[np.ndarray, FluidOutcome]:
    """Local search (:mod:`pricelab.markdown.local`) on every pool with a gap; a pool keeps
    its new paths where they score better and every sell-through target stays met."""
    from pricelab.markdown.choose import choose_and_repair
    from pricelab.markdown.local import local_search

    cfg = prob.config
    score = out.value + mu_pool * out.sold
    open_p = np.nonzero((pool_ub - score) > 0.01 * cfg.gap_tolerance * np.abs(pool_ub))[0]
    if not len(open_p):
        return path, out
    w = base_price - prob.pool_salvage[prob.pool][:, None]
    new = local_search(
        prob.demand,
        w,
        base_price,
        nlev,
        path,
        prob.pool,
        prob.pool_stock,
        prob.pool_salvage,
        mu_pool,
        open_p,
        min_weeks=cfg.min_weeks_between_changes,
        monotone=cfg.monotone,
    )
    o_new = fluid(prob.demand, new, prob.pool, prob.pool_stock, prob.pool_salvage, base_price)
    pick = choose_and_repair(out, o_new, mu_pool, of_pool, units)
    path = np.where(pick[prob.pool][:, None], new, path)
    return path, fluid(prob.demand, path, prob.pool, prob.pool_stock, prob.pool_salvage, base_price)


def _enumerate(
    prob: MarkdownProblem,
    dp: _Rows,
    path: np.ndarray,
    out: FluidOutcome,
    pool_ub: np.ndarray,
    lam: np.ndarray,
    mu_pool: np.ndarray,
    of_pool: np.ndarray,
    units: np.ndarray,
    base_price: np.ndarray,
    target_term: float = 0.0,
) -> tuple[np.ndarray, FluidOutcome, np.ndarray]:
    """Close the open pools by reduced-cost enumeration (:mod:`pricelab.markdown.exact`):
    tighter pool bounds, and each pool's best plan found where the targets stay met. A
    first pass with small caps finds better plans (less slack), a second lists more paths
    on the pools still open."""
    from pricelab.markdown.choose import choose_and_repair
    from pricelab.markdown.exact import ENUM_AIM, ENUM_PASSES, close_pools

    cfg = prob.config
    stock = prob.pool_stock.astype(float)
    salv_s = prob.pool_salvage * stock
    pool_ub = pool_ub.copy()
    for max_paths, max_combos, max_pools in ENUM_PASSES:
        upper = float(pool_ub.sum()) - target_term
        if upper - float(out.value.sum()) <= 0.5 * cfg.gap_tolerance * abs(upper):
            break  # proven within tolerance: the next passes only cost time
        score = out.value + mu_pool * out.sold
        gap = pool_ub - score
        open_p = np.nonzero(gap > 0.01 * cfg.gap_tolerance * np.maximum(np.abs(pool_ub), 1.0))[0]
        open_p = open_p[np.argsort(-gap[open_p], kind="stable")[:max_pools]]
        # the worst pools first, only as many as the proven gap needs if they all closed
        need = upper - float(out.value.sum()) - ENUM_AIM * cfg.gap_tolerance * abs(upper)
        open_p = open_p[: int(np.searchsorted(np.cumsum(gap[open_p]), need)) + 1]
        if not len(open_p):
            break
        cand = path.copy()
        width = int(np.bincount(prob.pool).max()) * prob.shape[1]
        step = max(1, CELLS_PER_CHUNK // (max_combos * width))
        for i in range(0, len(open_p), step):  # bounded memory: a chunk of pools at a time
            chunk = open_p[i : i + step]
            bound, _, rows, new = close_pools(
                prob.demand,
                dp.w0,
                dp.nlev,
                prob.pool,
                stock,
                lam,
                mu_pool,
                score - salv_s,
                chunk,
                monotone=cfg.monotone,
                min_weeks=cfg.min_weeks_between_changes,
                max_paths=max_paths,
                max_combos=max_combos,
            )
            pool_ub[chunk] = np.minimum(pool_ub[chunk], bound + salv_s[chunk])
            got = new[:, 0] >= 0
            cand[rows[got]] = new[got]
        if (cand == path).all():
            continue
        o_new = fluid(prob.demand, cand, prob.pool, stock, prob.pool_salvage, base_price)
        pick = choose_and_repair(out, o_new, mu_pool, of_pool, units)
        path = np.where(pick[prob.pool][:, None], cand, path)
        out = select(out, o_new, pick, prob.pool)
    return path, out, pool_ub
