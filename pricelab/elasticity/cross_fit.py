"""The cross-price model's numerics: rows laid out by sibling slot, then stacked fits.

:func:`layout` puts each row's own and sibling log prices into slots and codes the groups;
:func:`fit_layout` runs the stacked normal equations over padded ``(groups, weeks, k)``
blocks (:mod:`.padded_kernels`), with HC1 or market-clustered standard errors.
See :mod:`pricelab.elasticity.cross` for the model.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl

from . import design as D
from . import padded_kernels as K
from .groupfit import center
from .panel import _codes, _fe_dof, demean


def layout(
    df: pl.DataFrame, ctrl: list[str], origin: dt.date | None, cross: str, pooled: bool
) -> dict[str, Any]:
    """Rows with sales, their own/sibling log prices by slot, and the group codes."""
    df = df.with_columns(pl.col("category").cast(pl.String).fill_null(pl.col("item_id")))
    cats = df.select("category", "item_id").unique().sort("category", "item_id")
    cats = cats.with_columns((pl.col("item_id").rank("ordinal").over("category") - 1).alias("_s"))
    S = int(cats.height and cats["_s"].to_numpy().max()) + 1
    df = df.join(cats, on=["category", "item_id"], how="left")
    cm, n_cm = _codes(df, ["category", "market"])
    cmw, n_cmw = _codes(df, ["category", "market", "date"])
    slot = df["_s"].to_numpy().astype(np.int64)
    LP = np.full((n_cmw, S), np.nan)
    LP[cmw, slot] = np.log(df["price"].cast(pl.Float64).to_numpy())
    in_cat = np.zeros((n_cm, S), dtype=bool)  # slot exists in the category
    size = cats.group_by("category").len()
    csize = dict(zip(size["category"].to_list(), size["len"].to_list(), strict=True))
    cat_of_cm = np.empty(n_cm, dtype=object)
    cat_of_cm[cm] = df["category"].to_numpy()
    n_of_cm = np.array([csize[c] for c in cat_of_cm], dtype=np.int64)
    in_cat[:] = np.arange(S)[None, :] < n_of_cm[:, None]
    present = np.zeros((n_cm, S), dtype=bool)  # sibling sold in this market
    present[cm, slot] = True
    need = in_cat if pooled else present
    gcols = ["item_id"] if pooled else ["item_id", "market"]
    gcode, G = _codes(df, gcols)
    q = df["quantity"].cast(pl.Float64).to_numpy()
    pos = q > 0
    prices = LP[cmw]  # (n, S)
    missing = (need[cm] & np.isnan(prices)).any(axis=1)
    keep_row = pos & ~missing
    n_zero = np.bincount(gcode[~pos], minlength=G)
    dropped = np.bincount(gcode[pos & missing], minlength=G)
    # own first, then the other slots in slot order
    j = np.arange(S - 1)[None, :]
    other = j + (j >= slot[:, None])  # (n, S-1)
    own_p = prices[np.arange(df.height), slot]
    oth_p = np.take_along_axis(prices, other, axis=1)
    oth_need = np.take_along_axis(need[cm], other, axis=1)
    frame, ccols = D.control_frame(df, ctrl, origin)
    C = np.column_stack([frame[c].fill_null(0.0).to_numpy() for c in ccols]) if ccols else None
    if cross == "full":
        P = np.where(oth_need, np.nan_to_num(oth_p), 0.0)
        names = [f"_x{s}" for s in range(S - 1)]
    else:
        n_sib = oth_need.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            idx = np.where(oth_need, np.nan_to_num(oth_p), 0.0).sum(axis=1) / n_sib
        P = np.where(n_sib > 0, idx, 0.0)[:, None]
        names = ["_index"]
    blocks = [np.ones((df.height, 1)), own_p[:, None], P] + ([C] if C is not None else [])
    X = np.column_stack(blocks)
    rows = np.flatnonzero(keep_row)
    order = rows[np.argsort(gcode[rows], kind="stable")]
    keys = df.select(gcols)[np.unique(gcode, return_index=True)[1]]
    first = np.unique(gcode, return_index=True)[1]
    return {
        "X": X[order],
        "y": np.log(q[order]),
        "codes": gcode[order],
        "G": G,
        "keys": keys,
        "names": ["intercept", "log_price", *names, *ccols],
        "n_price": 1 + P.shape[1],
        "usable": np.column_stack(
            [
                np.ones((G, 2), bool),
                oth_need[first] if cross == "full" else (n_sib[first] > 0)[:, None],
            ]
            + ([np.ones((G, C.shape[1]), bool)] if C is not None else [])
        ),
        "other_slot": other[first],
        "oth_need": oth_need[first],
        "slot": slot[first],
        "category": df["category"].to_numpy()[first],
        "cats": cats,
        "market": df["market"].to_numpy()[order],
        "date": df["date"].to_numpy()[order],
        "n_zero": n_zero,
        "dropped": dropped,
    }


def fit_layout(lay: dict[str, Any], pooled: bool, min_obs: int, max_cells: float) -> dict[str, Any]:
    """Stacked OLS per group (pooled: fixed effects absorbed, SEs clustered by market)."""
    G, codes, X, y = lay["G"], lay["codes"], lay["X"], lay["y"]
    k = X.shape[1]
    extra = np.zeros(G)
    clus = None
    if pooled and codes.size:
        frame = pl.DataFrame({"g": codes, "m": lay["market"], "d": lay["date"]})
        fes = [_codes(frame, ["g", "m"])[0], _codes(frame, ["g", "d"])[0]]
        vals = demean(np.column_stack([y, X[:, 1:]]), fes)
        y = vals[:, 0]
        X = np.column_stack([np.zeros(codes.size), vals[:, 1:]])
        extra = _fe_dof(fes, codes, G)
        clus, n_m = _codes(frame, ["m"])
        pairs = np.unique(codes * n_m + clus)
        n_clusters = np.bincount(pairs // n_m, minlength=G).astype(float)
    beta = np.full((G, k), np.nan)
    cov = np.full((G, k, k), np.nan)
    n_obs = np.bincount(codes, minlength=G)
    r2 = np.full(G, np.nan)
    pvar = np.full(G, np.nan)
    usable = lay["usable"].copy()
    if pooled:
        usable[:, 0] = False
    for ch in D.chunks(codes, G, k, max_cells):
        g = ch.groups
        valid = ch.pad(np.ones(codes.size))
        Xp, yp = ch.pad(X), ch.pad(y)
        Xc, _ = center(Xp, valid)
        if pooled:
            Xc = Xp.copy()
        keep = K.independent_columns(K.gram(Xc, valid), usable[g])
        r = K.ols_fit(Xp, yp, valid, keep, se="HC0" if pooled else "HC1", extra_dof=extra[g])
        n, p = r["n"], r["p"]
        c = r["cov"]
        if pooled and clus is not None:
            cl = ch.pad(clus.astype(np.float64)).astype(np.int64)
            n_cl = n_clusters[g]
            cs = K.cluster_scores(Xp * r["resid"][:, :, None], cl, int(clus.max()) + 1)
            with np.errstate(divide="ignore", invalid="ignore"):
                factor = n_cl / (n_cl - 1) * (n - 1) / (n - p)
            c = K.sandwich(r["bread"], cs, factor)
            c[n_cl < 2] = np.nan
        ok = r["ok"] & (n > p) & (n >= min_obs) & keep[:, 1]
        b = np.where(keep, r["beta"], np.nan)
        beta[g] = np.where(ok[:, None], b, np.nan)
        cov[g] = np.where(ok[:, None, None], c, np.nan)
        yc = (yp - (yp * valid).sum(axis=1, keepdims=True) / np.maximum(n, 1)[:, None]) * valid
        with np.errstate(divide="ignore", invalid="ignore"):
            r2[g] = np.where(ok, 1 - (r["resid"] ** 2).sum(axis=1) / (yc**2).sum(axis=1), np.nan)
        own = Xc[:, :, 1] if not pooled else Xp[:, :, 1]
        pvar[g] = np.sqrt((own**2 * valid).sum(axis=1) / np.maximum(n, 1))
    return {"beta": beta, "cov": cov, "n_obs": n_obs, "r2": r2, "price_variation": pvar}
