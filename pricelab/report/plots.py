"""Report figures: matplotlib (Agg canvas, no pyplot state) rendered to PNG bytes.

Each function takes polars frames and returns PNG bytes; the curve maths lives in
:func:`curve_points` so it can be tested against the closed form.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from pricelab.demand.curves import ConstantElasticity

PALETTE = ("#1f4e79", "#c0504d", "#4f8a3c", "#8064a2", "#d08a1b", "#2c9fa5", "#7f7f7f", "#b5476d")
DPI = 100


def _figure(width: float, height: float, *, constrained: bool = True) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained" if constrained else None)
    FigureCanvasAgg(fig)
    return fig


def to_png(fig: Figure) -> bytes:
    """The figure as PNG bytes (no timestamp in the metadata, so output is reproducible)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def compact(value: float, _pos: object = None) -> str:
    """Tick text: 950, 12k, 1.5M (no offset or scientific notation)."""
    a = abs(value)
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{value / div:.3g}{suffix}"
    return f"{value:.3g}"


def _compact_axes(ax) -> None:  # noqa: ANN001 - matplotlib Axes
    ax.xaxis.set_major_formatter(FuncFormatter(compact))
    ax.yaxis.set_major_formatter(FuncFormatter(compact))
    ax.xaxis.set_major_locator(MaxNLocator(5))


def _style(ax) -> None:  # noqa: ANN001 - matplotlib Axes
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="both", color="#e6e6e6", linewidth=0.6)
    ax.set_axisbelow(True)


def weekly_units(weekly: pl.DataFrame) -> bytes:
    """Units sold per week and market (``market, week, units``)."""
    fig = _figure(9.5, 3.0)
    ax = fig.add_subplot()
    for i, (market,) in enumerate(sorted(weekly.select("market").unique().rows())):
        part = weekly.filter(pl.col("market") == market).sort("week")
        ax.plot(
            part["week"].to_list(),
            part["units"].to_numpy(),
            lw=1.3,
            color=PALETTE[i % len(PALETTE)],
            label=market,
        )
    ax.set_ylabel("units per week")
    ax.legend(ncols=8, frameon=False, fontsize=8, loc="upper left")
    _style(ax)
    return to_png(fig)


def elasticity_distribution(est: pl.DataFrame) -> bytes:
    """Item elasticities by category (rows) and market (colours): points, median, IQR.

    ``est`` has ``category, market, elasticity``; each point is one item x market estimate,
    the black bar spans the interquartile range and the white diamond marks the median.
    """
    cats = sorted(est["category"].unique().to_list())
    markets = sorted(est["market"].unique().to_list())
    fig = _figure(9.5, max(2.6, 0.85 * len(cats) + 1.2))
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)
    width = 0.8 / max(len(markets), 1)
    for j, market in enumerate(markets):
        color = PALETTE[j % len(PALETTE)]
        for i, cat in enumerate(cats):
            vals = est.filter((pl.col("category") == cat) & (pl.col("market") == market))[
                "elasticity"
            ].to_numpy()
            if vals.size == 0:
                continue
            y = i - 0.4 + width * (j + 0.5)
            ax.scatter(
                vals,
                y + rng.uniform(-width / 3, width / 3, vals.size),
                s=7,
                color=color,
                alpha=0.35,
                lw=0,
                label=market if i == 0 else None,
            )
            q1, med, q3 = np.percentile(vals, [25, 50, 75])
            ax.plot([q1, q3], [y, y], color="black", lw=2.2, solid_capstyle="butt")
            ax.plot([med], [y], marker="D", ms=5, mfc="white", mec="black", mew=1.1)
    ax.set_yticks(range(len(cats)), cats)
    ax.invert_yaxis()
    ax.axvline(-1, color="#999999", ls=":", lw=1)
    ax.set_xlabel("elasticity (d log q / d log p); dotted line: unit elastic")
    legend = ax.legend(
        title="market",
        frameon=False,
        fontsize=8,
        title_fontsize=8,
        loc="center left",
        bbox_to_anchor=(1.0, 0.5),
        markerscale=2,
    )
    for handle in legend.legend_handles:
        if handle is not None:
            handle.set_alpha(1.0)
    for i in range(1, len(cats)):
        ax.axhline(i - 0.5, color="#d0d4da", lw=0.8)
    _style(ax)
    return to_png(fig)


