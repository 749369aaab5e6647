"""Dominick's orange juice through the real CLI: contract files, ``pricelab ingest``, ``estimate``.

The data (``../shared/data/dominicks_oj/oj_long.csv``, GPL >= 2) are read at run time
and never copied into the repository. The example writes contract files to a temporary
folder with :func:`oj_to_contract.contract_files` (brand as item, store as market),
then runs ``python -m pricelab ingest`` and ``python -m pricelab estimate --model ...
--json --output ...`` for ``ols`` and ``poisson`` (per brand × store) and ``panel``
with ``--by item_id --slope common`` (one elasticity per brand, pooling its stores, with
store × brand and week fixed effects, SEs clustered by store), and prints one row per
brand. Usage::

    python examples/oj_example.py [--data DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from oj_to_contract import DATA, contract_files  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RUNS = {"ols": [], "poisson": [], "panel": ["--by", "item_id", "--slope", "common"]}


def cli(*args: str) -> str:
    """Run ``python -m pricelab ARGS``; return stdout (raise with stderr on failure)."""
    p = subprocess.run(
        [sys.executable, "-m", "pricelab", *args], capture_output=True, text=True, cwd=ROOT
    )
    if p.returncode != 0:
        raise RuntimeError(f"pricelab {' '.join(args)} exited {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def run(data: Path = DATA) -> dict:
    """Convert, ingest and estimate; return per-brand results and the run summaries."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = contract_files(data, folder)
        db = str(folder / "oj.duckdb")
        cli(
            "ingest",
            "--db",
            db,
            "--sales",
            str(files["sales"]),
            "--items",
            str(files["items"]),
            "--json",
        )
        runs, tables = {}, {}
        for model, extra in RUNS.items():
            out = folder / f"{model}.parquet"
            runs[model] = json.loads(
                cli(
                    "estimate", "--db", db, "--model", model, *extra, "--json", "--output", str(out)
                )
            )
            tables[model] = pl.read_parquet(out)
    per_store = [
        tables[m]
        .group_by("item_id")
        .agg(
            pl.col("elasticity")
            .filter(pl.col("elasticity").is_not_nan())
            .median()
            .alias(f"{m}_median"),
            pl.col("elasticity").is_not_nan().sum().alias(f"{m}_stores"),
        )
        for m in ("ols", "poisson")
    ]
    panel = tables["panel"].select(
        "item_id",
        pl.col("elasticity").alias("panel"),
        pl.col("std_error").alias("panel_se"),
        pl.col("n_obs").alias("panel_n_obs"),
    )
    brands = panel.join(per_store[0], on="item_id").join(per_store[1], on="item_id").sort("item_id")
    return {"brands": brands.to_dicts(), "runs": runs}


def main(argv: list[str] | None = None) -> None:
    """Parse ``--data``/``--json``, run the example and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA, help="folder holding oj_long.csv")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    a = ap.parse_args(argv)
    if not (a.data / "oj_long.csv").exists():
        sys.exit(f"{a.data / 'oj_long.csv'} not found (see the docstring)")
    res = run(a.data)
    if a.json:
        print(json.dumps(res, indent=1))
        return
    print(f"{'brand':<26}{'panel (SE)':>16}{'ols median':>12}{'poisson median':>16}{'stores':>8}")
    for r in res["brands"]:
        print(
            f"{r['item_id']:<26}{r['panel']:>8.2f} ({r['panel_se']:.2f}){r['ols_median']:>12.2f}"
            f"{r['poisson_median']:>16.2f}{r['poisson_stores']:>8d}"
        )
    for m, d in res["runs"].items():
        print(
            f"{m}: run {d['run_id']}, {d['estimated']}/{d['groups']} groups estimated, "
            f"median {d['median_elasticity']:.2f}, flags {d['flags']}"
        )


if __name__ == "__main__":
    main()
