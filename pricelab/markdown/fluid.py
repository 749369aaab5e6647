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


def select(a: FluidOutcome, b: FluidOutcome, pick_b: np.ndarray, pool: np.ndarray) -> FluidOutcome:
    """The outcome of taking each pool's paths from ``b`` where ``pick_b`` (P,), else from
    ``a``: pools are allocated independently, so this equals running :func:`fluid` on the
    mixed paths."""
    rows = pick_b[pool][:, None]
    return FluidOutcome(
        np.where(rows, b.sales, a.sales),
        np.where(pick_b[:, None], b.stock_left, a.stock_left),
        np.where(pick_b, b.revenue, a.revenue),
        np.where(pick_b, b.salvage, a.salvage),
        np.where(pick_b, b.sold, a.sold),
    )


def fluid(
    demand: np.ndarray,
    path: np.ndarray,
    pool: np.ndarray,
    stock: np.ndarray,
    salvage: np.ndarray,
    base_price: np.ndarray,
    priority: np.ndarray | None = None,
) -> FluidOutcome:
    """Allocate every pool's stock at once (:func:`_allocate`).

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
    sales = _allocate(d, rank, pool, np.asarray(stock, dtype=float))
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


def _allocate(d: np.ndarray, rank: np.ndarray, pool: np.ndarray, stock: np.ndarray) -> np.ndarray:
    """(R, T) sales: each pool's stock to its units of the highest ``rank`` first (the
    earlier week, then the earlier row, among ties).

    The cells go into one padded pools x (weeks x rows of the pool) table sorted row by row
    (a short sort per pool), unless the pools' sizes are so uneven that the padding would
    be large; then one sort over all cells.
    """
    r, t_len = d.shape
    n_pools = len(stock)
    counts = np.bincount(pool, minlength=n_pools)
    width = int(counts.max(initial=0))
    if n_pools * width > 4 * max(r, 1):
        return _allocate_flat(d, rank, pool, stock)
    by_pool = np.argsort(pool, kind="stable")
    pos = np.empty(r, dtype=np.int64)
    pos[by_pool] = np.arange(r) - (np.cumsum(counts) - counts)[pool[by_pool]]
    span = t_len * width
    # (R, T) place in the table: week-major within a pool
    cell = pool[:, None] * span + np.arange(t_len)[None, :] * width + pos[:, None]
    key = np.full(n_pools * span, np.inf)
    dm = np.zeros(n_pools * span)
    key[cell] = -rank
    dm[cell] = d
    order = np.argsort(key.reshape(n_pools, span), axis=1, kind="stable")
    order += np.arange(n_pools)[:, None] * span
    ds = dm[order]
    x = np.clip(stock[:, None] - (np.cumsum(ds, axis=1) - ds), 0.0, ds)
    dm[order] = x
    return dm[cell]


def _allocate_flat(
    d: np.ndarray, rank: np.ndarray, pool: np.ndarray, stock: np.ndarray
) -> np.ndarray:
    """:func:`_allocate` by one sort over all cells (pool, rank, week)."""
    r, t_len = d.shape
    flat_pool = np.repeat(pool, t_len)
    week = np.tile(np.arange(t_len), r)
    order = np.lexsort((week, -rank.ravel(), flat_pool))
    dd = d.ravel()[order]
    cum = np.cumsum(dd)
    pool_sorted = flat_pool[order]
    first = np.r_[0, np.flatnonzero(np.diff(pool_sorted)) + 1]
    seg = np.repeat(np.arange(len(first)), np.diff(np.r_[first, len(dd)]))
    start = (cum - dd)[first][seg]
    before = cum - dd - start  # units of the same pool allocated before this one
    x = np.clip(stock[pool_sorted] - before, 0.0, dd)
    sales = np.empty(r * t_len)
    sales[order] = x
    return sales.reshape(r, t_len)
