"""Aggregates by scenario × market × category with intervals from summed elasticity draws.

An aggregate's interval is not the sum of row bounds: each draw ``s`` gives every row an
elasticity ``e + std_error * z_s``, the rows are summed within the draw, and the 5% and
95% quantiles of those sums are the interval. Money is converted to the base currency
(divided by ``fx_rate``) so that markets add up.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import sparse

ALL = "(all)"
#: draws × rows held in memory at once (float64: 8 bytes each)
CHUNK_CELLS = 2_000_000


def _levels(market: np.ndarray, category: np.ndarray) -> tuple[pl.DataFrame, np.ndarray,
                                                                sparse.csr_matrix]:
    """Group keys, each row's market × category group, and the roll-up to every level."""
    cats = np.where(category == None, "(none)", category).astype(str)  # noqa: E711
    mc = pl.DataFrame({"market": market.astype(str), "category": cats})
    keys = mc.unique().sort(["market", "category"]).with_row_index("_g")
    gidx = mc.join(keys, on=["market", "category"], how="left", maintain_order="left")["_g"] \
        .to_numpy()
    markets = keys["market"].unique().sort().to_list()
    out_keys = [*keys.select("market", "category").iter_rows(),
                *[(m, ALL) for m in markets], (ALL, ALL)]
    G, M = keys.height, len(markets)
    rows, cols = [], []
    for g, (m, _c) in enumerate(keys.select("market", "category").iter_rows()):
        rows += [g, g, g]
        cols += [g, G + markets.index(m), G + M]
    roll = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(G, G + M + 1))
    frame = pl.DataFrame(out_keys, schema=["market", "category"], orient="row")
    return frame, gidx.astype(np.int64), roll


def aggregate(base: pl.DataFrame, proj: dict[str, np.ndarray], *, draws: int, seed: int,
              fx: np.ndarray) -> pl.DataFrame:
    """Totals of one scenario at market × category, market and overall level.

    Parameters
    ----------
    base : polars.DataFrame
        Baseline rows (``market, category, elasticity, std_error, unit_cost``).
    proj : dict of ndarray
        Output of :func:`pricelab.simulate.project.project_rows` for these rows.
    draws, seed : int
        Number of elasticity draws and the seed of numpy's default generator.
    fx : ndarray
        ``fx_rate`` per row (market currency per base currency unit).

    Returns
    -------
    polars.DataFrame
        ``market, category, n_rows, n_changed, n_missing`` and, for quantity, revenue and
        profit (base currency): ``baseline_*, scenario_*, *_low, *_high, *_delta_pct``.
        Rows whose projection is missing are left out of every sum (``n_missing``); rows
        without a unit cost add nothing to profit.
    """
    frame, gidx, roll = _levels(base["market"].to_numpy(), base["category"].to_numpy())
    G = roll.shape[0]
    ok = ~np.isnan(proj["scenario_quantity"])
    p0 = base["baseline_price"].to_numpy().astype(float)
    c = base["unit_cost"].to_numpy().astype(float)
    p1 = proj["scenario_price"]
    has_cost = ~np.isnan(c)
    w_rev = p1 / fx
    w_pro = np.where(has_cost, (p1 - np.nan_to_num(c)) / fx, 0.0)

    def gsum(v: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.bincount(gidx[mask], weights=v[mask], minlength=G).astype(float)

    q0, q1 = proj["baseline_quantity"], proj["scenario_quantity"]
    point = {
        "baseline_quantity": gsum(q0, ok), "scenario_quantity": gsum(q1, ok),
        "baseline_revenue": gsum(p0 * q0 / fx, ok), "scenario_revenue": gsum(w_rev * q1, ok),
        "baseline_profit": gsum(np.where(has_cost, (p0 - np.nan_to_num(c)) * q0 / fx, 0.0), ok),
        "scenario_profit": gsum(w_pro * q1, ok),
    }
    # draws: fixed rows contribute their point value to every draw
    varying = ok & proj["changed"] & (np.nan_to_num(base["std_error"].to_numpy()) > 0)
    fixed = ok & ~varying
    sums = {k: np.tile(gsum(v * q1, fixed), (draws, 1))
            for k, v in (("quantity", np.ones_like(q1)), ("revenue", w_rev), ("profit", w_pro))}
    idx = np.flatnonzero(varying)
    if idx.size:
        e = base["elasticity"].to_numpy().astype(float)[idx]
        se = base["std_error"].to_numpy().astype(float)[idx]
        log_r = np.log(p1[idx] / p0[idx])
        qb = q0[idx]
        rng = np.random.default_rng(seed)
        step = max(1, CHUNK_CELLS // max(draws, 1))
        for a in range(0, idx.size, step):
            b = min(idx.size, a + step)
            z = rng.standard_normal((draws, b - a))
            qd = qb[a:b] * np.exp((e[a:b] + se[a:b] * z) * log_r[a:b])
            ones = sparse.csr_matrix((np.ones(b - a), (np.arange(b - a), gidx[idx[a:b]])),
                                     shape=(b - a, G))
            for key, w in (("quantity", None), ("revenue", w_rev), ("profit", w_pro)):
                s = ones if w is None else sparse.diags(w[idx[a:b]]) @ ones
                sums[key] += np.asarray(s.T @ qd.T).T
    out = frame.with_columns(
        pl.Series("n_rows", np.asarray(roll.T @ np.bincount(gidx, minlength=G)).astype(np.int64)),
        pl.Series("n_changed", np.asarray(roll.T @ gsum(np.ones_like(q1), proj["changed"]))
                  .astype(np.int64)),
        pl.Series("n_missing", np.asarray(roll.T @ gsum(np.ones_like(q1), ~ok)).astype(np.int64)),
    )
    cols = []
    for name in ("quantity", "revenue", "profit"):
        b = roll.T @ point[f"baseline_{name}"]
        s = roll.T @ point[f"scenario_{name}"]
        lo, hi = np.quantile(sums[name] @ roll.toarray(), [0.05, 0.95], axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            delta = np.where(b != 0, 100.0 * (s - b) / np.abs(b), np.nan)
        cols += [pl.Series(f"baseline_{name}", b), pl.Series(f"scenario_{name}", s),
                 pl.Series(f"{name}_low", lo), pl.Series(f"{name}_high", hi),
                 pl.Series(f"{name}_delta_pct", delta)]
    return out.with_columns(cols)