def elasticity_intervals(rows: pl.DataFrame) -> bytes:
    """Forest plot: estimate and 95% interval per row (``label, elasticity, ci_low, ci_high``)."""
    n = rows.height
    fig = _figure(9.5, max(2.4, 0.26 * n + 1.0))
    ax = fig.add_subplot()
    y = np.arange(n)
    e, lo, hi = (rows[c].to_numpy() for c in ("elasticity", "ci_low", "ci_high"))
    ax.hlines(y, lo, hi, color=PALETTE[0], lw=2)
    ax.plot(e, y, "o", color=PALETTE[1], ms=5)
    ax.set_yticks(y, rows["label"].to_list(), fontsize=8)
    ax.invert_yaxis()
    ax.axvline(-1, color="#999999", ls=":", lw=1)
    ax.set_xlabel("elasticity with 95% interval")
    _style(ax)
    return to_png(fig)


def curve_points(
    current_price: float,
    recommended_price: float,
    base_quantity: float,
    elasticity: float,
    unit_cost: float,
    *,
    n: int = 200,
    span: tuple[float, float] = (0.6, 1.4),
) -> dict[str, np.ndarray]:
    """Constant-elasticity demand q = q0 (p/p0)^e and profit (p - c) q on a price grid.

    The grid runs from ``span[0]`` times the lower to ``span[1]`` times the higher of the
    current and recommended prices.
    """
    lo = span[0] * min(current_price, recommended_price)
    hi = span[1] * max(current_price, recommended_price)
    p = np.linspace(lo, hi, n)
    q = _demand(current_price, base_quantity, elasticity, p)
    with np.errstate(all="ignore"):
        profit = _finite_or_nan((p - unit_cost) * q)
    return {"price": p, "quantity": q, "profit": profit}


def _finite_or_nan(x: np.ndarray) -> np.ndarray:
    """``x`` with overflowed values as NaN (matplotlib leaves a gap instead of failing)."""
    return np.where(np.isfinite(x), x, np.nan)


def _demand(p0: float, q0: float, elasticity: float, price: np.ndarray | float) -> np.ndarray:
    """The constant-elasticity curve at ``price`` in floating point; overflow (an absurd
    elasticity such as -5e4) is NaN rather than an OverflowError."""
    with np.errstate(all="ignore"):
        q = ConstantElasticity(p0, q0, float(elasticity)).quantity(np.asarray(price, dtype=float))
    return _finite_or_nan(np.asarray(q, dtype=float))


def curve_at(
    price: float, current_price: float, base_quantity: float, elasticity: float, unit_cost: float
) -> tuple[float, float]:
    """Quantity and profit of the constant-elasticity curve at one ``price``."""
    q = float(_demand(current_price, base_quantity, elasticity, price))
    return q, (price - unit_cost) * q


