"""Synthetic sales panels with known true elasticities (for tests and benchmarks)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl


def simulate_panel(
    n_items: int = 50,
    markets: tuple[str, ...] = ("US", "GB"),
    weeks: int = 52,
    base_units: float = 20.0,
    elasticity_mean: float = -2.0,
    elasticity_sd: float = 0.5,
    n_categories: int = 4,
    category_sd: float = 0.0,
    price_sd: float = 0.15,
    promo_rate: float = 0.1,
    promo_effect: float = 0.3,
    season_amp: float = 0.2,
    trend: float = 0.05,
    endogeneity: float = 0.0,
    cost_common: float = 0.0,
    seed: int = 0,
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Weekly Poisson sales per item × market with constant elasticity.

    Returns ``(sales, items, truth)``; ``truth`` has ``item_id, market, true_elasticity``.
    ``category_sd`` spreads category means; ``elasticity_sd`` is the item spread around
    them. ``endogeneity`` > 0 makes prices react to the demand shock (log price moves by
    ``endogeneity`` × shock) while ``unit_cost`` stays an exogenous cost shifter;
    ``cost_common`` is the share of the cost shock common to the item's markets (what
    makes the ``hausman`` instrument relevant).
    """
    rng = np.random.default_rng(seed)
    M, T = len(markets), weeks
    cat = rng.integers(0, n_categories, n_items)
    cat_mean = elasticity_mean + category_sd * rng.standard_normal(n_categories)
    e_item = cat_mean[cat] + elasticity_sd * rng.standard_normal(n_items)
    G = n_items * M
    e = np.repeat(e_item, M)
    base_price = np.exp(rng.uniform(np.log(150), np.log(3000), n_items))
    lp0 = np.repeat(np.log(base_price), M)[:, None] + rng.normal(0, 0.05, (G, 1))
    common = np.repeat(rng.standard_normal((n_items, T)), M, axis=0)
    own = rng.standard_normal((G, T))
    log_cost = (
        lp0 - 0.9 + price_sd * (np.sqrt(cost_common) * common + np.sqrt(1 - cost_common) * own)
    )
    shock = 0.3 * rng.standard_normal((G, T))
    log_price = (
        lp0
        + 0.9 * (log_cost - lp0 + 0.9)
        + endogeneity * shock
        + 0.3 * price_sd * rng.standard_normal((G, T))
    )
    promo = (rng.random((G, T)) < promo_rate).astype(np.int8)
    start = dt.date(2022, 1, 3)
    dates = [start + dt.timedelta(weeks=t) for t in range(T)]
    doy = np.array([d.timetuple().tm_yday for d in dates], dtype=float)
    season = season_amp * np.sin(2 * np.pi * doy / 365.25)
    tr = trend * np.arange(T) / 52.0
    a = np.log(base_units) - e[:, None] * lp0
    eta = a + e[:, None] * log_price + promo_effect * promo + season + tr
    if endogeneity:
        eta = eta + shock
    q = rng.poisson(np.exp(eta))
    item_ids = np.array([f"I{i:06d}" for i in range(n_items)])
    sales = pl.DataFrame(
        {
            "item_id": np.repeat(np.repeat(item_ids, M), T),
            "market": np.repeat(np.tile(np.array(markets), n_items), T),
            "date": np.tile(np.array(dates, dtype="datetime64[D]"), G),
            "price": np.exp(log_price).ravel(),
            "quantity": q.ravel().astype(np.int64),
            "promo": promo.ravel(),
            "unit_cost": np.exp(log_cost).ravel(),
        }
    ).with_columns(pl.col("date").cast(pl.Date))
    items = pl.DataFrame(
        {
            "item_id": item_ids,
            "category": [f"C{c}" for c in cat],
            "brand": [f"B{i % 7}" for i in range(n_items)],
            "boutique_id": [f"S{i % 3}" for i in range(n_items)],
        }
    )
    truth = pl.DataFrame(
        {
            "item_id": np.repeat(item_ids, M),
            "market": np.tile(np.array(markets), n_items),
            "true_elasticity": e,
        }
    )
    return sales, items, truth
