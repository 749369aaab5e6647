"""Cross-price elasticities within a category (``estimate --model cross``).

For item i in market m and week t (weeks with sales),

``log q_imt = a_im + sum_j e_ij log p_jmt + controls``

with j over the items of i's category (items table) sold in market m, own price first.

* ``cross="full"``: one coefficient per sibling (a row of the cross-price matrix).
* ``cross="index"``: own price plus the leave-one-out category index
  ``mean_{j != i} log p_jmt``: one cross elasticity per item, reported spread evenly over
  the siblings (``e_ij = e_index / n_siblings``, the derivative of the index), so both
  variants give the same output table and the same demand for the optimizer.
* ``by=["item_id"]``: the item pooled over markets with item × market and item × week
  fixed effects (the ``panel --slope common`` spec plus the siblings' prices), standard
  errors clustered by market; every sibling of the category must be priced in the week.

Weeks in which a needed sibling price is missing are dropped and counted (``n_dropped``).
Everything runs as stacked normal equations over padded ``(groups, weeks, k)`` blocks
(:mod:`.padded_kernels`), never a loop of per-group fits.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from pricelab.errors import DataError, UsageError

from . import design as D
from .cross_fit import fit_layout, layout
from .groupfit import FLAG, flag_series, flag_signs
from .panel import SEASONAL
from .results import CONTRACT, DIAGNOSTICS, ElasticityResults

CROSS_MODES = ("full", "index")
#: columns of the cross-price table (one row per item × other item)
CROSS_COLUMNS = [
    "item_id",
    "market",
    "other_item_id",
    "elasticity",
    "std_error",
    "ci_low",
    "ci_high",
    "n_obs",
    "method",
]


class CrossResults(ElasticityResults):
    """Own-price rows as :class:`ElasticityResults` plus the cross-price table :attr:`cross`."""

    def __init__(
        self,
        table: pl.DataFrame,
        params: pl.DataFrame,
        parameters: dict[str, Any],
        cross: pl.DataFrame,
    ) -> None:
        super().__init__(table, params, "cross", parameters)
        self._cross = cross

    @property
    def cross(self) -> pl.DataFrame:
        """:data:`CROSS_COLUMNS` plus ``category, n_dropped``; own price where ids match."""
        return self._cross

    def to_polars(self) -> pl.DataFrame:
        """The cross-price table."""
        return self._cross

    def matrix(self, market: str | None = None) -> pl.DataFrame:
        """One market's matrix (pooled: ``market=None``) as a wide frame: rows i, columns j."""
        t = self._cross.filter(
            pl.col("market").is_null() if market is None else pl.col("market") == market
        )
        return t.pivot(on="other_item_id", index="item_id", values="elasticity").sort("item_id")