def demand_profit_curves(rows: pl.DataFrame, currency_of: dict[str, str]) -> bytes:
    """Demand (top) and profit (bottom) curves per plan row, current and chosen price marked.

    ``rows``: ``label, market, current_price, recommended_price, baseline_quantity,
    elasticity, unit_cost`` and optional ``ci_low, ci_high`` (a demand band).
    """
    n = rows.height
    cols = min(3, n)
    grid_rows = -(-n // cols)
    fig = _figure(3.4 * cols, 4.6 * grid_rows, constrained=False)  # fixed layout: 12 axes
    outer = fig.add_gridspec(
        grid_rows,
        cols,
        left=0.075,
        right=0.985,
        top=1 - 0.3 / grid_rows / 4.6 * 1.6,
        bottom=0.45 / (4.6 * grid_rows),
        wspace=0.38,
        hspace=0.3,
    )
    for k, r in enumerate(rows.iter_rows(named=True)):
        gi, gj = divmod(k, cols)
        inner = outer[gi, gj].subgridspec(2, 1, hspace=0.06)
        axq = fig.add_subplot(inner[0])
        axp = fig.add_subplot(inner[1], sharex=axq)
        pts = curve_points(
            r["current_price"],
            r["recommended_price"],
            r["baseline_quantity"],
            r["elasticity"],
            r["unit_cost"],
        )
        p = pts["price"]
        if (
            r.get("ci_low") is not None
            and r.get("ci_high") is not None
            and np.isfinite([r["ci_low"], r["ci_high"]]).all()
        ):
            qa, qb = (
                _demand(r["current_price"], r["baseline_quantity"], e, p)
                for e in (r["ci_low"], r["ci_high"])
            )
            axq.fill_between(
                p, np.minimum(qa, qb), np.maximum(qa, qb), color=PALETTE[0], alpha=0.12, lw=0
            )
        axq.plot(p, pts["quantity"], color=PALETTE[0], lw=1.6)
        # the axis follows the central curve: a wide interval band is clipped, not allowed to
        # flatten the curve into a line at the bottom
        top = float(np.nanmax(pts["quantity"])) if len(pts["quantity"]) else 1.0
        axq.set_ylim(0, 1.15 * top if top > 0 else 1.0)
        axp.plot(p, pts["profit"], color=PALETTE[2], lw=1.6)
        axp.axhline(0, color="#999999", lw=0.8)
        for price, color, ls, label in (
            (r["current_price"], "#555555", "--", "current"),
            (r["recommended_price"], PALETTE[1], "-", "recommended"),
        ):
            at = curve_at(
                price, r["current_price"], r["baseline_quantity"], r["elasticity"], r["unit_cost"]
            )
            for ax, value in zip((axq, axp), at, strict=True):
                ax.axvline(price, color=color, ls=ls, lw=1)
                ax.plot(
                    [price], [value], "o", color=color, ms=5, label=label if ax is axq else None
                )
        cur = currency_of.get(r["market"], "")
        axq.set_title(f"{r['label']}  (e = {r['elasticity']:.2f})", fontsize=9)
        axq.tick_params(labelbottom=False)
        axq.set_ylabel("units (horizon)", fontsize=8)
        axp.set_ylabel("profit (horizon)", fontsize=8)
        axp.set_xlabel(f"price ({cur})" if cur else "price", fontsize=8)
        for ax in (axq, axp):
            ax.tick_params(labelsize=7)
            _compact_axes(ax)
            _style(ax)
        if k == 0:
            axq.legend(frameon=False, fontsize=7)
    return to_png(fig)


def plan_changes(changes: pl.DataFrame, uplift: pl.DataFrame) -> bytes:
    """Left: price change % per item by market; right: profit uplift % by market.

    ``changes``: ``market, change_pct``; ``uplift``: ``market, uplift_pct``.
    """
    fig = _figure(9.5, 3.4)
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[1.5, 1])
    markets = sorted(uplift["market"].to_list())
    data = [changes.filter(pl.col("market") == m)["change_pct"].to_numpy() for m in markets]
    for i, vals in enumerate(data):
        rng = np.random.default_rng(i)
        ax1.scatter(
            i + rng.uniform(-0.22, 0.22, vals.size),
            vals,
            s=9,
            alpha=0.45,
            lw=0,
            color=PALETTE[i % len(PALETTE)],
        )
        if vals.size:
            ax1.plot([i - 0.3, i + 0.3], [np.median(vals)] * 2, color="black", lw=2)
    ax1.axhline(0, color="#999999", lw=0.8)
    ax1.set_xticks(range(len(markets)), markets)
    ax1.set_ylabel("recommended vs current price (%)")
    ax1.set_title("price changes per item (bar: median)", fontsize=9)
    vals = np.array(
        [uplift.filter(pl.col("market") == m)["uplift_pct"][0] for m in markets], dtype=float
    )
    colors = [PALETTE[2] if v >= 0 else PALETTE[1] for v in vals]
    bars = ax2.bar(markets, vals, color=colors)
    ax2.bar_label(bars, labels=[f"{v:+.1f}%" for v in vals], fontsize=8, padding=2)
    ax2.axhline(0, color="#999999", lw=0.8)
    ax2.set_ylabel("expected profit vs baseline (%)")
    ax2.set_title("profit uplift by market", fontsize=9)
    ax2.margins(y=0.15)
    for ax in (ax1, ax2):
        _style(ax)
    return to_png(fig)


def scenario_bars(
    totals: pl.DataFrame, metrics: Sequence[str] = ("quantity", "revenue", "profit")
) -> bytes:
    """Change vs baseline (%) of each metric per scenario (``scenario, <metric>_change_pct``)."""
    names = totals["scenario"].to_list()
    fig = _figure(9.5, max(2.6, 0.5 * len(names) * len(metrics) / 2 + 1.4))
    ax = fig.add_subplot()
    y = np.arange(len(names))
    h = 0.8 / len(metrics)
    for k, metric in enumerate(metrics):
        vals = totals[f"{metric}_change_pct"].to_numpy().astype(float)
        bars = ax.barh(y - 0.4 + h * (k + 0.5), vals, height=h, color=PALETTE[k], label=metric)
        ax.bar_label(bars, labels=[f"{v:+.1f}%" for v in vals], fontsize=7, padding=2)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.axvline(0, color="#999999", lw=0.8)
    ax.set_xlabel("change vs baseline over the horizon (%)")
    ax.legend(frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.margins(x=0.15)
    _style(ax)
    return to_png(fig)
