"""Partial plans: rows whose own constraints conflict stay at their current price.

A row whose lower limits (``max_decrease_pct``, ``min_margin_pct``, ``inventory``) exceed its
upper limit (``max_increase_pct`` or an implied budget cap) has no feasible price; nor has a
row whose ladder has no price point between its limits. With
``conflicts="keep"`` those rows are frozen at their current price, the rest of the plan is
optimised, and the plan's ``status`` column says ``conflict`` for them with the conflict in
``reason`` (``optimized`` and an empty reason for the others).

Conflicts between rows are handled the same way, one conflicting group at a time: an item
whose markets cannot fit one parity band (all its markets), a volume floor, stock pool or
average-change budget that no prices within the rows' limits can meet (the rows it covers),
an ordering chain the row limits cannot hold (the chain's rows in that market). The group's
rows stay at their current price with the constraint named in ``reason``, the constraint is
dropped for them, and the rest of the plan is optimised under every other constraint
(freezing can make a new group conflict: the check repeats until none does). Conflicts
that only the joint MILP finds (no single constraint is infeasible on its own, e.g. a
volume floor that needs cuts and a budget that forbids them) are named by the MILP with a
slack on every linking constraint (:func:`joint_link_conflicts`): the links whose slack is
non-zero are dropped, their rows kept at their current price, and the plan re-solved.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pricelab.optimize import diagnose as dg
from pricelab.optimize.decompose import Responder
from pricelab.optimize.ladder import first_positive, ladder_index, ladder_message
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
    _freeze(prob, bad)
    return reasons


def freeze_group_conflicts(prob: Problem) -> dict[int, str]:
    """Freeze every group of rows whose linking constraint cannot be met; ``{row: reason}``.

    Call after :func:`freeze_row_conflicts`. Rows frozen by the constraints file keep their
    ``frozen`` label; the others get the conflict (several reasons joined by ``; ``).
    """
    user_frozen = prob.frozen & (prob.lo_src == "frozen")
    reasons: dict[int, list[str]] = {}
    for _ in range(len(prob.links) + len(prob.ordering) + prob.n + 1):  # each round drops one
        found = dg.parity_conflict_groups(prob, Responder(prob).groups)
        for rows, _ in found:
            prob.parity_gap[rows] = np.nan
        q_lo, q_hi = prob.quantity(prob.lo), prob.quantity(prob.hi)
        kept = []
        for lk in prob.links:
            msg = lk.conflict(prob, q_lo, q_hi)
            if msg:
                found.append((lk.rows, msg))
            else:
                kept.append(lk)
        prob.links = kept
        chains = dg.ordering_conflict_groups(prob)
        for k, rows, msg in chains:
            lower, upper, f, name = prob.ordering[k]
            keep = ~np.isin(lower, rows)
            prob.ordering[k] = (lower[keep], upper[keep], f, name)
            found.append((rows, msg))
        prob.ordering = [od for od in prob.ordering if od[0].size]
        if not found:
            break
        for rows, msg in found:
            rows = rows[~user_frozen[rows]]
            _freeze(prob, rows)
            for i in rows.tolist():
                if msg not in reasons.setdefault(i, []):
                    reasons[i].append(msg)
    return {i: "; ".join(msgs) for i, msgs in reasons.items()}


def joint_link_conflicts(prob: Problem, groups: np.ndarray, n_grid: int = 25) -> dict[int, str]:
    """Freeze the rows of the linking constraints that the candidate MILP with a slack on
    every link cannot meet together; ``{row: reason}`` (empty when no link is named)."""
    from pricelab.optimize.candidates import candidate_matrix, solve_milp, with_ordering_points

    P = with_ordering_points(prob, candidate_matrix(prob, n_grid))
    gap = np.nan_to_num(prob.parity_gap)
    sl = solve_milp(prob, P, np.zeros(P.shape), parity_groups=groups, parity_gap=gap, slack=True)
    if sl.status != "slack":
        return {}
    named = [j for j, x in enumerate(sl.prices) if abs(x) > 1e-7]
    user_frozen = prob.frozen & (prob.lo_src == "frozen")
    reasons: dict[int, list[str]] = {}
    for j in named:
        lk = prob.links[j]
        why = (
            f"{lk.name} cannot be met together with the other constraints (short by "
            f"{100 * abs(sl.prices[j]):.2f}% of its limit)"
        )
        rows = lk.rows[~user_frozen[lk.rows]]
        _freeze(prob, rows)
        for i in rows.tolist():
            reasons.setdefault(i, []).append(why)
    prob.links = [lk for j, lk in enumerate(prob.links) if j not in named]
    return {i: "; ".join(msgs) for i, msgs in reasons.items()}


def freeze_ladder_conflicts(prob: Problem) -> dict[int, str]:
    """Freeze every row whose ladder has no price point between its limits; ``{row: reason}``.

    Call after :func:`freeze_row_conflicts` (its rows leave the ladder: kept at their current
    price, which need not be a ladder point).
    """
    lad = ~np.isnan(prob.ladder_spacing) & ~prob.frozen
    if not lad.any():
        return {}
    s, off = prob.ladder_spacing, prob.ladder_offset
    with np.errstate(invalid="ignore"):
        k0 = np.maximum(ladder_index(prob.lo, s, off, up=True), first_positive(s, off))
        k1 = ladder_index(prob.hi, s, off, up=False)
    bad = np.flatnonzero(lad & (k0 > k1))
    reasons = {i: ladder_message(prob, i).split(": ", 1)[1] for i in bad.tolist()}
    _freeze(prob, bad)
    return reasons


def _freeze(prob: Problem, rows: np.ndarray) -> None:
    prob.ladder_spacing[rows] = np.nan  # a kept price need not be a ladder point
    prob.lo[rows] = prob.p0[rows]
    prob.hi[rows] = prob.p0[rows]
    prob.frozen[rows] = True
    prob.lo_src[rows] = CONFLICT
    prob.hi_src[rows] = CONFLICT


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
