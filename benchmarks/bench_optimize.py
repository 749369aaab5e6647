"""Optimizer benchmark (issue 4), ratios measured in the same run.

1. 100k item-markets with bounds, margin floor and one binding volume floor, end to end
   through ``optimize`` (decomposition), against one undecomposed cvxpy power-cone problem
   over all rows at a size it can do (``--conic-rows``, default 2000), compared per row.
2. Ladder with parity: 10k item-markets x ~25 ladder points; time and reported gap (exact
   breakpoint enumeration, no MILP), and its scaling from 1k rows.
3. A genuinely linked ladder problem (parity + ladder + volume floor): one candidate MILP,
   with the HiGHS gap and the LP-relaxation gap.

Run: ``python benchmarks/bench_optimize.py [--rows 100000] [--conic-rows 2000]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import polars as pl

from pricelab.optimize import load_constraints, optimize
from pricelab.optimize.formulations import solve_conic
from pricelab.optimize.problem import build_problem

MARKETS = {"US": 1.1, "GB": 0.85, "DE": 1.0, "FR": 1.0, "CH": 1.3}


def catalogue(n_rows: int, seed: int = 0, spread: float = 0.02,
              price_range: tuple[float, float] = (80, 2000)) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    mk = list(MARKETS)
    n_items = n_rows // len(mk)
    item = np.repeat(np.arange(n_items), len(mk))
    market = np.tile(mk, n_items)
    fx = np.tile([MARKETS[m] for m in mk], n_items)
    base = np.repeat(rng.uniform(*price_range, n_items), len(mk))
    cost = base * np.repeat(rng.uniform(0.3, 0.5, n_items), len(mk))
    return pl.DataFrame({
        "item_id": np.char.add("IT-", item.astype(str)), "market": market,
        "elasticity": rng.uniform(-4.0, -1.2, item.size),
        "base_price": base * fx * rng.uniform(1 - spread, 1 + spread, item.size),
        "base_quantity": rng.uniform(0.5, 20, item.size), "unit_cost": cost * fx, "fx_rate": fx})


def bench_volume(n_rows: int, conic_rows: int) -> None:
    cons = {"bounds": {"max_increase_pct": 15, "max_decrease_pct": 20}, "min_margin_pct": 30,
            "min_volume_pct": 175, "horizon_weeks": 4}
    df = catalogue(n_rows)
    t = time.perf_counter()
    plan = optimize(df, cons)
    t_dec = time.perf_counter() - t
    print(f"[volume] decomposition {n_rows} rows end to end: {t_dec:.2f} s, {plan.formulation}, "
          f"gap {plan.gap:.1e}, multipliers {plan.multipliers}")
    small = catalogue(conic_rows, seed=1)
    t = time.perf_counter()
    p_small = optimize(small, cons)
    t_dec_small = time.perf_counter() - t
    prob = build_problem(small, load_constraints(cons))
    t = time.perf_counter()
    ref = solve_conic(prob)
    t_conic = time.perf_counter() - t
    obj_ref = float(prob.objective_value(ref).sum())
    rel = (p_small.objective - obj_ref) / abs(obj_ref)
    per_row_conic = t_conic / conic_rows
    per_row_dec = t_dec / n_rows
    print(f"[volume] cvxpy power cone (CLARABEL, undecomposed) {conic_rows} rows: {t_conic:.2f} s;"
          f" decomposition same rows {t_dec_small:.3f} s; objective rel. diff {rel:+.2e}")
    print(f"[volume] per-row time ratio conic/decomposition: {per_row_conic / per_row_dec:.0f}x "
          f"(same-size ratio at {conic_rows} rows: {t_conic / t_dec_small:.0f}x)")


LADDER = {"bounds": {"max_increase_pct": 17, "max_decrease_pct": 17}, "min_margin_pct": 30,
          "parity": {"max_gap_pct": 5}, "ladder": {"step": 10, "ending": 9}}


def bench_ladder(n_rows: int) -> float:
    """Ladder + parity, nothing else linking: exact breakpoint enumeration (no MILP)."""
    # about 25 ladder points per row: prices 600-800, step 10 inside a +-17% range
    df = catalogue(n_rows, seed=2, price_range=(550, 700))
    t = time.perf_counter()
    plan = optimize(df, LADDER)
    dt = time.perf_counter() - t
    print(f"[ladder] {n_rows} rows, {plan.formulation}: {dt:.2f} s, status {plan.status}, "
          f"gap {100 * plan.gap:.4f}%, {plan.certificate}")
    return dt


def bench_linked_milp(n_rows: int) -> float:
    """Ladder + parity + a volume floor over all rows: one candidate MILP (HiGHS)."""
    df = catalogue(n_rows, seed=2, price_range=(550, 700))
    t = time.perf_counter()
    plan = optimize(df, {**LADDER, "min_volume_pct": 110})
    dt = time.perf_counter() - t
    print(f"[milp] {n_rows} rows, {plan.formulation}: {dt:.2f} s, status {plan.status}, "
          f"gap {100 * plan.gap:.4f}%, LP-relaxation gap {100 * plan.extra['lp_gap']:.4f}%")
    return dt


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--conic-rows", type=int, default=2_000)
    ap.add_argument("--ladder-rows", type=int, default=10_000)
    ap.add_argument("--milp-rows", type=int, default=1_000)
    a = ap.parse_args()
    bench_volume(a.rows, a.conic_rows)
    t_small = bench_ladder(1_000)
    t_big = bench_ladder(a.ladder_rows)
    print(f"[ladder] scaling {a.ladder_rows} vs 1000 rows: {t_big / t_small:.1f}x time for "
          f"{a.ladder_rows / 1000:.0f}x rows")
    bench_linked_milp(a.milp_rows)