def estimate_cross(
    sales: pl.DataFrame,
    *,
    items: pl.DataFrame | None = None,
    cross: str = "full",
    by: str | Sequence[str] | None = ("item_id", "market"),
    controls: str | Sequence[str] | None = "default",
    alpha: float = 0.05,
    min_obs: int = 8,
    max_cells: float = 4e6,
) -> CrossResults:
    """Estimate own- and cross-price elasticities within categories.

    Parameters
    ----------
    sales:
        ``item_id, market, date, price, quantity`` (+ ``promo`` and control columns).
    items:
        ``item_id, category``: the siblings of an item are the items of its category
        (``category`` may also be a column of ``sales``).
    cross:
        ``full`` (every sibling's log price) or ``index`` (leave-one-out category index).
    by:
        ``item_id, market`` (default: one regression per item × market) or ``item_id``
        (pooled over markets with item × market and item × week effects, clustered SEs).
    controls:
        As :func:`pricelab.elasticity.estimate`; with ``by=item_id`` the seasonal
        controls are absorbed by the week effects and left out.
    alpha:
        Intervals at level ``1 - alpha``.
    min_obs:
        Groups with fewer usable weeks (or no more weeks than parameters) are NaN,
        flagged ``few_obs``.

    Returns
    -------
    CrossResults

    Raises
    ------
    UsageError
        Unknown ``cross`` or ``by``, or no ``category`` to define siblings.
    DataError, EmptyStoreError
        Empty or invalid sales.
    """
    if cross not in CROSS_MODES:
        raise UsageError(f"unknown --cross '{cross}'; choose full or index")
    by_cols = D.normalize_by(by) or ["item_id", "market"]
    if by_cols not in (["item_id", "market"], ["market", "item_id"], ["item_id"]):
        raise UsageError(
            f"--model cross groups by item_id,market or item_id (pooled), got {','.join(by_cols)}"
        )
    pooled = by_cols == ["item_id"]
    if not 0 < alpha < 1:
        raise UsageError(f"alpha must be in (0, 1), got {alpha}")
    D.check_sales(sales, [])
    df = D.with_items(sales, items)
    if "category" not in df.columns:
        raise UsageError(
            "--model cross needs the items' categories (load an items table with a "
            "'category' column): siblings are the items of the same category"
        )
    if "date" not in df.columns:
        raise DataError("sales has no 'date' column (cross prices are matched by week)")
    ctrl = D.resolve_controls(controls)
    if pooled:
        ctrl = [c for c in ctrl if c not in SEASONAL]
    origin = df["date"].min()
    origin = origin if isinstance(origin, dt.date) else None
    lay = layout(df, ctrl, origin, cross, pooled)
    out = fit_layout(lay, pooled, min_obs, max_cells)
    parameters = {
        "model": "cross",
        "cross": cross,
        "by": ["item_id"] if pooled else ["item_id", "market"],
        "controls": ctrl,
        "se": "cluster(market)" if pooled else "HC1",
        "alpha": alpha,
        "min_obs": min_obs,
        "fixed_effects": ["item_id,market", "item_id,date"] if pooled else [],
        "origin": str(origin) if origin is not None else None,
        "end": str(df["date"].max()),
        "n_dropped": int(lay["dropped"].sum()),
    }
    return _wrap(lay, out, parameters, alpha, cross, pooled)


def _wrap(
    lay: dict[str, Any],
    out: dict[str, Any],
    parameters: dict[str, Any],
    alpha: float,
    cross: str,
    pooled: bool,
) -> CrossResults:
    from scipy.special import ndtri  # = stats.norm.ppf; scipy.stats is slow to import

    z = float(ndtri(1 - alpha / 2))
    G, beta, cov = lay["G"], out["beta"], out["cov"]
    se_all = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
    keys = lay["keys"]
    items = keys["item_id"].to_numpy()
    market = None if pooled else keys["market"].to_numpy()
    method = "cross" if cross == "full" else "cross-index"
    # the cross table: own row, then one row per sibling of the group's category
    slot_item = {
        (c, s): i for c, i, s in lay["cats"].select("category", "item_id", "_s").iter_rows()
    }
    rec_g, rec_other, rec_e, rec_s = [], [], [], []
    rec_g.append(np.arange(G))
    rec_other.append(items)
    rec_e.append(beta[:, 1])
    rec_s.append(se_all[:, 1])
    need, oslot, cat = lay["oth_need"], lay["other_slot"], lay["category"]
    gi, jj = np.nonzero(need)
    other_ids = np.array([slot_item[(cat[g], oslot[g, j])] for g, j in zip(gi, jj, strict=True)])
    if cross == "full":
        e_o, s_o = beta[gi, 2 + jj], se_all[gi, 2 + jj]
    else:
        n_sib = need.sum(axis=1)[gi]
        e_o, s_o = beta[gi, 2] / n_sib, se_all[gi, 2] / n_sib
    rec_g.append(gi)
    rec_other.append(other_ids)
    rec_e.append(e_o)
    rec_s.append(s_o)
    g_all = np.concatenate(rec_g)
    e_all, s_all = np.concatenate(rec_e), np.concatenate(rec_s)
    table = pl.DataFrame(
        {
            "item_id": items[g_all].astype(str),
            "market": (
                pl.Series([None] * g_all.size, dtype=pl.String)
                if market is None
                else market[g_all].astype(str)
            ),
            "other_item_id": np.concatenate(rec_other).astype(str),
            "elasticity": e_all,
            "std_error": s_all,
            "ci_low": e_all - z * s_all,
            "ci_high": e_all + z * s_all,
            "n_obs": out["n_obs"][g_all].astype(np.int64),
            "method": [method] * g_all.size,
            "category": cat[g_all].astype(str),
            "n_dropped": lay["dropped"][g_all].astype(np.int64),
        },
        schema_overrides={"market": pl.String},
    ).sort("item_id", "market", "other_item_id", nulls_last=True)
    own = _own_table(lay, out, method, z, se_all, pooled)
    params = _params(lay, out, keys)
    return CrossResults(own, params, parameters, table)


