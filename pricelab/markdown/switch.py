"""A cheap first primal step: switch between the two dual paths mid-season.

At a pool's multiplier the DP's path just below it (``a``: sells more than the stock) and
just above it (``b``: sells less) are both optimal for the dual, and they differ in the one
row whose path changes at that multiplier: typically a whole season one level deeper. The
best plan is most often in between: ``b`` until week k, then ``a`` (a later markdown), or
the other way round. Every week k is tried for every pool at once (the rows whose paths
differ switch together), each pool keeps its best valid switch by the fluid model; pools
under a sell-through target keep a switch only if it sells at least as many units. This
leaves the reduced-cost enumeration (:mod:`pricelab.markdown.exact`) a much smaller gap to
close, so it lists far fewer paths and combinations.
"""

from __future__ import annotations

import numpy as np

from pricelab.markdown.choose import valid_paths
from pricelab.markdown.fluid import FluidOutcome, fluid
from pricelab.markdown.problem import MarkdownProblem


def switch_week(
    prob: MarkdownProblem,
    path_a: np.ndarray,
    path_b: np.ndarray,
    path: np.ndarray,
    out: FluidOutcome,
    base_price: np.ndarray,
    of_pool: np.ndarray,
) -> tuple[np.ndarray, FluidOutcome]:
    """The plan with each pool's best switch week (see the module docstring)."""
    diff = (path_a != path_b).any(axis=1)
    pools = np.unique(prob.pool[diff])
    if not len(pools):
        return path, out
    lookup = np.full(len(prob.pool_stock), -1, dtype=np.int64)
    lookup[pools] = np.arange(len(pools))
    rows = np.nonzero(lookup[prob.pool] >= 0)[0]
    pl_ = lookup[prob.pool[rows]]
    dem, bp = prob.demand[rows], base_price[rows]
    stock, salv = prob.pool_stock[pools], prob.pool_salvage[pools]
    cur, a, b, sw = path[rows], path_a[rows], path_b[rows], diff[rows]
    best = fluid(dem, cur, pl_, stock, salv, bp)
    val, sold = best.value, best.sold
    targeted = of_pool[pools] >= 0
    choice = cur.copy()
    cfg = prob.config
    for first, then in ((b, a), (a, b)):
        for k in range(1, path.shape[1]):
            mix = cur.copy()
            mix[sw, :k] = first[sw, :k]
            mix[sw, k:] = then[sw, k:]
            ok = valid_paths(mix, cfg.min_weeks_between_changes, monotone=cfg.monotone)
            bad = np.bincount(pl_, weights=~ok, minlength=len(pools)) > 0
            if bad.all():  # e.g. back up from the deeper path: never on a monotone ladder
                continue
            o = fluid(dem, mix, pl_, stock, salv, bp)
            tol = 1e-12 * np.maximum(np.abs(val), 1.0)
            better = (o.value > val + tol) & ~bad & (~targeted | (o.sold >= sold - 1e-9))
            if better.any():
                take = better[pl_]
                choice[take] = mix[take]
                val, sold = np.where(better, o.value, val), np.where(better, o.sold, sold)
    path = path.copy()
    path[rows] = choice
    return path, fluid(prob.demand, path, prob.pool, prob.pool_stock, prob.pool_salvage, base_price)
