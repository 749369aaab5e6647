"""Database mode: a markdown problem from ``inventory``, sales history and production estimates.

- stock: ``inventory`` (a row with a market is dedicated stock, without one it is shared by
  the item's markets); items with no stock left are not planned.
- full price: the last regular (non-promo) price of each item × market.
- elasticity: the estimate run optimize uses (production if promoted, else the latest).
- weekly base demand: the recent baseline (:func:`pricelab.demand.from_store.demand_from_store`,
  units per week at the current price) moved to full price through the demand curve, then
  projected week by week with a seasonal and age curve estimated from the history pooled
  by category × market: ``log q = a_im + e log p + promo + d * age + s sin + c cos`` where
  ``age`` is weeks since the item × market's first sale and sin/cos are the week's day of
  the year; the item × market intercepts are removed by demeaning (a within fit, the price
  term moved to the left with the estimated elasticity) and one (d, s, c, promo) is fitted
  per category × market by least squares, all groups in one batched solve. Week t of the
  plan is the baseline times ``exp(d (age_t - age_now) + s (sin_t - sin_now) + c (cos_t -
  cos_now))``, with "now" the middle of the baseline window, clipped to [0.05, 5].
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
import polars as pl

from pricelab.demand.curves import ConstantElasticity
from pricelab.errors import UsageError
from pricelab.markdown.config import MarkdownConfig
from pricelab.markdown.problem import MarkdownProblem, constant_elasticity_demand
from pricelab.store.db import Store

YEAR = 365.25
FACTOR_CLIP = (0.05, 5.0)


def _horizon(cfg: MarkdownConfig, season_end: dt.date | None, last: dt.date) -> int:
    end = season_end or cfg.season_end
    if end is None:
        if cfg.weeks is None:
            raise UsageError("give the season's end: --season-end YYYY-MM-DD or weeks: in the YAML")
        return int(cfg.weeks)
    weeks = (end - last).days // 7
    if weeks < 1:
        raise UsageError(f"season end {end} is not after the last week of sales ({last})")
    return int(weeks)


def season_curves(store: Store, elasticities: pl.DataFrame) -> pl.DataFrame:
    """Age and season slopes per category × market (columns age, sin, cos, promo)."""
    s = store.query(
        "SELECT s.item_id, s.market, s.date, s.price, s.quantity, coalesce(s.promo, 0) AS promo, "
        "i.category FROM sales s LEFT JOIN items i USING (item_id) WHERE s.price > 0"
    ).join(elasticities.select("item_id", "market", "elasticity"), on=["item_id", "market"])
    theta = 2 * math.pi * pl.col("date").dt.ordinal_day() / YEAR
    first = pl.col("date").min().over("item_id", "market")
    s = s.with_columns(
        pl.col("category").fill_null(""),
        ((pl.col("quantity") + 0.5).log() - pl.col("elasticity") * pl.col("price").log()).alias(
            "y"
        ),
        ((pl.col("date") - first).dt.total_days() / 7.0).alias("age"),
        theta.sin().alias("sin"),
        theta.cos().alias("cos"),
        pl.col("promo").cast(pl.Float64),
    )
    xs = ["age", "sin", "cos", "promo"]
    s = s.with_columns(
        [(pl.col(c) - pl.col(c).mean().over("item_id", "market")).alias(c) for c in [*xs, "y"]]
    )
    agg = s.group_by("category", "market", maintain_order=True).agg(
        *[(pl.col(a) * pl.col(b)).sum().alias(f"{a}*{b}") for a in xs for b in [*xs, "y"]],
        pl.len().alias("n"),
    )
    k = len(xs)
    xtx = np.stack([agg[f"{a}*{b}"].to_numpy() for a in xs for b in xs], axis=1).reshape(-1, k, k)
    xty = np.stack([agg[f"{a}*y"].to_numpy() for a in xs], axis=1)
    beta = np.linalg.solve(xtx + 1e-9 * np.eye(k)[None], xty[:, :, None])[:, :, 0]
    return agg.select("category", "market", "n").with_columns(
        *[pl.Series(c, beta[:, i]) for i, c in enumerate(xs)]
    )


def _regular_prices(store: Store) -> pl.DataFrame:
    return store.query(
        "SELECT item_id, market, arg_max(price, date) AS full_price FROM sales "
        "WHERE coalesce(promo, 0) = 0 AND price > 0 GROUP BY item_id, market"
    )


def markdown_from_store(
    store: Store,
    cfg: MarkdownConfig,
    *,
    season_end: dt.date | None = None,
    estimates: str | None = None,
    baseline_weeks: int = 8,
) -> tuple[MarkdownProblem, str, dict[str, Any]]:
    """The problem, the estimate run it used and what the demand model did (for lineage)."""
    from pricelab.demand.from_store import demand_from_store
    from pricelab.markdown.files import attach_stock

    if store.count("inventory") == 0:
        raise UsageError("the database has no inventory: ingest --inventory first")
    table, run_id = demand_from_store(store, estimates=estimates, baseline_weeks=baseline_weeks)
    last = store.execute("SELECT max(date) FROM sales")[0][0]
    t_len = _horizon(cfg, season_end, last)
    if "category" not in table.columns:
        table = table.with_columns(pl.lit("").alias("category"))
    stocked = store.query("SELECT DISTINCT item_id FROM inventory WHERE stock > 0")
    rows = (
        table.join(stocked, on="item_id", how="semi")
        .join(_regular_prices(store), on=["item_id", "market"], how="left")
        .with_columns(pl.col("category").fill_null(""))
    )
    usable = (
        pl.col("elasticity").is_not_null()
        & pl.col("elasticity").is_finite()
        & (pl.col("elasticity") < 0)
        & pl.col("full_price").is_not_null()
        & (pl.col("base_quantity") > 0)
    )
    skipped = rows.filter(~usable).height
    rows = rows.filter(usable).sort("item_id", "market")
    if rows.height == 0:
        raise UsageError("no stocked item × market has a usable elasticity, price and sales")
    e = rows["elasticity"].to_numpy()
    q_full = ConstantElasticity(
        base_price=rows["base_price"].to_numpy(),
        base_quantity=rows["base_quantity"].to_numpy(),
        elasticity=e,
    ).quantity(rows["full_price"].to_numpy())
    curves = season_curves(store, rows)
    factor = _projection(store, rows, curves, last, t_len, baseline_weeks)
    base = q_full[:, None] * factor
    inv = (
        store.table("inventory")
        .with_columns(pl.col("market").fill_null(""))
        .group_by("item_id", "market")
        .agg(pl.col("stock").sum())
    )
    has = rows.join(
        inv.select("item_id", "market"), on=["item_id", "market"], how="left", coalesce=True
    )
    shared = inv.filter(pl.col("market") == "").select("item_id", pl.lit(True).alias("_s"))
    dedicated = inv.filter(pl.col("market") != "").select(
        "item_id", "market", pl.lit(True).alias("_d")
    )
    has = rows.join(shared, on="item_id", how="left").join(
        dedicated, on=["item_id", "market"], how="left"
    )
    keep = (has["_s"].fill_null(False) | has["_d"].fill_null(False)).to_numpy()
    rows, base, e = rows.filter(pl.Series(keep)), base[keep], e[keep]
    inv = inv.join(
        pl.concat(
            [rows.select("item_id", "market"), rows.select("item_id", pl.lit("").alias("market"))]
        ).unique(),
        on=["item_id", "market"],
        how="semi",
    )
    prob = attach_stock(rows, base, inv, "inventory", cfg, elasticity=e)
    info = {
        "weeks": t_len,
        "from_week": (last + dt.timedelta(days=7)).isoformat(),
        "skipped_rows": skipped,
        "curves": curves.to_dicts(),
    }
    return prob, run_id, info


def _projection(
    store: Store, rows: pl.DataFrame, curves: pl.DataFrame, last: dt.date, t_len: int, bw: int
) -> np.ndarray:
    first = store.query("SELECT item_id, market, min(date) AS first FROM sales GROUP BY ALL")
    r = rows.join(first, on=["item_id", "market"], how="left").join(
        curves, on=["category", "market"], how="left"
    )
    age_last = np.array([(last - f).days / 7.0 for f in r["first"].to_list()])
    now = last - dt.timedelta(days=7 * (bw - 1) / 2)
    dates = [last + dt.timedelta(days=7 * (t + 1)) for t in range(t_len)]
    th = np.array([2 * math.pi * d.timetuple().tm_yday / YEAR for d in dates])
    th_now = 2 * math.pi * now.timetuple().tm_yday / YEAR
    d_age = (
        age_last[:, None] + np.arange(1, t_len + 1)[None, :] - (age_last[:, None] - (bw - 1) / 2)
    )
    coef = {c: r[c].fill_null(0.0).to_numpy() for c in ("age", "sin", "cos")}
    log_f = (
        coef["age"][:, None] * d_age
        + coef["sin"][:, None] * (np.sin(th) - math.sin(th_now))[None, :]
        + coef["cos"][:, None] * (np.cos(th) - math.cos(th_now))[None, :]
    )
    return np.clip(np.exp(log_f), *FACTOR_CLIP)


__all__ = ["constant_elasticity_demand", "markdown_from_store", "season_curves"]
