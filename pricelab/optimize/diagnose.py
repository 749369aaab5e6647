"""Infeasibility diagnosis: name the rows and constraints that conflict, with numbers.

Row-level conflicts come from per-row interval checks (every lower limit against every
upper limit); parity from each item's feasible band; each linking constraint from its
achievable range. Conflicts that only appear jointly are found by relaxing every linking
constraint with slack variables in the candidate MILP and naming the ones whose slack is
non-zero.
"""

from __future__ import annotations

import numpy as np

from pricelab.errors import InfeasibleError
from pricelab.optimize.band import Blocks, feasible_range
from pricelab.optimize.candidates import solve_milp
from pricelab.optimize.links import AverageChangeBudget
from pricelab.optimize.problem import Problem

MAX_LISTED = 10
LOWER = ("max_decrease_pct", "min_margin_pct", "inventory")


def _setting(prob: Problem, name: str, i: int) -> str:
    if name == "inventory":
        return f"inventory (stock {prob.settings['stock'][i]:g} over {prob.horizon:g} weeks)"
    return f"{name} {prob.settings[name][i]:g}"


def _cap(prob: Problem, i: int) -> str:
    """What sets row ``i``'s upper price limit, with its setting."""
    src = prob.hi_src[i]
    if src == AverageChangeBudget.key:  # implied by the budget (avg_change.implied_caps)
        budget = next(
            (lk.value for lk in prob.links_of(AverageChangeBudget) if i in set(lk.rows.tolist())),
            None,
        )
        return (
            "the max_avg_change_pct budget"
            if budget is None
            else f"the max_avg_change_pct {budget:g} budget"
        )
    if src == "max_increase_pct":
        return _setting(prob, "max_increase_pct", i)
    return src or "its cap"


def row_conflicts(prob: Problem) -> list[str]:
    """Rows whose own lower limits exceed their upper limit."""
    tol = 1e-9 * np.maximum(1.0, np.abs(prob.p0))
    bad = np.flatnonzero(prob.lo > prob.hi + tol)
    msgs = []
    for i in bad.tolist():
        if prob.frozen[i]:
            continue
        hi = prob.hi[i]
        for name in LOWER:
            v = prob.sources[name][i]
            if not np.isnan(v) and v > hi + tol[i]:
                msgs.append(
                    f"{prob.label(i)}: {_setting(prob, name, i)} needs price >= {v:.2f} "
                    f"but {_cap(prob, i)} caps it at {hi:.2f}"
                )
    return msgs


def ladder_conflicts(prob: Problem, P: np.ndarray) -> list[str]:
    """Ladder rows with no allowed price point inside their interval."""
    empty = np.flatnonzero(np.all(np.isnan(P), axis=1))
    out = []
    for i in empty.tolist():
        out.append(
            f"{prob.label(i)}: ladder (points every {prob.ladder_spacing[i]:g}"
            f"{'' if prob.ladder_offset[i] == 0 else f' ending {prob.ladder_offset[i]:g}'}) "
            f"has no price between {prob.lo[i]:.2f} ({prob.lo_src[i] or 'no floor'}) and "
            f"{prob.hi[i]:.2f} ({prob.hi_src[i] or 'no cap'})"
        )
    return out


def parity_conflicts(prob: Problem, groups: np.ndarray) -> list[str]:
    """Items whose markets cannot fit into one parity band."""
    return [msg for _, msg in parity_conflict_groups(prob, groups)]


def parity_conflict_groups(prob: Problem, groups: np.ndarray) -> list[tuple[np.ndarray, str]]:
    """(the item's rows, why) for each item whose markets cannot fit into one parity band."""
    if not (groups >= 0).any():
        return []
    b = Blocks.build(groups, np.nan_to_num(prob.parity_gap))
    lmin, lmax = feasible_range(b, prob.lo, prob.hi, prob.fx)
    out = []
    for g in np.flatnonzero(lmin > lmax * (1 + 1e-9)):
        rows = b.rows[g][b.rows[g] >= 0]
        lo_b, hi_b = prob.lo[rows] / prob.fx[rows], prob.hi[rows] / prob.fx[rows]
        a, z = rows[np.argmax(lo_b)], rows[np.argmin(hi_b)]
        out.append(
            (
                rows,
                f"{prob.item[a]}: parity max_gap_pct {100 * b.gap[g]:g}: {prob.market[a]} needs "
                f"base price >= {lo_b.max():.2f} ({prob.lo_src[a] or 'floor'}) but "
                f"{prob.market[z]} is capped at {hi_b.min():.2f} ({prob.hi_src[z] or 'cap'}); "
                f"gap needed {100 * (lo_b.max() / hi_b.min() - 1):.1f}%",
            )
        )
    return out


