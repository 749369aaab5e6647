"""The report's season clearance part: stock run-down per category and a discount calendar.

Shown when the database holds a markdown run (the latest one): headline numbers, the share
of each category's stock left after every planned week, the mean planned discount per
category and week, and a table per category (base currency).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from matplotlib.ticker import MaxNLocator

from pricelab.report.html import cards, esc, image, table
from pricelab.report.plots import PALETTE, _figure, _style, to_png
from pricelab.store.db import Store
from pricelab.store.runs import get_run, latest_run

MAX_LINES = 8  # categories drawn as their own run-down line (the rest pooled as "other")


@dataclass
class MarkdownData:
    """A markdown run's plan rows (with category) and per-pool items."""

    run: dict[str, Any]
    plan: pl.DataFrame  # item_id, market, category, week, discount_pct, expected_units
    items: pl.DataFrame  # markdown_items rows


def load_markdown(store: Store) -> MarkdownData | None:
    """The latest markdown run's tables, or None when there is none."""
    run_id = latest_run(store, "markdown")
    if run_id is None or not store.has_table("markdown_plans"):
        return None
    items = store.read_result("markdown_items", run_id)
    cats = items.group_by("item_id").agg(pl.col("category").first())
    plan = store.read_result("markdown_plans", run_id).join(cats, on="item_id", how="left")
    plan = plan.with_columns(pl.col("category").fill_null("").replace("", "(none)"))
    items = items.with_columns(pl.col("category").fill_null("").replace("", "(none)"))
    return MarkdownData(get_run(store, run_id), plan, items)


def rundown(md: MarkdownData) -> pl.DataFrame:
    """Per category and week: percent of the category's stock left after that week."""
    stock = md.items.group_by("category").agg(pl.col("stock").sum())
    weekly = (
        md.plan.group_by("category", "week")
        .agg(pl.col("expected_units").sum())
        .sort("category", "week")
        .with_columns(pl.col("expected_units").cum_sum().over("category").alias("sold"))
        .join(stock, on="category")
    )
    return weekly.with_columns(
        (100 * (1 - pl.col("sold") / pl.col("stock"))).clip(0, 100).alias("stock_left_pct")
    ).select("category", "week", "stock_left_pct")


def calendar(md: MarkdownData) -> pl.DataFrame:
    """Mean planned discount (%) per category (rows) and week (columns)."""
    return (
        md.plan.group_by("category", "week")
        .agg(pl.col("discount_pct").mean())
        .sort("week")
        .pivot(on="week", index="category", values="discount_pct")
        .sort("category")
    )


def _plot(down: pl.DataFrame, cal: pl.DataFrame) -> bytes:
    fig = _figure(9.5, 3.6 + 0.12 * cal.height)
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[1, 1.25])
    cats = cal["category"].to_list()
    for i, c in enumerate(cats[:MAX_LINES]):
        d = down.filter(pl.col("category") == c).sort("week")
        wk = np.r_[0, d["week"].to_numpy()]
        ax1.plot(wk, np.r_[100.0, d["stock_left_pct"].to_numpy()], color=PALETTE[i % 8], label=c)
    ax1.set_xlabel("week of the plan")
    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax1.set_ylabel("stock left (% of the category's)")
    ax1.set_ylim(0, 103)
    ax1.set_title("stock run-down by category (planned)", fontsize=9)
    ax1.legend(fontsize=7, frameon=False)
    _style(ax1)
    weeks = [c for c in cal.columns if c != "category"]
    m = cal.select(weeks).to_numpy().astype(float)
    im = ax2.imshow(m, cmap="Reds", vmin=0, vmax=max(float(np.nanmax(m)), 1.0), aspect="auto")
    ax2.set_xticks(range(len(weeks)), weeks, fontsize=7)
    ax2.set_yticks(range(len(cats)), cats, fontsize=8)
    ax2.set_xlabel("week of the plan")
    ax2.set_title("discount calendar: mean planned discount (%)", fontsize=9)
    if m.size <= 200:
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                if np.isfinite(m[i, j]):
                    dark = m[i, j] > 0.6 * np.nanmax(m)
                    ax2.text(j, i, f"{m[i, j]:.0f}", ha="center", va="center", fontsize=6,
                             color="white" if dark else "black")  # fmt: skip
    fig.colorbar(im, ax=ax2, shrink=0.8)
    return to_png(fig)


def by_category(md: MarkdownData) -> pl.DataFrame:
    """Per category: pools, stock, planned sell-through, value and the two comparisons."""
    first = (
        md.plan.filter(pl.col("discount_pct") > 0)
        .group_by("category")
        .agg(pl.col("week").min().alias("first_markdown_week"))
    )
    return (
        md.items.group_by("category")
        .agg(
            pl.len().alias("pools"),
            pl.col("stock").sum(),
            pl.col("expected_units").sum(),
            pl.col("value").sum(),
            pl.col("vs_keep_full_price").sum(),
            pl.col("vs_simple_rule").sum(),
        )
        .with_columns((100 * pl.col("expected_units") / pl.col("stock")).alias("sell_through_pct"))
        .join(first, on="category", how="left")
        .select(
            "category",
            "pools",
            "stock",
            "sell_through_pct",
            "first_markdown_week",
            "value",
            "vs_keep_full_price",
            "vs_simple_rule",
        )
        .sort("category")
    )


def markdown_section(md: MarkdownData | None, currency: str) -> tuple[str, str, str, bool]:
    """(id, heading, HTML, shown) of the season clearance section."""
    head = "Season clearance (markdown)"
    if md is None:
        return "markdown", head, "", False
    res = md.run.get("summary") or {}
    cat = by_category(md)
    total = md.items.select(pl.col(c).sum() for c in ("stock", "expected_units", "value"))
    st = 100 * float(total["expected_units"][0]) / max(float(total["stock"][0]), 1e-12)
    vs_full = float(md.items["vs_keep_full_price"].sum())
    vs_rule = float(md.items["vs_simple_rule"].sum())
    gap = res.get("gap")
    parts = [
        cards(
            [
                ("stock pools", f"{md.items.height:,}"),
                ("weeks planned", f"{md.plan.select(pl.col('week').max()).item()}"),
                ("planned sell-through", f"{st:.1f}%"),
                (f"value ({currency})", f"{float(total['value'][0]):,.0f}"),
                ("vs keep full price", f"{vs_full:+,.0f}"),
                ("vs 30% off mid-season", f"{vs_rule:+,.0f}"),
                ("proven gap", "?" if gap is None else f"{100 * float(gap):.3f}%"),
            ]
        ),
        image(
            _plot(rundown(md), calendar(md)),
            "stock run-down and discount calendar",
            "Left: share of each category's stock left after each planned week. Right: the "
            "mean planned discount of the category's item × market rows each week.",
        ),
        table(
            cat,
            digits={
                "stock": 0,
                "sell_through_pct": 1,
                "value": 0,
                "vs_keep_full_price": 0,
                "vs_simple_rule": 0,
            },
            max_rows=40,
        ),
        f'<p class="note">Run <code>{esc(md.run["run_id"])}</code>; value = revenue + '
        f"salvage of the stock left, in {esc(currency)}.</p>",
    ]
    return "markdown", head, "".join(parts), True
