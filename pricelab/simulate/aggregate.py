"""Aggregates by scenario × market × category with intervals from summed elasticity draws.

An aggregate's interval is not the sum of row bounds: each draw ``s`` gives every row an
elasticity ``e + std_error * z_s``, the rows are summed within the draw, and the 5% and
95% quantiles of those sums are the interval. Money is converted to the base currency
(divided by ``fx_rate``) so that markets add up.

Only rows whose price changes (and whose elasticity is uncertain) are drawn; the others add
their point value to every draw. A drawn row's units are ``q * exp(a * z)`` with ``q`` the
point projection and ``a = std_error * log(p1 / p0)``, which is the same number as
``q0 * (p1 / p0) ** (e + std_error * z)``. Rows are sorted by group, normals come in
float32 blocks of one group's rows, and each block is summed for units, revenue and profit
with one matrix product ``exp(a z) @ W`` (``W``: the three weights per row).
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy import sparse

ALL = "(all)"
#: draws × rows generated at once (float32: 4 bytes each)
CHUNK_CELLS = 4_000_000
#: |a * z| stays below this in float32 (exp overflows near 88); larger ``a`` uses float64
_F32_SAFE_A = 80.0 / 7.0
KPIS = ("quantity", "revenue", "profit")


def _levels(base: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Group keys, each row's market × category group, and the roll-up to every level.

    Returns the output keys (``market, category``: the groups, then one ``(all)`` category
    per market, then the overall row), the group index per row and the dense roll-up
    matrix ``(G, G + M + 1)``.
    """
    mc = base.select(
        pl.col("market").cast(pl.Utf8), pl.col("category").cast(pl.Utf8).fill_null("(none)")
    ).with_row_index("_r")
    # one group_by gives the groups and their rows (cheaper than unique + join back)
    keys = mc.group_by("market", "category").agg("_r").sort("market", "category")
    gidx = np.empty(mc.height, dtype=np.int64)
    gidx[keys["_r"].explode().to_numpy()] = np.repeat(
        np.arange(keys.height), keys["_r"].list.len().to_numpy()
    )
    markets = keys["market"].unique().sort()
    G, M = keys.height, markets.len()
    m_of_g = keys.join(
        markets.to_frame().with_row_index("_m"), on="market", how="left", maintain_order="left"
    )["_m"].to_numpy()
    roll = np.zeros((G, G + M + 1))
    roll[np.arange(G), np.arange(G)] = 1.0
    roll[np.arange(G), G + m_of_g] = 1.0
    roll[:, G + M] = 1.0
    frame = pl.concat(
        [
            keys.select("market", "category"),
            pl.DataFrame({"market": markets, "category": [ALL] * M}),
            pl.DataFrame({"market": [ALL], "category": [ALL]}),
        ]
    )
    return frame, gidx, roll