def link_conflicts(prob: Problem) -> list[str]:
    """Linking constraints that no prices within the row limits can meet."""
    q_lo, q_hi = prob.quantity(prob.lo), prob.quantity(prob.hi)
    found = (lk.conflict(prob, q_lo, q_hi) for lk in prob.links)
    return [msg for msg in found if msg]


def joint_conflicts(prob: Problem, slack: np.ndarray) -> list[str]:
    """Name the linking constraints whose slack is non-zero in the relaxed MILP."""
    out = []
    for lk, s in zip(prob.links, slack, strict=True):
        if abs(s) > 1e-7:
            out.append(
                f"{lk.name} cannot be met together with the other constraints "
                f"(short by {100 * abs(s):.2f}% of its limit)"
            )
    return out or ["the constraints conflict jointly (no single linking constraint named)"]


def raise_infeasible(msgs: list[str]) -> None:
    """Raise :class:`InfeasibleError` listing the first conflicts."""
    more = len(msgs) - MAX_LISTED
    text = "; ".join(msgs[:MAX_LISTED]) + (f"; and {more} more" if more > 0 else "")
    raise InfeasibleError(
        f"infeasible: {text}", hint="relax the named constraints or add an override"
    )


def ordering_conflicts(prob: Problem) -> list[str]:
    """Ordering chains that the row limits cannot accommodate (floors pushed up the chain)."""
    return [msg for _, _, msg in ordering_conflict_groups(prob)]


def ordering_conflict_groups(prob: Problem) -> list[tuple[int, np.ndarray, str]]:
    """(ordering index, the chain's rows, why) for each chain the row limits cannot hold.

    A chain is the connected set of rows one ordering links (one market's listed items).
    """
    out = []
    need = prob.lo.copy()
    src = {}
    for k, (lower, upper, f, name) in enumerate(prob.ordering):
        for lo_row, up_row in zip(lower, upper, strict=True):
            v = f * need[lo_row]
            if v > need[up_row]:
                need[up_row] = v
                src[up_row] = lo_row
            if need[up_row] > prob.hi[up_row] * (1 + 1e-9):
                lo_row = src.get(up_row, lo_row)
                msg = (
                    f"{name}: {prob.label(up_row)} needs price >= {need[up_row]:.2f} "
                    f"({f:g} x {prob.label(lo_row)} at >= {need[lo_row]:.2f}) but "
                    f"{prob.hi_src[up_row] or 'its cap'} caps it at "
                    f"{prob.hi[up_row]:.2f}"
                )
                out.append((k, _chain(lower, upper, int(up_row)), msg))
    return out


def _chain(lower: np.ndarray, upper: np.ndarray, row: int) -> np.ndarray:
    """The rows linked to ``row`` through the (lower, upper) pairs of one ordering."""
    seen, todo = {row}, [row]
    while todo:
        r = todo.pop()
        for a, b in zip(lower.tolist(), upper.tolist(), strict=True):
            for x, y in ((a, b), (b, a)):
                if x == r and y not in seen:
                    seen.add(y)
                    todo.append(y)
    return np.array(sorted(seen))


def infeasible_milp(prob, groups, P, value, risk, cvar, time_limit) -> None:
    """Raise the candidate MILP's infeasibility with the constraints that conflict: the
    linking constraints a slack MILP cannot meet, else parity, ordering or the CVaR floor."""
    msgs: list[str] = []
    if prob.links:
        sl = solve_milp(
            prob,
            P,
            value,
            parity_groups=groups,
            parity_gap=np.nan_to_num(prob.parity_gap),
            slack=True,
            time_limit=time_limit,
        )
        msgs = joint_conflicts(prob, sl.prices) if sl.status == "slack" else []
    if not msgs and (groups >= 0).any():
        msgs = [_parity_message(prob, groups)]
    if not msgs and prob.ordering:
        msgs = [
            f"{od[3]} cannot be met on the candidate prices together with the other constraints"
            for od in prob.ordering
        ]
    if cvar is not None:
        msgs.append(f"risk cvar:{risk:g} floor {cvar[1]:,.2f} (baseline CVaR) cannot be met")
    raise_infeasible(msgs or ["the candidate MILP is infeasible"])


def _parity_message(prob: Problem, groups: np.ndarray) -> str:
    """Why parity failed on the candidate prices, naming only constraints that are set."""
    rows = groups >= 0
    if (~np.isnan(prob.ladder_spacing[rows])).any():
        return (
            "parity with the ladder: for some item no combination of ladder prices "
            "within the row limits fits one parity band (widen max_gap_pct or the "
            "bounds, or use a finer step)"
        )
    others = ", ".join(dict.fromkeys(lk.key for lk in prob.links))
    return (
        "parity: no candidate prices within the row limits fit every item's parity band"
        + (f" together with {others}" if others else "")
        + " (widen max_gap_pct or the bounds)"
    )
