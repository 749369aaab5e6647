"""The report's cross-price part: a heat map of the matrix of a cross estimate run."""

from __future__ import annotations

import numpy as np
import polars as pl

from .html import esc, image
from .plots import _figure, to_png

MAX_ITEMS = 15  # items shown per heat map (the category's first ones, sorted by id)


def heatmap(matrix: pl.DataFrame, title: str) -> bytes:
    """PNG heat map of a wide matrix (``item_id`` then one column per other item).

    Rows: the item whose units respond; columns: the item whose price moves. Colour is
    the cross elasticity on a symmetric scale (blue: substitutes, red: complements); the
    own-price diagonal is printed as text only, so it does not wash out the scale.
    """
    rows = matrix["item_id"].to_list()
    cols = [c for c in matrix.columns if c != "item_id"]
    M = matrix.select(cols).to_numpy().astype(float)
    off = M.copy()
    for i, r in enumerate(rows):
        if r in cols:
            off[i, cols.index(r)] = np.nan
    lim = float(np.nanmax(np.abs(off))) if np.isfinite(off).any() else 1.0
    n = max(len(rows), len(cols))
    fig = _figure(1.6 + 0.45 * len(cols), 1.2 + 0.4 * len(rows))
    ax = fig.add_subplot()
    im = ax.imshow(off, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_xlabel("price of")
    ax.set_ylabel("units of")
    ax.set_title(title, fontsize=9)
    if n <= 12:
        for i in range(len(rows)):
            for j in range(len(cols)):
                if np.isfinite(M[i, j]):
                    ax.text(j, i, f"{M[i, j]:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.8, label="cross elasticity")
    return to_png(fig)


def cross_part(cross: pl.DataFrame | None) -> str:
    """HTML for a cross run: one heat map per category (first market, or pooled)."""
    if cross is None or not cross.height:
        return ""
    first = cross.select("market").unique().sort("market", nulls_last=True)["market"][0]
    one = cross.filter(pl.col("market").is_null() if first is None else pl.col("market") == first)
    where = "pooled over markets" if first is None else f"market {first}"
    off = cross.filter(pl.col("item_id") != pl.col("other_item_id"))
    subs = int((off["ci_low"] > 0).sum())
    comp = int((off["ci_high"] < 0).sum())
    parts = [
        "<h3>Cross-price elasticities</h3>",
        f'<p class="note">{off.height:,} item pairs; {subs:,} significant substitutes '
        f"(95% interval above 0), {comp:,} significant complements. Heat maps for "
        f"{esc(where)}; a positive value means the row item sells more when the column "
        "item's price rises.</p>",
    ]
    cats = one["category"].unique().sort().to_list() if "category" in one.columns else [None]
    for cat in cats[:6]:
        sub = one if cat is None else one.filter(pl.col("category") == cat)
        keep = sub["item_id"].unique().sort().head(MAX_ITEMS).to_list()
        sub = sub.filter(pl.col("item_id").is_in(keep) & pl.col("other_item_id").is_in(keep))
        if sub["item_id"].n_unique() < 2:
            continue
        m = sub.pivot(on="other_item_id", index="item_id", values="elasticity").sort("item_id")
        m = m.select("item_id", *sorted(c for c in m.columns if c != "item_id"))
        title = f"{cat} ({where})" if cat is not None else where
        parts.append(
            image(
                heatmap(m, title),
                f"cross-price heat map {title}",
                "Rows: units of; columns: price of. Own-price elasticities (diagonal) are "
                "printed but not coloured.",
            )
        )
    return "".join(parts)
