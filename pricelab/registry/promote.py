"""Promoting an estimate run to production through the gate, recorded as runs and a registry row."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pricelab.errors import NotFoundError, UsageError
from pricelab.registry.gate import (
    KEYS,
    GateComparison,
    GateConfig,
    evaluate,
    flagged_share,
    gate_origins,
    refit_spec,
    score_specs,
)
from pricelab.registry.table import production_run, record_promotion
from pricelab.store.db import Store
from pricelab.store.runs import get_run, latest_run, record_run

PROMOTED, REFUSED, ALREADY = "promoted", "refused", "already-production"


def resolve_candidate(store: Store, run_id: str) -> dict[str, Any]:
    """The estimate run ``run_id`` (``latest``: the newest estimate run) as a run record.

    Raises
    ------
    NotFoundError
        No such run (or no estimate run for ``latest``).
    UsageError
        The run is not a successful estimate run.
    """
    if run_id == "latest":
        found = latest_run(store, "estimate")
        if found is None:
            raise NotFoundError("no estimate run to promote; run 'pricelab estimate' first")
        run_id = found
    rec = get_run(store, run_id)
    if rec["command"] != "estimate":
        raise UsageError(
            f"run {run_id!r} is a {rec['command']} run; only estimate runs can be promoted"
        )
    if rec["status"] != "ok":
        raise UsageError(
            f"estimate run {run_id!r} has status {rec['status']!r}; only "
            "successful runs can be promoted"
        )
    return rec


def compare_runs(
    store: Store, candidate: str, production: str | None, config: GateConfig
) -> GateComparison:
    """Backtest ``candidate`` against ``production`` (None: only the naive forecast).

    Refits both runs with their stored parameters on the weeks before each origin; see
    :mod:`pricelab.registry.gate`.
    """
    from pricelab.store.loaders import load_items, load_sales

    sales = load_sales(store)
    items = load_items(store)
    roles = {"candidate": candidate, **({"production": production} if production else {})}
    specs, models, flagged, prints = {}, {}, {}, {}
    grain: list[str] = list(KEYS)
    for role, run_id in roles.items():
        rec = get_run(store, run_id)
        params = rec["parameters"]
        prints[role] = rec.get("input_fingerprint")
        specs[role] = refit_spec(params)
        models[role] = str(params["model"])
        est = store.read_result("elasticities", run_id)
        flagged[role] = flagged_share(est, config.flags)
        if role == "candidate":
            grain = list((params.get("fit") or {}).get("by") or [])
    last = sales["date"].max()
    assert isinstance(last, dt.date)  # load_sales: a non-empty Date column
    origins = gate_origins(last, config.horizon_weeks, config.cutoffs)
    scores = score_specs(sales, items, specs, origins, config.horizon_weeks, config.naive_weeks)
    comp = GateComparison(
        candidate,
        production,
        config,
        [o.isoformat() for o in origins],
        scores,
        flagged,
        models,
        grain,
        same_settings=production is not None and specs["candidate"] == specs["production"],
        same_inputs=production is not None and prints["candidate"] == prints["production"],
    )
    return evaluate(comp)


def rollback_pin(store: Store, candidate: str) -> dict[str, Any] | None:
    """The ``rollback`` check when production was set by hand, else None.

    A production run promoted with ``--force`` (a rollback, a hotfix) stays until a candidate
    estimated after that decision on inputs that changed since then wins the gate: the
    candidate it replaced, or any other estimate on the same data, is refused without a
    backtest.
    """
    from pricelab.registry.table import production_row

    row = production_row(store)
    if row is None or not row["forced"]:
        return None
    rec = get_run(store, candidate)
    pinned_inputs = row.get("inputs")
    newer = rec["started_at"] > row["promoted_at"]
    changed = pinned_inputs is None or rec.get("input_fingerprint") != pinned_inputs
    passed = bool(newer and changed)
    why = (
        "estimated after the decision on new inputs"
        if passed
        else ("estimated before that decision" if not newer else "estimated on the same inputs")
    )
    return {
        "check": "rollback",
        "candidate": str(rec["started_at"]),
        "reference": str(row["promoted_at"]),
        "limit": None,
        "passed": passed,
        "rule": f"production run {row['run_id']} was set by hand ({row['reason']}): a candidate "
        f"must be estimated after that on changed inputs; run {candidate} was {why}",
    }


@dataclass
class Promotion:
    """Outcome of ``promote``: status, the gate comparison and the runs recorded."""

    candidate: str
    previous: str | None
    status: str
    forced: bool
    reason: str | None
    comparison: GateComparison | None
    run_id: str | None = None
    backtest_run: str | None = None
    promoted_by: str | None = None
    promoted_at: dt.datetime | None = None
    error: str | None = None
    pinned: dict[str, Any] | None = None

    @property
    def promoted(self) -> bool:
        """True when this call made the candidate the production run."""
        return self.status == PROMOTED

    @property
    def ok(self) -> bool:
        """False when the gate refused the candidate."""
        return self.status != REFUSED

    def failed_checks(self) -> list[dict[str, Any]]:
        """The gate checks that did not pass."""
        checks = [self.pinned] if self.pinned else []
        checks += self.comparison.checks if self.comparison else []
        return [c for c in checks if not c["passed"]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary for schedulers."""
        return {
            "candidate": self.candidate,
            "status": self.status,
            "promoted": self.promoted,
            "forced": self.forced,
            "reason": self.reason,
            "previous_run_id": self.previous,
            "promote_run": self.run_id,
            "backtest_run": self.backtest_run,
            "promoted_by": self.promoted_by,
            "promoted_at": str(self.promoted_at) if self.promoted_at else None,
            "comparison": self.comparison.to_dict() if self.comparison else None,
            "comparison_error": self.error,
            "rollback": self.pinned,
        }


