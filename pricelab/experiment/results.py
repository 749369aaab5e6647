"""Results objects of experiment design and analysis (read-only, with text and dict forms)."""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Any

import polars as pl

#: The contract's ``experiment analyze`` columns, in order (one row per cell against control).
ANALYSIS_COLUMNS: tuple[str, ...] = (
    "cell",
    "price_change_pct",
    "n_units",
    "effect_pct",
    "effect_low",
    "effect_high",
    "elasticity",
    "elasticity_low",
    "elasticity_high",
)


def _records(df: pl.DataFrame | None) -> list[dict[str, Any]] | None:
    if df is None:
        return None
    return json.loads(df.write_json())


def _clean(obj: Any) -> Any:
    """Make ``obj`` JSON-friendly: dates as ISO text, non-finite floats as None."""
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, dt.date):
        return obj.isoformat()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _fmt(x: float | None, spec: str = ".1f") -> str:
    return (
        "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)
    )


@dataclass(frozen=True)
class ExperimentDesign:
    """A randomised price test: who gets which price, balance and power.

    Attributes
    ----------
    assignment : polars.DataFrame
        One row per item x market: ``item_id, market, cell, price_change_pct,
        stratum, current_price, test_price, unit_id`` (``unit_id`` names the
        randomisation unit: the item, or ``item|market``).
    balance : polars.DataFrame
        Pre-period means by metric and cell with standardized differences.
    power : polars.DataFrame
        Per treated cell: MDE on units (percent), minimum detectable
        elasticity and, with ``mde``, the weeks needed.
    power_details : dict
        Variance components, CUPED variance reduction, pooled elasticity power.
    """

    name: str
    cells: list[float]
    unit: str
    stratify: list[str]
    weeks: int
    seed: int
    start: dt.date
    alpha: float
    target_power: float
    mde: float | None
    assignment: pl.DataFrame
    balance: pl.DataFrame
    power: pl.DataFrame
    power_details: dict = field(default_factory=dict)

    @property
    def end(self) -> dt.date:
        """Last day of the test window."""
        return self.start + dt.timedelta(days=7 * self.weeks - 1)

    @property
    def cell_counts(self) -> dict[str, int]:
        """Number of randomisation units per cell."""
        c = self.assignment.group_by("cell").agg(pl.col("unit_id").n_unique())
        return dict(zip(c["cell"].to_list(), c["unit_id"].to_list(), strict=True))

    @property
    def summary(self) -> str:
        """Readable text summary."""
        lines = [
            f"Experiment {self.name}: {len(self.cells)} cells {self.cells} by {self.unit}, "
            f"{self.weeks} weeks from {self.start.isoformat()} to {self.end.isoformat()}, "
            f"seed {self.seed}",
            f"Strata: {', '.join(self.stratify) or '(none)'}; "
            f"{self.assignment['stratum'].n_unique()} strata; units per cell {self.cell_counts}",
            f"CUPED variance reduction: "
            f"{_fmt(100 * self.power_details.get('cuped_variance_reduction', float('nan')))}%",
        ]
        for r in self.power.iter_rows(named=True):
            s = (
                f"  {r['cell']:>8}: MDE units {_fmt(r['mde_pct'])}% "
                f"(down {_fmt(r['mde_decrease_pct'])}%, up {_fmt(r['mde_increase_pct'])}%), "
                f"min. detectable elasticity {_fmt(r['mde_elasticity'], '.2f')}"
            )
            if "weeks_needed" in r:
                s += f"; weeks for {_fmt(self.mde)}%: {r['weeks_needed'] or 'unreachable'}"
            lines.append(s)
        lines.append(
            f"  pooled elasticity: min. detectable "
            f"{_fmt(self.power_details.get('pooled_mde_elasticity'), '.2f')}"
        )
        worst = self.balance.select(pl.col("std_diff").abs().max()).item()
        lines.append(f"Balance: largest |standardized difference| {_fmt(worst, '.3f')}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the whole design."""
        return _clean(
            {
                "name": self.name,
                "cells": self.cells,
                "unit": self.unit,
                "stratify": self.stratify,
                "weeks": self.weeks,
                "seed": self.seed,
                "start": self.start,
                "end": self.end,
                "alpha": self.alpha,
                "power_target": self.target_power,
                "mde_pct": self.mde,
                "cell_counts": self.cell_counts,
                "assignment": _records(self.assignment),
                "balance": _records(self.balance),
                "power": _records(self.power),
                "power_details": self.power_details,
            }
        )


@dataclass(frozen=True)
class ExperimentAnalysis:
    """Effects and elasticities of a randomised price test.

    Attributes
    ----------
    table : polars.DataFrame
        One row per treated cell against control: ``cell, price_change_pct,
        n_units, effect_pct, effect_low, effect_high, elasticity,
        elasticity_low, elasticity_high`` plus revenue and profit effects,
        standard errors and p-values (percent; 1 - alpha intervals).
    pooled : dict
        Pooled elasticity over all cells with its interval.
    srm : dict
        Sample-ratio-mismatch check on units present in the test window.
    comparison : polars.DataFrame or None
        Per cell (and ``pooled``): observational elasticities against the
        experiment's interval.
    """

    name: str
    start: dt.date
    end: dt.date
    test_weeks: int
    pre_weeks: int
    alpha: float
    cuped: bool
    table: pl.DataFrame
    pooled: dict
    srm: dict
    comparison: pl.DataFrame | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """Readable text summary."""
        lvl = round(100 * (1 - self.alpha))
        lines = [
            f"Experiment {self.name}: {self.start.isoformat()} to {self.end.isoformat()} "
            f"({self.test_weeks} test weeks, {self.pre_weeks} pre weeks, "
            f"CUPED {'on' if self.cuped else 'off'}); {lvl}% intervals"
        ]
        for r in self.table.iter_rows(named=True):
            lines.append(
                f"  {r['cell']:>8} (n={r['n_units']}): units {_fmt(r['effect_pct'])}% "
                f"[{_fmt(r['effect_low'])}, {_fmt(r['effect_high'])}], revenue "
                f"{_fmt(r['revenue_effect_pct'])}% [{_fmt(r['revenue_effect_low'])}, "
                f"{_fmt(r['revenue_effect_high'])}], elasticity {_fmt(r['elasticity'], '.2f')} "
                f"[{_fmt(r['elasticity_low'], '.2f')}, {_fmt(r['elasticity_high'], '.2f')}]"
            )
        p = self.pooled
        lines.append(
            f"  pooled elasticity {_fmt(p['elasticity'], '.2f')} "
            f"[{_fmt(p['elasticity_low'], '.2f')}, {_fmt(p['elasticity_high'], '.2f')}]"
        )
        s = self.srm
        lines.append(
            f"Sample ratio: p = {_fmt(s['p_value'], '.4f')}"
            + (" MISMATCH" if s["mismatch"] else " ok")
        )
        if self.comparison is not None:
            for r in self.comparison.iter_rows(named=True):
                lines.append(
                    f"  observational vs {r['cell']}: {_fmt(100 * r['share_units_inside'])}% of "
                    f"{r['n_units']} units inside the interval; mean "
                    f"{_fmt(r['observational_mean'], '.2f')} inside: {r['mean_inside']}"
                )
        lines.extend(f"Note: {n}" for n in self.notes)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the whole analysis."""
        return _clean(
            {
                "name": self.name,
                "start": self.start,
                "end": self.end,
                "test_weeks": self.test_weeks,
                "pre_weeks": self.pre_weeks,
                "alpha": self.alpha,
                "cuped": self.cuped,
                "table": _records(self.table),
                "pooled": self.pooled,
                "srm": self.srm,
                "comparison": _records(self.comparison),
                "notes": self.notes,
            }
        )