def draw_sums(
    group: np.ndarray, a: np.ndarray, weights: np.ndarray, n_groups: int, *, draws: int, seed: int
) -> np.ndarray:
    """Per-draw group sums of ``weights[i, k] * exp(a[i] * z[s, i])``, ``z`` standard normal.

    Parameters
    ----------
    group : ndarray of int
        Group index (``0 .. n_groups - 1``) of each row.
    a : ndarray
        Log-scale spread per row (``std_error * log(p1 / p0)``).
    weights : ndarray, shape (rows, K)
        Per-row weights (e.g. point units times 1, price and margin).
    n_groups : int
        Number of groups.
    draws, seed : int
        Number of draws; blocks of rows draw from generators seeded by ``(seed, block)``,
        so equal seeds give equal sums.

    Returns
    -------
    ndarray, shape (draws, K, n_groups)
    """
    K = weights.shape[1]
    out = np.zeros((draws, K, n_groups))
    if group.size == 0:
        return out
    order = np.argsort(group, kind="stable")
    g, a, w = group[order], a[order], weights[order]
    cut = np.flatnonzero(np.diff(g)) + 1
    starts, ends = np.r_[0, cut], np.r_[cut, g.size]
    step = max(1, CHUNK_CELLS // draws)
    block = 0
    for s0, e0 in zip(starts, ends, strict=True):
        for s in range(s0, e0, step):
            t = min(e0, s + step)
            dtype = np.float32 if np.abs(a[s:t]).max() < _F32_SAFE_A else np.float64
            rng = np.random.Generator(
                np.random.SFC64(np.random.SeedSequence(seed, spawn_key=(block,)))
            )
            block += 1
            z = rng.standard_normal((draws, t - s), dtype=dtype)
            z *= a[s:t].astype(dtype)
            np.exp(z, out=z)
            out[:, :, g[s]] += z @ w[s:t].astype(dtype)
    return out


def aggregate(proj: pl.DataFrame, *, draws: int, seed: int) -> pl.DataFrame:
    """Totals of one scenario at market × category, market and overall level.

    Parameters
    ----------
    proj : polars.DataFrame
        Projected rows (:func:`pricelab.simulate.project.project_rows`: ``market, category,
        fx_rate, unit_cost, std_error, baseline_price, scenario_price, changed,
        baseline_quantity, scenario_quantity``).
    draws, seed : int
        Number of elasticity draws (0: no aggregate intervals, ``*_low``/``*_high`` NaN)
        and their seed.

    Returns
    -------
    polars.DataFrame
        ``market, category, n_rows, n_changed, n_missing`` and, for quantity, revenue and
        profit (base currency): ``baseline_*, scenario_*, *_low, *_high, *_delta_pct``.
        Rows whose projection is missing are left out of every sum (``n_missing``); rows
        without a unit cost add nothing to profit.
    """
    frame, gidx, roll = _levels(proj)
    G = roll.shape[0]
    q1 = pl.col("scenario_quantity")
    ok = q1.is_not_null() & q1.is_not_nan()
    cost = pl.col("unit_cost").fill_nan(None)
    fx, p0, p1 = pl.col("fx_rate"), pl.col("baseline_price"), pl.col("scenario_price")
    # per-row weights in the base currency (polars: no temporary numpy arrays); the point
    # value of a row is its weight times its projected units
    w = proj.select(
        ok=ok,
        changed=pl.col("changed"),
        w_rev=p1 / fx,
        w_pro=((p1 - cost) / fx).fill_null(0.0),
        q0=pl.when(ok).then(pl.col("baseline_quantity")).otherwise(0.0),
        q1=pl.when(ok).then(q1).otherwise(0.0),
        rev0=pl.when(ok).then(p0 * pl.col("baseline_quantity") / fx).otherwise(0.0),
        pro0=pl.when(ok)
        .then(((p0 - cost) * pl.col("baseline_quantity") / fx).fill_null(0.0))
        .otherwise(0.0),
    ).with_columns(rev1=pl.col("w_rev") * pl.col("q1"), pro1=pl.col("w_pro") * pl.col("q1"))

    def gsum(col: str) -> np.ndarray:
        return np.bincount(gidx, weights=w[col].cast(pl.Float64).to_numpy(), minlength=G)

    point = {
        "quantity": (gsum("q0"), gsum("q1")),
        "revenue": (gsum("rev0"), gsum("rev1")),
        "profit": (gsum("pro0"), gsum("pro1")),
    }
    lows = highs = None
    if draws > 0:
        # only rows whose price changes with an uncertain elasticity are drawn; the others
        # contribute their point value to every draw
        se = proj["std_error"].fill_nan(None).fill_null(0.0).to_numpy()
        okc = w["ok"].to_numpy() & w["changed"].to_numpy()
        varying = okc & (se > 0)
        idx = np.flatnonzero(varying)
        p0n, p1n = proj["baseline_price"].to_numpy(), proj["scenario_price"].to_numpy()
        a = se[idx] * np.log(p1n[idx] / p0n[idx])
        q1n = w["q1"].to_numpy()
        W = np.column_stack([q1n[idx], w["rev1"].to_numpy()[idx], w["pro1"].to_numpy()[idx]])
        sums = draw_sums(gidx[idx], a, W, G, draws=draws, seed=seed)
        fixed = ~varying
        sums += np.stack(
            [
                np.bincount(gidx[fixed], weights=w[c].to_numpy()[fixed], minlength=G)
                for c in ("q1", "rev1", "pro1")
            ]
        )[None, :, :]
        q = np.quantile(sums @ roll, [0.05, 0.95], axis=0)  # (2, K, levels)
        lows, highs = q[0], q[1]
    up = sparse.csr_matrix(roll).T  # point sums roll up exactly as a sparse sum
    n_rows = np.bincount(gidx, minlength=G)
    counts = [up @ n_rows, up @ gsum("changed"), up @ (n_rows - gsum("ok"))]
    out = frame.with_columns(
        pl.Series(name, np.rint(v).astype(np.int64))
        for name, v in zip(("n_rows", "n_changed", "n_missing"), counts, strict=True)
    )
    cols = []
    nan = np.full(roll.shape[1], np.nan)
    for k, name in enumerate(KPIS):
        b, s = up @ point[name][0], up @ point[name][1]
        with np.errstate(divide="ignore", invalid="ignore"):
            delta = np.where(b != 0, 100.0 * (s - b) / np.abs(b), np.nan)
        cols += [
            pl.Series(f"baseline_{name}", b),
            pl.Series(f"scenario_{name}", s),
            pl.Series(f"{name}_low", nan if lows is None else lows[k]),
            pl.Series(f"{name}_high", nan if highs is None else highs[k]),
            pl.Series(f"{name}_delta_pct", delta),
        ]
    return out.with_columns(cols)
