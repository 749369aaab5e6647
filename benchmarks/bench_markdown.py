"""Markdown benchmark: items × 3 markets × 12 weeks × 8 ladder levels, shared stock, one
category sell-through target; the Lagrangian + DP plan with its proven gap, and an exact
MILP (HiGHS, one model over every pool with the target) as the reference at a size it can do.

    python benchmarks/bench_markdown.py --items 100000 --milp-items 20
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _bench import emit, log  # noqa: E402

from pricelab.markdown import (  # noqa: E402
    MarkdownConfig,
    MarkdownProblem,
    constant_elasticity_demand,
    solve_markdown,  # noqa: E402
)

LADDER = (0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0)


def problem(
    n_items: int, seed: int, *, one_category: bool = False, milp_pools: int = 0
) -> MarkdownProblem:
    """A season: demand fading with age, stock 0.5-1.6x full-price demand, 5 categories."""
    rng = np.random.default_rng(seed)
    n = 3 * n_items
    pool = np.repeat(np.arange(n_items), 3)
    weeks = 12
    base = rng.lognormal(0.5, 0.8, (n, 1)) * np.exp(
        -rng.uniform(0.02, 0.12, (n, 1)) * np.arange(weeks)
    )
    e = rng.uniform(-3.5, -1.2, n)
    item_price = rng.lognormal(4.5, 0.5, n_items)
    full = np.repeat(item_price, 3) * rng.uniform(0.95, 1.15, n)  # market price levels
    fx = np.tile([1.0, 0.85, 160.0], n_items)
    tot = np.bincount(pool, weights=base.sum(1), minlength=n_items)
    cat = np.zeros(n_items, dtype=np.int64) if one_category else rng.integers(0, 5, n_items)
    return MarkdownProblem(
        item_id=np.repeat(np.array([f"I{i}" for i in range(n_items)]), 3),
        market=np.tile(np.array(["US", "GB", "JP"]), n_items),
        category=np.array(list("abcde"), dtype=object)[cat][pool],
        full_price=full * fx,
        fx_rate=fx,
        unit_cost=0.45 * full * fx,
        demand=constant_elasticity_demand(base, e, np.array(LADDER)),
        pool=pool,
        pool_stock=np.round(tot * rng.uniform(0.5, 1.6, n_items)),
        pool_salvage=0.3 * 0.45 * item_price,
        pool_item=np.array([f"I{i}" for i in range(n_items)]),
        pool_market=np.array([""] * n_items),
        config=MarkdownConfig(
            ladder=LADDER,
            min_weeks_between_changes=2,
            category_rules={"a": {"sell_through_min_pct": 75.0}},
            milp_max_pools=milp_pools,
        ),
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--milp-items", type=int, default=20)
    args = ap.parse_args()
    prob = problem(args.items, 1)
    log(f"markdown: {args.items} items x 3 markets x 12 weeks x 8 levels")
    t, c = time.perf_counter(), time.process_time()
    sol = solve_markdown(prob)
    secs, cpu = time.perf_counter() - t, time.process_time() - c
    emit(
        "markdown",
        "Lagrangian + DP plan (shared stock, one category target), proven gap",
        args.items,
        secs,
        unit="items",
        gap=sol.gap,
        target_met=bool((sol.target_sold >= sol.target_units - 1e-6).all()),
        cpu_seconds=round(cpu, 2),  # this process's CPU time: comparable on a loaded machine
    )
    from pricelab.markdown.milp import solve_rows_milp

    small = problem(args.milp_items, 2, one_category=True)
    t = time.perf_counter()
    ours = solve_markdown(small)
    ours_s = time.perf_counter() - t
    w = small.base_price() - small.pool_salvage[small.pool][:, None]
    t = time.perf_counter()
    _, _, obj, bound, optimal = solve_rows_milp(
        small.demand,
        w,
        small.n_levels(),
        small.pool,
        small.pool_stock,
        monotone=True,
        min_weeks=2,
        group_floor=float(small.targets()[2][0]),
        node_limit=100_000,
    )
    milp_s = time.perf_counter() - t
    salv = float((small.pool_salvage * small.pool_stock).sum())
    emit(
        "markdown",
        "Lagrangian + DP plan vs one exact MILP (HiGHS) over every pool",
        args.milp_items,
        ours_s,
        unit="items",
        reference="scipy milp (HiGHS), whole problem",
        reference_seconds=milp_s,
        gap=ours.gap,
        value=ours.value,
        milp_value=obj + salv,
        milp_bound=bound + salv,
        milp_optimal=optimal,
    )


if __name__ == "__main__":
    main()
