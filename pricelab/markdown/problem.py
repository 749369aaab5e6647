"""A markdown problem as arrays: rows (item × market), weeks, ladder levels and stock pools.

Rows are item × market pairs; each row draws on one stock *pool*: the item's shared stock, or
stock dedicated to that item × market. Demand is the fluid model: week-t expected demand at
ladder level k is ``demand[r, t, k]`` (by default ``base_quantity[r, t] * (1 - k/100) **
elasticity[r]`` through :class:`pricelab.demand.curves.ConstantElasticity`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pricelab.demand.curves import ConstantElasticity
from pricelab.markdown.config import MarkdownConfig


@dataclass
class MarkdownProblem:
    """Everything the solver needs; money per unit in the market's currency unless noted."""

    item_id: np.ndarray  # (R,) str
    market: np.ndarray  # (R,) str
    category: np.ndarray  # (R,) str ('' when unknown)
    full_price: np.ndarray  # (R,) market currency
    fx_rate: np.ndarray  # (R,) market currency per base unit
    unit_cost: np.ndarray  # (R,) market currency
    demand: np.ndarray  # (R, T, L) expected units per week at each ladder level
    pool: np.ndarray  # (R,) pool index of each row
    pool_stock: np.ndarray  # (P,) units
    pool_salvage: np.ndarray  # (P,) base currency per leftover unit
    pool_item: np.ndarray  # (P,) str
    pool_market: np.ndarray  # (P,) str ('' for stock shared by the item's markets)
    config: MarkdownConfig
    base_quantity: np.ndarray | None = None  # (R, T) when the demand is constant-elasticity
    elasticity: np.ndarray | None = None  # (R,)
    price_unit: np.ndarray | None = None  # (R,) the currency's minor unit (None: not rounded)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(rows, weeks, ladder levels)."""
        r, t, lv = self.demand.shape
        return int(r), int(t), int(lv)

    @property
    def ladder(self) -> np.ndarray:
        """Percent off full price of each level."""
        return np.asarray(self.config.ladder, dtype=float)

    def local_price(self) -> np.ndarray:
        """(R, L) price of each row at each level in the market's currency (a shop price on
        the currency's minor unit when ``price_unit`` is set: :func:`shop_prices`)."""
        return shop_prices(self.full_price, self.ladder, self.price_unit)

    def base_price(self) -> np.ndarray:
        """(R, L) price in base currency."""
        return self.local_price() / self.fx_rate[:, None]

    def n_levels(self) -> np.ndarray:
        """(R,) number of allowed ladder levels (a prefix of the ladder).

        Levels deeper than the row's ``max_discount_pct`` (category override first) and levels
        priced below the salvage value (the outlet pays more) are not allowed; full price is.
        """
        lad = self.ladder
        cats = np.unique(self.category)
        cap = np.empty(len(self.category))
        for c in cats:  # one entry per category, not per row
            cap[self.category == c] = self.config.max_discount_for(str(c) or None)
        ok = lad[None, :] <= cap[:, None] + 1e-9
        ok &= self.base_price() >= self.pool_salvage[self.pool][:, None] - 1e-12
        ok[:, 0] = True
        return np.cumprod(ok, axis=1).sum(axis=1).astype(np.int64)

    def targets(self) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Sell-through targets: (pool -> target index or -1, names, minimum units)."""
        pool_cat = np.full(len(self.pool_stock), "", dtype=object)
        pool_cat[self.pool] = self.category
        names: list[str] = []
        units: list[float] = []
        of_pool = np.full(len(self.pool_stock), -1, dtype=np.int64)
        for c in np.unique(pool_cat.astype(str)):
            pct = self.config.target_for(c or None)
            if pct is None or pct <= 0:
                continue
            sel = pool_cat == c
            of_pool[sel] = len(names)
            names.append(str(c) or "(no category)")
            units.append(pct / 100.0 * float(self.pool_stock[sel].sum()))
        return of_pool, names, np.asarray(units, dtype=float)

    def market_targets(self) -> tuple[np.ndarray, list[str], np.ndarray]:
        """Per-market sell-through targets: (row -> target index or -1, markets, min units).

        A market's stock is the stock dedicated to it plus, of every stock its markets share,
        the market's share of that pool's full-price demand over the season.
        """
        rules = self.config.market_rules
        row_t = np.full(len(self.market), -1, dtype=np.int64)
        names: list[str] = []
        units: list[float] = []
        full = self.demand[:, :, 0].sum(axis=1)
        pool_full = np.bincount(self.pool, weights=full, minlength=len(self.pool_stock))
        share = np.where(
            pool_full[self.pool] > 0, full / np.maximum(pool_full[self.pool], 1e-300), 0
        )
        n_rows = np.bincount(self.pool, minlength=len(self.pool_stock))[self.pool]
        share = np.where(pool_full[self.pool] > 0, share, 1.0 / n_rows)
        for m in sorted(rules):
            pct = self.config.market_target_for(m)
            sel = self.market == m
            if pct is None or pct <= 0 or not sel.any():
                continue
            row_t[sel] = len(names)
            names.append(m)
            units.append(pct / 100.0 * float((self.pool_stock[self.pool] * share)[sel].sum()))
        return row_t, names, np.asarray(units, dtype=float)


def shop_prices(full_price: np.ndarray, ladder: np.ndarray, unit: np.ndarray | None) -> np.ndarray:
    """(R, L) ``full price x (1 - discount / 100)``; with ``unit`` (each row's minor unit) a
    price the shop can charge: full price to the nearest unit, every discounted level rounded
    up (never deeper than its step, so ``max_discount_pct`` and the salvage floor hold) and
    never above full price. Rounding is monotone, so a path that never goes up in discount
    never goes up in price."""
    p = np.asarray(full_price, dtype=float)[:, None] * (1.0 - np.asarray(ladder)[None, :] / 100.0)
    if unit is None:
        return p
    u = np.asarray(unit, dtype=float)[:, None]
    k = p / u
    near = np.round(k)
    k = np.where(np.abs(k - near) <= 1e-9 * np.maximum(1.0, np.abs(k)), near, np.ceil(k))
    full = np.round(p[:, :1] / u)
    return np.round(np.minimum(k, full) * u, 6)


def constant_elasticity_demand(
    base_quantity: np.ndarray,
    elasticity: np.ndarray,
    ladder: np.ndarray,
    ratio: np.ndarray | None = None,
) -> np.ndarray:
    """(R, T, L) weekly demand at each ladder level through the one demand object.

    ``ratio`` (R, L): each level's price over full price when prices are rounded to a shop
    price (default ``1 - ladder / 100``).
    """
    curve = ConstantElasticity(
        base_price=np.ones((1, 1, 1)),
        base_quantity=np.asarray(base_quantity, dtype=float)[:, :, None],
        elasticity=np.asarray(elasticity, dtype=float)[:, None, None],
    )
    r = (1.0 - np.asarray(ladder) / 100.0)[None, None, :] if ratio is None else ratio[:, None, :]
    return np.asarray(curve.quantity(r))
