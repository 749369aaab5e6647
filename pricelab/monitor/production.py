"""Which estimate run and plan the monitor judges: production (the registry), never ad hoc."""

from __future__ import annotations

import json
from typing import Any

from pricelab.store.db import Store


def latest_runs(store: Store, command: str, limit: int) -> list[dict[str, Any]]:
    """The newest ``limit`` successful runs of ``command``: ``run_id, started_at, parents``."""
    rows = store.execute(
        "SELECT run_id, started_at, parents FROM runs WHERE command = ? AND status = 'ok' "
        "ORDER BY started_at DESC, run_id DESC LIMIT ?",
        [command, limit],
    )
    return [{"run_id": r[0], "started_at": r[1], "parents": json.loads(r[2] or "[]")} for r in rows]


def _run_row(store: Store, run_id: str) -> dict[str, Any]:
    r = store.execute("SELECT run_id, started_at, parents FROM runs WHERE run_id = ?", [run_id])[0]
    return {"run_id": r[0], "started_at": r[1], "parents": json.loads(r[2] or "[]")}


def production_rows(store: Store) -> list[dict[str, Any]]:
    """The registry's production rows, newest first (``run_id, previous, forced, reason``)."""
    if not store.has_table("registry"):
        return []
    rows = store.execute(
        "SELECT run_id, previous_run_id, forced, reason FROM registry "
        "WHERE stage = 'production' ORDER BY promoted_at DESC"
    )
    return [{"run_id": r[0], "previous": r[1], "forced": bool(r[2]), "reason": r[3]} for r in rows]


def serving_estimate(store: Store) -> list[dict[str, Any]]:
    """The production estimate run if one is promoted, else the latest (as a 0/1 list)."""
    prod = production_rows(store)
    if prod:
        return [_run_row(store, prod[0]["run_id"])]
    return latest_runs(store, "estimate", 1)


def drift_pair(store: Store) -> tuple[str, str] | str:
    """(previous, current) estimate runs to compare, or why there is nothing to judge.

    With a registry: the production run and the production run it replaced (a production run
    set by hand with ``--force`` is a human decision and is not judged). Without one: the
    two newest estimate runs.
    """
    prod = production_rows(store)
    if prod:
        cur = prod[0]
        if cur["forced"]:
            return (
                f"production run {cur['run_id']} was set by hand (--force: "
                f"{cur['reason']}); drift is judged at the next gated promotion"
            )
        if not cur["previous"]:
            return f"production run {cur['run_id']} is the first one promoted"
        return str(cur["previous"]), str(cur["run_id"])
    runs = latest_runs(store, "estimate", 2)
    if len(runs) < 2:
        return f"{len(runs)} estimate run(s); need two"
    return str(runs[1]["run_id"]), str(runs[0]["run_id"])


def production_plan(store: Store, production: str) -> dict[str, Any] | None:
    """The newest successful optimize run built on ``production`` (None when there is none)."""
    rows = store.execute(
        "SELECT run_id, started_at, parents FROM runs WHERE command = 'optimize' "
        "AND status = 'ok' ORDER BY started_at DESC, run_id DESC"
    )
    for r in rows:
        parents = json.loads(r[2] or "[]")
        if production in parents:
            return {"run_id": r[0], "started_at": r[1], "parents": parents}
    return None
