"""``demo``: the whole pipeline on the bundled sample marketplace."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pricelab.api.data import ingest, sample_files, validate
from pricelab.api.estimate import estimate
from pricelab.api.ops import monitor, report
from pricelab.api.optimize import optimize
from pricelab.api.whatif import simulate
from pricelab.store import Store

PathLike = str | os.PathLike[str]


def demo(db: PathLike | None = None) -> dict[str, Any]:
    """Build a database from the bundled sample and run the whole pipeline on it.

    Parameters
    ----------
    db:
        Where to build the database; a new temporary folder when None.

    Returns
    -------
    dict
        ``db`` (the path) and ``steps``: a list of ``{"step", "summary"}`` records.
    """
    import tempfile

    path = (
        Path(db)
        if db is not None
        else Path(tempfile.mkdtemp(prefix="pricelab-demo-")) / "demo.duckdb"
    )
    steps: list[dict[str, Any]] = []
    files = sample_files()
    result = ingest(path, replace=True, **files)
    steps.append({"step": "ingest", "summary": result.to_dict()})
    report = validate(path)
    steps.append({"step": "validate", "summary": report.to_dict()})
    for step, fn in _DEMO_STEPS:
        steps.append({"step": step, "summary": fn(path)})
    return {"db": str(path), "steps": steps}


# Later pipeline steps add themselves here: (name, function(db_path) -> JSON-able summary).
_DEMO_STEPS: list[tuple[str, Any]] = []


def _demo_estimate(db: PathLike) -> dict[str, Any]:
    run = estimate(db)
    d = run.to_dict()
    d["lines"] = [
        f"hierarchical elasticities for {d['estimated']} item x market groups (run {run.run_id})",
        f"median elasticity {d['median_elasticity']:.2f}; flags: "
        + (", ".join(f"{k} {v}" for k, v in d["flags"].items()) or "none"),
        "see: pricelab estimate --model poisson | ols | panel | iv --instrument hausman",
    ]
    return d


_DEMO_STEPS.append(("estimate", _demo_estimate))


def _demo_optimize(db: PathLike) -> dict[str, Any]:
    from pricelab._resources import sample_dir

    cons = sample_dir() / "constraints.yaml"
    run = optimize(db, constraints=cons)
    plan = run.plan
    return {
        "run_id": run.run_id,
        "status": plan.status,
        "formulation": plan.formulation,
        "uplift_pct": plan.uplift_pct,
        "rows": plan.table.height,
        "lines": [
            f"profit-maximizing prices for {plan.table.height} item x market rows under "
            f"bounds, margin floor, parity and a volume floor (run {run.run_id})",
            f"{plan.formulation}: {plan.status}, profit {plan.uplift_pct:+.1f}% vs current prices",
            f"see: pricelab optimize --db {db} --constraints {cons}",
        ],
    }


_DEMO_STEPS.append(("optimize", _demo_optimize))


def _demo_simulate(db: PathLike) -> dict[str, Any]:
    from pricelab._resources import sample_dir

    path = sample_dir() / "scenario.yaml"
    result = simulate(db, path, draws=500, seed=0)
    lines = [f"what-if scenarios from {path.name} against the last 8 weeks (run {result.run_id})"]
    for r in result.totals().iter_rows(named=True):
        lines.append(
            f"  {r['scenario']}: profit {r['profit_delta_pct']:+.1f}% "
            f"(90% interval {r['profit_low']:,.0f} to {r['profit_high']:,.0f})"
        )
    lines.append(f"see: pricelab simulate --db {db} --scenario {path}")
    return {"run_id": result.run_id, "lines": lines}


_DEMO_STEPS.append(("simulate", _demo_simulate))


def _demo_report(db: PathLike) -> dict[str, Any]:
    out = Path(db).parent / "report.html"
    report(db, output=out)
    return {
        "output": str(out),
        "lines": [
            f"self-contained HTML report with plots: {out}",
            f"see: pricelab report --db {db} --output report.html",
        ],
    }


def _demo_monitor(db: PathLike) -> dict[str, Any]:
    import datetime as _dt

    with Store.open(db, must_exist=True, read_only=True) as store:
        last = store.execute("SELECT max(date) FROM sales")[0][0]
    as_of = last + _dt.timedelta(days=7)
    result = monitor(db, as_of=as_of)
    checks = ", ".join(f"{c.name} {c.status}" for c in result.checks)
    return {
        "status": result.status,
        "lines": [
            f"monitoring as of {as_of} (the week after the last sales week): "
            f"{result.status} ({checks})",
            f"see: pricelab monitor --db {db} --as-of {as_of}  (exit 1 on an alert)",
        ],
    }


_DEMO_STEPS.append(("report", _demo_report))
_DEMO_STEPS.append(("monitor", _demo_monitor))
