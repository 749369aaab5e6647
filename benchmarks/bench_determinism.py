"""Solver determinism under load: a loaded machine returns the quiet machine's plan.

    python benchmarks/bench_determinism.py [--burners 4] [--burn-seconds 600]

Solves two cases first on the machine as it is, then with ``--burners`` busy-loop
processes beside them (each stops itself after ``--burn-seconds`` and is ended when the
solves end), and compares the plans:

- markdown, two tight market targets on shared stock (6 items x 3 markets x 6 weeks, the
  s12 case of ``tests/test_markdown_targets_exact.py``): its whole-problem MILP takes
  ~8 CPU s, which the old 60 s wall-clock default cut short under load;
- optimize with minor-unit rounding, 10 items in JPY/GBP/KWD/CHF with parity 3% and limits
  (``tests/test_optimize_minor_unit.py``'s ten-item case): the rounding MILPs.

Prints, per case and round: a hash of the plan (markdown's ladder paths, optimize's
prices), value, bound or gap, CPU and wall seconds, the load average. Exit 1 when a plan
differs between the rounds.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

BURN = "import sys, time\nend = time.time() + float(sys.argv[1])\nwhile time.time() < end: pass\n"


def markdown_case() -> tuple[str, str]:
    import numpy as np

    from pricelab.markdown import solve_markdown
    from tests.test_markdown_solver import make
    from tests.test_markdown_targets_exact import with_targets

    prob = make(
        np.random.default_rng(12), 6, 3, 6, [0, 10, 20, 30, 40], min_weeks_between_changes=2
    )
    prob.pool_stock = np.round(prob.pool_stock * 1.3)
    sol = solve_markdown(with_targets(prob, {"M0": 86.4, "M1": 80.0}))
    h = hashlib.sha256(sol.path.tobytes()).hexdigest()[:12]
    return h, (
        f"value {sol.value!r} bound {sol.upper_bound!r} gap {sol.gap:.3e} "
        f"clock-stopped {sol.milp_time_limit}"
    )


def rounding_case() -> tuple[str, str]:
    from pricelab.optimize import optimize
    from tests.test_optimize_minor_unit import ten_item_parity_case

    df, cons = ten_item_parity_case()
    plan = optimize(df, cons)
    p = plan.table["recommended_price"].to_numpy()
    h = hashlib.sha256(p.tobytes()).hexdigest()[:12]
    return h, (
        f"objective {plan.objective!r} gap {plan.gap:.3e} "
        f"unrounded {plan.extra.get('unrounded_rows', 0)}"
    )


CASES: dict[str, Callable[[], tuple[str, str]]] = {
    "markdown s12": markdown_case,
    "minor-unit 10 items": rounding_case,
}


def one_round(label: str) -> dict[str, str]:
    out = {}
    for name, case in CASES.items():
        c, w = time.process_time(), time.perf_counter()
        h, what = case()
        cpu, wall = time.process_time() - c, time.perf_counter() - w
        load = os.getloadavg()[0]
        print(
            f"| {label} | {name} | {h} | {what} | {cpu:.1f} | {wall:.1f} | {load:.1f} |",
            flush=True,
        )
        out[name] = f"{h} {what}"
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--burners", type=int, default=4)
    ap.add_argument("--burn-seconds", type=float, default=600.0)
    args = ap.parse_args()
    print("| round | case | plan hash | result | CPU s | wall s | load |")
    print("|---|---|---|---|---:|---:|---:|")
    quiet = one_round("as is")
    burners = [
        subprocess.Popen([sys.executable, "-c", BURN, str(args.burn_seconds)])
        for _ in range(args.burners)
    ]
    try:
        time.sleep(2)
        loaded = one_round(f"+{args.burners} busy loops")
    finally:
        for b in burners:
            b.kill()
            b.wait()
    same = quiet == loaded
    print(f"\nplans identical under load: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
