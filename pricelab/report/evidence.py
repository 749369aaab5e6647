"""Report sections for the evidence behind a plan: backtests and price experiments.

- ``backtest``: the latest ``pricelab backtest`` run's pooled scores per model (WAPE, bias,
  90% interval coverage) and a plot of each model's WAPE and bias at every forecast origin.
- ``experiments``: the latest ``pricelab experiment analyze`` run's effect of each price
  cell on units against control, with its 95% interval, and the elasticity it implies.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pricelab.experiment.results import ANALYSIS_COLUMNS
from pricelab.report.html import absent, esc, image, table
from pricelab.report.plots import PALETTE, _figure, _style, to_png
from pricelab.store.db import Store
from pricelab.store.runs import latest_run

Section = tuple[str, str, str, bool]


def load_backtest(store: Store) -> tuple[str, pl.DataFrame] | None:
    """The latest backtest run's id and scores (None without one)."""
    run = latest_run(store, "backtest")
    if run is None or not store.has_table("backtests"):
        return None
    scores = store.read_result("backtests", run)
    return (run, scores) if scores.height else None


def load_experiment(store: Store) -> tuple[str, pl.DataFrame] | None:
    """The latest experiment analysis' run id and per-cell results (None without one)."""
    run = latest_run(store, "experiment-analyze")
    if run is None or not store.has_table("experiment_results"):
        return None
    res = store.read_result("experiment_results", run)
    return (run, res) if res.height else None


def backtest_plot(scores: pl.DataFrame) -> bytes:
    """WAPE (left) and bias % (right) per forecast origin, one line per model."""
    fig = _figure(9.5, 3.0)
    ax1, ax2 = fig.subplots(1, 2)
    per = scores.filter(pl.col("cutoff") != "all").sort("cutoff")
    cutoffs = sorted(per["cutoff"].unique().to_list())
    x = {c: i for i, c in enumerate(cutoffs)}
    markers = "osD^vP*X"
    for i, model in enumerate(sorted(per["model"].unique().to_list())):
        part = per.filter(pl.col("model") == model)
        xs = [x[c] for c in part["cutoff"].to_list()]
        style = {"color": PALETTE[i % len(PALETTE)], "marker": markers[i % len(markers)]}
        ax1.plot(xs, 100 * part["wape"].to_numpy(), label=model, **style)
        ax2.plot(xs, part["bias_pct"].to_numpy(), label=model, **style)
    for ax, label in ((ax1, "WAPE (%)"), (ax2, "bias (%, predicted / actual - 1)")):
        ax.set_xticks(range(len(cutoffs)), cutoffs, rotation=30, fontsize=7)
        ax.set_ylabel(label, fontsize=8)
        ax.set_xlabel("forecast origin (cutoff)", fontsize=8)
        _style(ax)
    ax2.axhline(0, color="#999999", lw=0.8)
    ax1.legend(frameon=False, fontsize=7)
    return to_png(fig)


def experiment_plot(res: pl.DataFrame) -> bytes:
    """Effect on units (%) per price cell against control, with 95% intervals."""
    fig = _figure(6.5, 0.6 + 0.55 * res.height)
    ax = fig.add_subplot()
    r = res.sort("price_change_pct")
    y = np.arange(r.height)
    eff = r["effect_pct"].to_numpy().astype(float)
    lo, hi = r["effect_low"].to_numpy().astype(float), r["effect_high"].to_numpy().astype(float)
    ax.errorbar(
        eff,
        y,
        xerr=[eff - lo, hi - eff],
        fmt="o",
        color=PALETTE[0],
        ecolor=PALETTE[0],
        capsize=3,
    )
    labels = [f"{c} ({p:+g}%)" for c, p in zip(r["cell"], r["price_change_pct"], strict=True)]
    ax.set_yticks(y, labels, fontsize=8)
    ax.axvline(0, color="#999999", lw=0.8)
    ax.set_xlabel("effect on units vs control (%, 95% interval)", fontsize=8)
    _style(ax)
    return to_png(fig)


def backtest(found: tuple[str, pl.DataFrame] | None) -> Section:
    """Backtest scores per model, pooled over origins, and per origin."""
    head = "Backtest"
    if found is None:
        return (
            "backtest",
            head,
            absent("No backtest run: run <code>pricelab backtest --cutoff DATE</code>."),
            False,
        )
    run, scores = found
    overall = scores.filter(pl.col("cutoff") == "all").sort("rank")
    cols = ["model", "n_groups", "wape", "bias_pct", "coverage_90", "deviance"]
    shown = overall.select([c for c in cols if c in overall.columns])
    parts = [
        image(
            backtest_plot(scores),
            "backtest scores per forecast origin",
            "Forecast error of each model at every origin: WAPE (lower is better) and bias "
            "(0 is unbiased).",
        ),
        table(shown, digits={"wape": 3, "bias_pct": 1, "coverage_90": 2, "deviance": 3}),
        f'<p class="note">Run <code>{esc(run)}</code>; best model over all origins: '
        f"<b>{esc(overall['model'][0]) if overall.height else '?'}</b>. coverage_90 is the "
        "share of weeks inside the 90% predictive interval (0.90 when it is honest).</p>",
    ]
    return "backtest", head, "".join(parts), True


def experiments(found: tuple[str, pl.DataFrame] | None) -> Section:
    """The latest experiment analysis: effect per cell with its interval and elasticity."""
    head = "Experiments"
    if found is None:
        return (
            "experiments",
            head,
            absent(
                "No experiment analysis: run <code>pricelab experiment design</code>, then "
                "<code>pricelab experiment analyze</code> after the test."
            ),
            False,
        )
    run, res = found
    name = res["experiment"][0] if "experiment" in res.columns else "?"
    cols = ANALYSIS_COLUMNS
    shown = res.select([c for c in cols if c in res.columns]).sort("price_change_pct")
    parts = [
        image(
            experiment_plot(res),
            "experiment effects per cell",
            f"Experiment {esc(name)}: each cell's effect on units against control.",
        ),
        table(shown, digits={c: 2 for c in cols[3:]} | {"price_change_pct": 1}),
        f'<p class="note">Run <code>{esc(run)}</code>. Intervals are 95%; an interval that '
        "crosses 0 has not shown an effect.</p>",
    ]
    return "experiments", head, "".join(parts), True
