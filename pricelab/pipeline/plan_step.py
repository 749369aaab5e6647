"""The pipeline's optimize step: a plan on the production estimates, exported as configured.

A plan already made on the production run with the same constraints and inputs is reused
(and exported again); rows kept at their current price because their constraints conflict
fail the step (exit 1, plan written) unless ``optimize.allow_conflicts`` is set.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pricelab.errors import CheckFailed
from pricelab.pipeline import state
from pricelab.pipeline.result import FAILED, OK, SKIPPED, Step
from pricelab.registry import production_run

if TYPE_CHECKING:
    from pricelab.pipeline.run import _Pipeline


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types (dates and paths as strings), for run parameters."""
    return json.loads(json.dumps(value, default=str))


def optimize_step(p: _Pipeline) -> Step:
    """The optimize step: a plan on the production estimates, skipped when one already fits."""
    from pricelab import yamlsafe
    from pricelab.api.optimize import optimize

    o = p.cfg["optimize"]
    if not o["enabled"]:
        return Step("optimize", SKIPPED, "disabled in config")
    cons = o["constraints"]
    content = None
    if cons is not None:
        from pricelab.io import read_text
        from pricelab.optimize import load_constraints

        load_constraints(cons)  # syntax and schema errors: ConfigError naming file and line
        content = jsonable(yamlsafe.safe_load(read_text(cons, what="constraints file"), cons))
    with p.store(must_exist=True) as store:
        production = production_run(store)
        if production is None:
            raise CheckFailed(
                "nothing in production: the gate refused the first estimate; "
                "fix the model or 'pricelab promote RUN_ID --force --reason'"
            )
        plan = state.matching_plan(
            store, production, content, o["baseline_weeks"], state.current_digest(store)
        )
    if plan is not None:
        from pricelab.store.runs import get_run

        with p.store(read_only=True) as store:
            kept = get_run(store, plan)["summary"].get("conflicts") or []
            table = store.read_result("plans", plan)
        skipped = Step(
            "optimize",
            SKIPPED,
            f"plan {plan} already uses production run {production} on these inputs",
            plan,
        )
        return _conflicts(p, _export(p, skipped, table), kept)
    run = optimize(
        p.db,
        constraints=cons,
        estimates=production,
        baseline_weeks=o["baseline_weeks"],
        conflicts="keep",
        mlflow=p.track,
    )
    made = run.plan
    kept = made.extra.get("conflicts") or []
    step = Step(
        "optimize",
        OK,
        f"{made.table.height} prices on production run {production}: "
        f"{made.status}, profit {made.uplift_pct:+.1f}%"
        + (f", {len(kept)} row(s) in conflict kept at current price" if kept else ""),
        run.run_id,
        True,
        details={
            "estimates_run": production,
            "status": made.status,
            "uplift_pct": made.uplift_pct,
            "rows": made.table.height,
            "conflicts": kept,
        },
    )
    return _conflicts(p, _export(p, step, made.table), kept)


def _export(p: _Pipeline, step: Step, table: Any) -> Step:
    from pricelab.pipeline.exports import export_outputs

    return export_outputs(p.db, p.cfg, step, table)  # type: ignore[no-any-return]


def _conflicts(p: _Pipeline, step: Step, kept: list[dict[str, Any]]) -> Step:
    """The optimize step fails (exit 1, plan written) on conflicts unless allowed."""
    if not kept or p.cfg["optimize"]["allow_conflicts"]:
        return step
    first = kept[0]
    step.status, step.exit_code = FAILED, 1
    step.message = (
        f"plan {step.run_id} written with {len(kept)} row(s) in conflict kept at their "
        f"current price (e.g. {first['item_id']}/{first['market']}: {first['reason']}); "
        "relax the constraints or set optimize.allow_conflicts: true"
    )
    return step