def _auto_reason(comp: GateComparison) -> str:
    parts = []
    for c in comp.checks:
        if c["check"] == "wape" and c["limit"] is None:
            parts.append(
                f"refresh of production's settings on newer inputs (WAPE {c['candidate']:.3f})"
            )
        elif c["check"] == "wape":
            ref = "production" if comp.production else "naive"
            parts.append(f"WAPE {c['candidate']:.3f} vs {ref} {c['reference']:.3f}")
        elif c["check"] == "flags":
            parts.append(f"flagged {c['candidate']:.1%} vs {c['reference']:.1%}")
    return "passed the gate: " + "; ".join(parts)


def refusal_reason(checks: list[dict[str, Any]]) -> str:
    """One line saying why the gate refused: each failed check and its rule."""
    parts = []
    for c in checks:
        if c["check"] == "wape":
            parts.append(
                f"WAPE {c['candidate']:.4f} vs production {c['reference']:.4f} ({c['rule']})"
            )
        elif c["check"] == "flags":
            parts.append(f"flagged {c['candidate']:.1%} vs {c['reference']:.1%} ({c['rule']})")
        else:
            parts.append(f"{c['check']}: {c['rule']}")
    return "refused: " + "; ".join(parts)


def run_gate(store: Store, candidate: str, config: GateConfig) -> tuple[GateComparison, str]:
    """Compare ``candidate`` with the production run and record it as a ``gate-backtest`` run.

    The pooled and per-origin scores go to result table ``gate_scores``. Returns the
    comparison and the run id.
    """
    rec = resolve_candidate(store, candidate)
    production = production_run(store)
    comp = compare_runs(store, rec["run_id"], production, config)
    run = record_run(
        store,
        "gate-backtest",
        {
            "candidate": rec["run_id"],
            "production": production,
            "config": config.to_dict(),
            "origins": comp.origins,
        },
        parents=[rec["run_id"], *([production] if production else [])],
    )
    with store.transaction():
        store.write_result("gate_scores", comp.scores, run.run_id)
        run.finish(comp.to_dict())
    return comp, run.run_id


def promote(
    store: Store,
    candidate: str,
    *,
    config: GateConfig | None = None,
    force: bool = False,
    reason: str | None = None,
    user: str | None = None,
    comparison: tuple[GateComparison, str] | None = None,
) -> Promotion:
    """Promote ``candidate`` to production when it passes the gate (or ``force``).

    Records a ``gate-backtest`` run (unless ``comparison`` — the result of :func:`run_gate`
    — is given), a ``promote`` run (status ``ok`` when promoted, ``refused`` otherwise) and,
    when promoted, a registry row with who, when, why, the previous production run and the
    comparison.

    Raises
    ------
    UsageError
        ``force`` without ``reason``; a forced candidate not per item × market; the gate
        backtest cannot run (too little history) and ``force`` is not set.
    NotFoundError
        The run does not exist.
    """
    config = config or GateConfig()
    if force and not (reason and reason.strip()):
        raise UsageError(
            "--force needs --reason TEXT: the registry records why the gate was bypassed"
        )
    rec = resolve_candidate(store, candidate)
    cand = rec["run_id"]
    previous = production_run(store)
    if previous == cand:
        return Promotion(cand, previous, ALREADY, False, None, None)
    comp: GateComparison | None = None
    backtest_run: str | None = None
    error = None
    pinned = None if force else rollback_pin(store, cand)
    if pinned is None or pinned["passed"]:
        try:
            comp, backtest_run = (
                comparison if comparison is not None else run_gate(store, cand, config)
            )
        except UsageError as exc:
            if not force:
                raise
            error = str(exc)
    if (
        force
        and comp is not None
        and not next(c for c in comp.checks if c["check"] == "grain")["passed"]
    ):
        raise UsageError(
            f"cannot promote run {cand}: it is estimated per "
            f"{','.join(comp.grain) or 'nothing'}, not per item_id x market, so "
            "optimize and simulate could not use it (even with --force)"
        )
    passed = comp is not None and comp.passed and (pinned is None or pinned["passed"])
    status = PROMOTED if (passed or force) else REFUSED
    out = Promotion(cand, previous, status, force, None, comp, None, backtest_run, error=error)
    out.pinned = pinned
    if reason and reason.strip():
        why: str | None = reason.strip()
    elif status == PROMOTED and comp is not None:
        why = _auto_reason(comp)
    else:
        why = refusal_reason(out.failed_checks()) if status == REFUSED else None
    out.reason = why
    summary: dict[str, Any] = {
        "status": status,
        "forced": force,
        "reason": why,
        "previous_run_id": previous,
        "comparison": comp.to_dict() if comp else {"error": error},
        "rollback": pinned,
    }
    parents = [p for p in (backtest_run, cand) if p]
    run = record_run(
        store,
        "promote",
        {
            "candidate": cand,
            "production": previous,
            "force": force,
            "reason": reason,
            "config": config.to_dict(),
        },
        parents=parents,
    )
    out.run_id = run.run_id
    with store.transaction():
        if status == PROMOTED:
            row = record_promotion(
                store,
                cand,
                reason=why or "",
                forced=force,
                previous=previous,
                comparison=summary["comparison"],
                user=user,
            )
            out.promoted_by, out.promoted_at = row["promoted_by"], row["promoted_at"]
            summary.update(promoted_by=out.promoted_by, promoted_at=str(out.promoted_at))
        run.finish(summary, status="ok" if status == PROMOTED else REFUSED)
    return out
