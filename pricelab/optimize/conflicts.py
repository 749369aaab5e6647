"""Partial plans: rows whose own constraints conflict stay at their current price.

A row whose lower limits (``max_decrease_pct``, ``min_margin_pct``, ``inventory``) exceed its
upper limit (``max_increase_pct`` or an implied budget cap) has no feasible price. With
``conflicts="keep"`` those rows are frozen at their current price, the rest of the plan is
optimised, and the plan's ``status`` column says ``conflict`` for them with the conflict in
``reason`` (``optimized`` and an empty reason for the others). Conflicts between rows (parity,
volume floors, stock pools, budgets) still raise :class:`~pricelab.errors.InfeasibleError`:
which row to give up is a business decision.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pricelab.optimize import diagnose as dg
from pricelab.optimize.problem import Problem

OPTIMIZED, SKIPPED, CONFLICT = "optimized", "skipped", "conflict"
MODES = ("raise", "keep")


def freeze_row_conflicts(prob: Problem) -> dict[int, str]:
    """Freeze every row whose own limits conflict at its current price; ``{row: reason}``."""
    tol = 1e-9 * np.maximum(1.0, np.abs(prob.p0))
    bad = np.flatnonzero((prob.lo > prob.hi + tol) & ~prob.frozen)
    reasons: dict[int, str] = {}
    for i in bad.tolist():
        hi = prob.hi[i]
        parts = [
            f"{dg._setting(prob, name, i)} needs price >= {prob.sources[name][i]:.2f} but "
            f"{dg._cap(prob, i)} caps it at {hi:.2f}"
            for name in dg.LOWER
            if not np.isnan(prob.sources[name][i]) and prob.sources[name][i] > hi + tol[i]
        ]
        reasons[i] = "; ".join(parts) or f"price floor {prob.lo[i]:.2f} above cap {hi:.2f}"
    if bad.size:
        prob.lo[bad] = prob.p0[bad]
        prob.hi[bad] = prob.p0[bad]
        prob.frozen[bad] = True
        prob.lo_src[bad] = CONFLICT
        prob.hi_src[bad] = CONFLICT
    return reasons


def with_status(table: pl.DataFrame, reasons: dict[int, str]) -> pl.DataFrame:
    """``table`` with ``status`` and ``reason`` columns (``binding`` says ``conflict``)."""
    n = table.height
    status = np.full(n, OPTIMIZED, dtype=object)
    reason = np.full(n, "", dtype=object)
    binding = np.array(table["binding"].to_list(), dtype=object)
    for i, why in reasons.items():
        status[i], reason[i], binding[i] = CONFLICT, why, CONFLICT
    return table.with_columns(
        pl.Series("binding", binding.tolist(), dtype=pl.String),
        pl.Series("status", status.tolist(), dtype=pl.String),
        pl.Series("reason", reason.tolist(), dtype=pl.String),
    )
