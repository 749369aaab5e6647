"""Split-half (odd/even week) calibration of every model's standard errors on real data.

Usage: ``PYTHONPATH=. python benchmarks/calibration.py [--model ols ...] [--dataset oj ...]
[--splits N]`` (data from ../shared/data). Prints RMS z and the share of groups with
|z| > 1.96, overall and in the top volume quartile, for Dominick's orange juice
(brand × store), Hass avocados (region) and Dominick's tuna (brand); see
:mod:`pricelab.elasticity.calibration`. With ``--splits N`` the same figures pooled over
the odd/even split and N random splits of the same kind (root mean RMS², mean shares) and
the share of splits with RMS z above 1.2. The loaders live in :mod:`tests._realdata_refs`
(the data are read from ../shared/data at run time, never copied).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pricelab.elasticity.calibration import pooled, split_draws, split_half, summarize  # noqa: E402
from tests._realdata_refs import calibration_sets  # noqa: E402

MODELS = ("ols", "poisson", "hierarchical")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append")
    ap.add_argument("--dataset", action="append")
    ap.add_argument("--splits", type=int, default=0, help="random splits besides odd/even")
    a = ap.parse_args(argv)
    if a.splits:
        _many(a)
        return
    sets = calibration_sets()
    print("| data | model | groups | RMS z | share >1.96 | top-q RMS z | top-q share | s |")
    print("|---|---|---|---|---|---|---|---|")
    for name in a.dataset or list(sets):
        sales, items = sets[name]
        for model in a.model or MODELS:
            t0 = time.perf_counter()
            s = summarize(split_half(sales, model=model, items=items))
            print(
                f"| {name} | {model} | {s['groups']} | {s['rms_z']:.2f} | "
                f"{100 * s['share_out']:.0f}% | {s['top_rms_z']:.2f} | "
                f"{100 * s['top_share_out']:.0f}% | {time.perf_counter() - t0:.1f} |",
                flush=True,
            )


def _many(a: argparse.Namespace) -> None:
    sets = calibration_sets()
    print("| data | model | splits | RMS z | share >1.96 | top-q RMS z | top-q share | RMS>1.2 |")
    print("|---|---|---|---|---|---|---|---|")
    for name in a.dataset or list(sets):
        sales, items = sets[name]
        for model in a.model or MODELS:
            seeds = [None, *range(a.splits)]
            s = pooled(split_draws(sales, seeds, model=model, items=items))
            print(
                f"| {name} | {model} | {s['splits']} | {s['rms_z']:.2f} | "
                f"{100 * s['share_out']:.0f}% | {s['top_rms_z']:.2f} | "
                f"{100 * s['top_share_out']:.0f}% | {100 * s['splits_over_1_2']:.0f}% |",
                flush=True,
            )


if __name__ == "__main__":
    main()
