"""Optimizer benchmark (issue 4), ratios measured in the same run.

1. 100k item-markets with bounds, margin floor and one binding volume floor, end to end
   through ``optimize`` (decomposition), against one undecomposed cvxpy power-cone problem
   over all rows at a size it can do (``--conic-rows``, default 2000), compared per row.
2. Ladder with parity: 10k item-markets x ~25 ladder points; time and reported gap (exact
   breakpoint enumeration, no MILP), and its scaling from 1k rows.
3. A genuinely linked ladder problem (parity + ladder + binding volume floor): Lagrangian
   relaxation with the exact ladder solver per parity block and its proven dual gap, at
   ``--milp-rows`` against the candidate MILP (HiGHS) and at ``--ladder-rows``.
4. Bounds + margin + a binding average-change budget (max_avg_change_pct, lower side) + a
   binding volume floor, continuous prices: multipliers (avg_change.py) at ``--budget-rows``
   against the candidate MILP on the same problem at ``--budget-milp-rows``, and at
   ``--rows`` without it (at 10k rows the MILP did not finish in 25 minutes).

Run: ``python benchmarks/bench_optimize.py [--rows 100000] [--conic-rows 2000] [--repeat 3]``;
one JSON line per measurement (median of ``--repeat`` runs; see ``_bench.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import emit, timed  # noqa: E402

from pricelab.optimize import load_constraints, optimize  # noqa: E402
from pricelab.optimize.decompose import Responder  # noqa: E402
from pricelab.optimize.formulations import solve_conic  # noqa: E402
from pricelab.optimize.problem import build_problem  # noqa: E402
from pricelab.optimize.routes import candidate_milp  # noqa: E402

MARKETS = {"US": 1.1, "GB": 0.85, "DE": 1.0, "FR": 1.0, "CH": 1.3}


def catalogue(
    n_rows: int, seed: int = 0, spread: float = 0.02, price_range: tuple[float, float] = (80, 2000)
) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    mk = list(MARKETS)
    n_items = n_rows // len(mk)
    item = np.repeat(np.arange(n_items), len(mk))
    market = np.tile(mk, n_items)
    fx = np.tile([MARKETS[m] for m in mk], n_items)
    base = np.repeat(rng.uniform(*price_range, n_items), len(mk))
    cost = base * np.repeat(rng.uniform(0.3, 0.5, n_items), len(mk))
    return pl.DataFrame(
        {
            "item_id": np.char.add("IT-", item.astype(str)),
            "market": market,
            "elasticity": rng.uniform(-4.0, -1.2, item.size),
            "base_price": base * fx * rng.uniform(1 - spread, 1 + spread, item.size),
            "base_quantity": rng.uniform(0.5, 20, item.size),
            "unit_cost": cost * fx,
            "fx_rate": fx,
        }
    )


def bench_volume(n_rows: int, conic_rows: int, repeat: int) -> None:
    cons = {
        "bounds": {"max_increase_pct": 15, "max_decrease_pct": 20},
        "min_margin_pct": 30,
        "min_volume_pct": 175,
        "horizon_weeks": 4,
    }
    df = catalogue(n_rows)
    plan, t_dec = timed(lambda: optimize(df, cons), repeat)
    emit(
        "optimize",
        "bounds + margin + volume floor, end to end",
        n_rows,
        t_dec,
        repeat=repeat,
        formulation=plan.formulation,
        gap=plan.gap,
    )
    small = catalogue(conic_rows, seed=1)
    p_small, t_dec_small = timed(lambda: optimize(small, cons), repeat)
    prob = build_problem(small, load_constraints(cons))
    ref, t_conic = timed(lambda: solve_conic(prob), repeat)
    obj_ref = float(prob.objective_value(ref).sum())
    emit(
        "optimize",
        "bounds + margin + volume floor (decomposed)",
        conic_rows,
        t_dec_small,
        repeat=repeat,
        reference="one undecomposed cvxpy power-cone problem (CLARABEL)",
        reference_seconds=t_conic,
        objective_rel_diff=(p_small.objective - obj_ref) / abs(obj_ref),
    )


LADDER = {
    "bounds": {"max_increase_pct": 17, "max_decrease_pct": 17},
    "min_margin_pct": 30,
    "parity": {"max_gap_pct": 5},
    "ladder": {"step": 10, "ending": 9},
}


def bench_ladder(n_rows: int, repeat: int) -> float:
    """Ladder + parity, nothing else linking: exact breakpoint enumeration (no MILP)."""
    # about 25 ladder points per row: prices 600-800, step 10 inside a +-17% range
    df = catalogue(n_rows, seed=2, price_range=(550, 700))
    plan, dt = timed(lambda: optimize(df, LADDER), repeat)
    emit(
        "optimize",
        "ladder + parity (breakpoint enumeration)",
        n_rows,
        dt,
        repeat=repeat,
        formulation=plan.formulation,
        status=plan.status,
        gap=plan.gap,
    )
    return dt


def _milp_reference(
    df: pl.DataFrame, cons: dict, plan, dt: float, label: str, *, with_status: bool = False
) -> dict:
    """The candidate MILP (HiGHS, 25-point grid) on the same problem, timed in the same run."""
    prob = build_problem(df, load_constraints(cons))
    res, t_milp = timed(
        lambda: candidate_milp(
            prob, Responder(prob), risk=None, draws=None, seed=0, n_grid=25, time_limit=600
        )[0],
        1,
    )
    m_obj = float(prob.objective_value(res.prices).sum())
    info = {
        "reference": label,
        "reference_seconds": t_milp,
        "speedup": t_milp / dt,
        "objective_rel_diff_vs_milp": (plan.objective - m_obj) / abs(m_obj),
    }
    return {**info, "reference_status": res.status} if with_status else info


def bench_linked(n_rows: int, repeat: int, milp_reference: bool) -> float:
    """Ladder + parity + a binding volume floor over all rows: Lagrangian relaxation with an
    exact ladder solve per parity block; at ``milp_reference`` sizes also the candidate MILP
    (HiGHS) on the same problem, compared in the same run."""
    df = catalogue(n_rows, seed=2, price_range=(550, 700))
    cons = {**LADDER, "min_volume_pct": 157}  # unconstrained plan sells 154.7%: binds
    plan, dt = timed(lambda: optimize(df, cons), repeat)
    info = _milp_reference(df, cons, plan, dt, "candidate MILP (HiGHS)") if milp_reference else {}
    emit(
        "optimize",
        "ladder + parity + binding volume floor",
        n_rows,
        dt,
        repeat=repeat,
        formulation=plan.formulation,
        path=plan.extra.get("path"),
        status=plan.status,
        gap=plan.gap,
        **info,
    )
    return dt


BUDGET = {
    "bounds": {"max_increase_pct": 15, "max_decrease_pct": 20},
    "min_margin_pct": 30,
    "max_avg_change_pct": 3,
    "min_volume_pct": 150,
    "horizon_weeks": 4,
}


def bench_budget(n_rows: int, repeat: int, milp_reference: bool) -> float:
    """Average-change budget + volume floor priced out (the unconstrained plan moves prices
    by -13% on average and sells 169%; the budget holds -3%, the floor 150%)."""
    df = catalogue(n_rows, seed=3)
    cpu = time.process_time()
    plan, dt = timed(lambda: optimize(df, BUDGET), repeat)
    cpu = (time.process_time() - cpu) / max(1, repeat)  # CPU seconds per run (shared machine)
    info = (
        _milp_reference(
            df, BUDGET, plan, dt, "candidate MILP (HiGHS, 25-point grid)", with_status=True
        )
        if milp_reference
        else {}
    )
    emit(
        "optimize",
        "bounds + margin + avg-change budget + volume floor",
        n_rows,
        dt,
        repeat=repeat,
        formulation=plan.formulation,
        path=plan.extra.get("path"),
        status=plan.status,
        gap=plan.gap,
        cpu_seconds=round(cpu, 3),
        load_average=round(os.getloadavg()[0], 1),
        **info,
    )
    return dt


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--conic-rows", type=int, default=2_000)
    ap.add_argument("--ladder-rows", type=int, default=10_000)
    ap.add_argument("--milp-rows", type=int, default=1_000)
    ap.add_argument("--budget-rows", type=int, default=10_000)
    ap.add_argument("--budget-milp-rows", type=int, default=1_000)
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement (median)")
    a = ap.parse_args()
    bench_volume(a.rows, a.conic_rows, a.repeat)
    bench_ladder(1_000, a.repeat)
    bench_ladder(a.ladder_rows, a.repeat)
    bench_linked(a.milp_rows, a.repeat, milp_reference=True)
    bench_linked(a.ladder_rows, a.repeat, milp_reference=False)
    bench_budget(a.budget_milp_rows, a.repeat, milp_reference=True)
    if a.rows != a.budget_milp_rows:
        bench_budget(a.rows, 1, milp_reference=False)
