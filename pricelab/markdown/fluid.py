"""Expected sales along chosen paths: the fluid model with stock allocation.

Each week's expected demand is ``demand[r, t, path[r, t]]``; a pool's stock is allocated to
the units worth most (price in base currency, highest first; the earlier week first among
equal prices) until it runs out. For stock dedicated to one market whose price never goes
back up this is exactly "sales capped by the stock left" (weeks are served in order). For
stock shared by several markets the plan also says how many units each market gets when
the stock cannot cover them all (the platform stops offering the item where it is worth
least), which is the model's upper bound made reachable.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pricelab.markdown.dp import path_demand


@dataclass
class FluidOutcome:
    """Expected sales (R, T), stock left after each week (P, T), money per pool (base)."""

    sales: np.ndarray
    stock_left: np.ndarray
    revenue: np.ndarray  # (P,) base currency
    salvage: np.ndarray  # (P,) base currency
    sold: np.ndarray  # (P,) units

    @property
    def value(self) -> np.ndarray:
        """Revenue plus salvage value per pool."""
        return self.revenue + self.salvage


def fluid(
    demand: np.ndarray,
    path: np.ndarray,
    pool: np.ndarray,
    stock: np.ndarray,
    salvage: np.ndarray,
    base_price: np.ndarray,
    priority: np.ndarray | None = None,
) -> FluidOutcome:
    """Allocate every pool's stock at once (one sort over all row-weeks).

    ``priority`` (R,) is added to the price when ranking units (a market's sell-through
    multiplier: shared stock goes to the target's market first); revenue is at the price.
    """
    d = path_demand(demand, path)
    n_pools = len(stock)
    r, t_len = d.shape
    price = np.take_along_axis(base_price, path.astype(np.intp), axis=1)
    flat_pool = np.repeat(pool, t_len)
    week = np.tile(np.arange(t_len), r)
    rank = price if priority is None else price + priority[:, None]
    order = np.lexsort((week, -rank.ravel(), flat_pool))
    dd = d.ravel()[order]
    cum = np.cumsum(dd)
    pool_sorted = flat_pool[order]
    first = np.r_[0, np.flatnonzero(np.diff(pool_sorted)) + 1]
    seg = np.repeat(np.arange(len(first)), np.diff(np.r_[first, len(dd)]))
    start = (cum - dd)[first][seg]
    before = cum - dd - start  # units of the same pool allocated before this one
    cap = np.asarray(stock, dtype=float)[pool_sorted]
    x = np.clip(cap - before, 0.0, dd)
    sales = np.empty(r * t_len)
    sales[order] = x
    sales = sales.reshape(r, t_len)
    sold_week = np.bincount(
        flat_pool * t_len + week, weights=sales.ravel(), minlength=n_pools * t_len
    ).reshape(n_pools, t_len)
    stock_left = np.maximum(
        np.asarray(stock, dtype=float)[:, None] - np.cumsum(sold_week, axis=1), 0.0
    )
    sold = sold_week.sum(axis=1)
    left = np.maximum(np.asarray(stock, dtype=float) - sold, 0.0)
    revenue = np.bincount(pool, weights=(sales * price).sum(axis=1), minlength=n_pools)
    return FluidOutcome(sales, stock_left, revenue, left * salvage, sold)