def _own_table(
    lay: dict[str, Any],
    out: dict[str, Any],
    method: str,
    z: float,
    se_all: np.ndarray,
    pooled: bool,
) -> pl.DataFrame:
    """Own-price rows in the shape of every other model's elasticities table."""
    G = lay["G"]
    e, s = out["beta"][:, 1], se_all[:, 1]
    flags = np.zeros(G, np.int64)
    few = out["n_obs"] < 1
    flags |= np.where(np.isnan(e) & ~few, FLAG["few_obs"], 0)
    flags |= np.where(few, FLAG["no_sales"], 0)
    o = {"elasticity": e, "flags": flags}
    flag_signs(o)
    keys = lay["keys"]
    if pooled:
        keys = keys.with_columns(pl.lit(None, dtype=pl.String).alias("market"))
    t = pl.DataFrame(
        {
            "elasticity": e,
            "std_error": s,
            "ci_low": e - z * s,
            "ci_high": e + z * s,
            "n_obs": out["n_obs"].astype(np.int64),
            "method": [method] * G,
            "n_zero": lay["n_zero"].astype(np.int64),
            "price_variation": out["price_variation"],
            "fit_stat": out["r2"],
            "fit_stat_name": ["within_r2" if pooled else "r2"] * G,
            "first_stage_f": np.full(G, np.nan),
            "first_stage_f_robust": np.full(G, np.nan),
            "flags": flag_series(o["flags"]),
        }
    )
    t = pl.concat([keys.select(pl.col("item_id").cast(pl.String), "market"), t], how="horizontal")
    return t.with_columns(pl.col("market").cast(pl.String)).select([*CONTRACT, *DIAGNOSTICS])


def _params(lay: dict[str, Any], out: dict[str, Any], keys: pl.DataFrame) -> pl.DataFrame:
    """Intercept, own slope and controls per group, for :meth:`ElasticityResults.predict`.

    The siblings' terms are folded into the intercept at their mean log prices in the
    group's weeks, so a prediction holds the siblings at their usual prices.
    """
    beta = out["beta"]
    X, codes, G = lay["X"], lay["codes"], lay["G"]
    n = np.maximum(np.bincount(codes, minlength=G), 1)
    npr = lay["n_price"]
    sib = np.zeros(G)
    for j in range(2, 1 + npr):
        mean = np.bincount(codes, weights=X[:, j], minlength=G) / n
        sib += np.nan_to_num(beta[:, j]) * mean
    cols: dict[str, Any] = {"intercept": beta[:, 0] + sib, "log_price": beta[:, 1]}
    for j, name in enumerate(lay["names"][1 + npr :]):
        cols[D.control_label(name)] = beta[:, 1 + npr + j]
    cols["smearing"] = np.ones(G)
    return pl.concat(
        [keys.with_columns(pl.col("item_id").cast(pl.String)), pl.DataFrame(cols)], how="horizontal"
    )
