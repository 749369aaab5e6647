"""The ``registry`` table: which estimate run is in production, since when, and why.

One row per promotion, never updated or deleted (the history is the audit trail); the
production run is the newest row with ``stage = 'production'`` (what
:func:`pricelab.store.runs.resolve_estimates` reads). A rollback is a promotion of an older
run.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
from typing import Any

import polars as pl

from pricelab.store.db import Store

PRODUCTION = "production"

REGISTRY_DDL = """CREATE TABLE IF NOT EXISTS registry (
    run_id VARCHAR NOT NULL, stage VARCHAR NOT NULL, promoted_at TIMESTAMP NOT NULL,
    promoted_by VARCHAR, reason VARCHAR, previous_run_id VARCHAR, forced BOOLEAN,
    comparison VARCHAR)"""

HISTORY_COLUMNS = [
    "run_id",
    "stage",
    "promoted_at",
    "promoted_by",
    "reason",
    "previous_run_id",
    "forced",
    "model",
]


def ensure_registry(store: Store) -> None:
    """Create the ``registry`` table when it does not exist yet (writable store)."""
    store.execute(REGISTRY_DDL)


def production_run(store: Store) -> str | None:
    """The estimate run currently in production, or None when nothing was promoted."""
    if not store.has_table("registry"):
        return None
    rows = store.execute(
        "SELECT run_id FROM registry WHERE stage = ? ORDER BY promoted_at DESC LIMIT 1",
        [PRODUCTION],
    )
    return str(rows[0][0]) if rows else None


def production_row(store: Store) -> dict[str, Any] | None:
    """The newest production row with the input fingerprint of the promote run that made it.

    Keys: ``run_id, promoted_at, forced, reason, inputs`` (``inputs`` None when unknown).
    """
    if not store.has_table("registry"):
        return None
    rows = store.execute(
        "SELECT run_id, promoted_at, forced, reason FROM registry WHERE stage = ? "
        "ORDER BY promoted_at DESC LIMIT 1",
        [PRODUCTION],
    )
    if not rows:
        return None
    run_id, at, forced, reason = rows[0]
    made = store.execute(
        "SELECT input_fingerprint FROM runs WHERE command = 'promote' AND status = 'ok' "
        "AND json_extract_string(parameters, '$.candidate') = ? AND started_at <= ? "
        "ORDER BY started_at DESC LIMIT 1",
        [run_id, at],
    )
    return {
        "run_id": str(run_id),
        "promoted_at": at,
        "forced": bool(forced),
        "reason": reason,
        "inputs": made[0][0] if made else None,
    }


def current_user() -> str:
    """Who is promoting: ``$PRICELAB_USER``, else the login name (``$USER``/``getpass``)."""
    import os

    name = os.environ.get("PRICELAB_USER")
    if name:
        return name
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no USER/LOGNAME (containers)
        return "unknown"


def record_promotion(
    store: Store,
    run_id: str,
    *,
    reason: str,
    forced: bool,
    previous: str | None,
    comparison: dict[str, Any],
    user: str | None = None,
) -> dict[str, Any]:
    """Append a production row for ``run_id``; returns it as a dict.

    Call inside the transaction that also writes the promote run, so both land or neither.
    """
    ensure_registry(store)
    row = {
        "run_id": run_id,
        "stage": PRODUCTION,
        "promoted_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        "promoted_by": user or current_user(),
        "reason": reason,
        "previous_run_id": previous,
        "forced": forced,
        "comparison": json.dumps(comparison, sort_keys=True, default=str),
    }
    store.execute("INSERT INTO registry VALUES (?, ?, ?, ?, ?, ?, ?, ?)", list(row.values()))
    return row


def history(store: Store) -> pl.DataFrame:
    """Every promotion, newest first, with the promoted run's model (``HISTORY_COLUMNS``)."""
    if not store.has_table("registry"):
        return pl.DataFrame(
            schema={
                "run_id": pl.String,
                "stage": pl.String,
                "promoted_at": pl.Datetime("us"),
                "promoted_by": pl.String,
                "reason": pl.String,
                "previous_run_id": pl.String,
                "forced": pl.Boolean,
                "model": pl.String,
            }
        )
    return store.query(
        "SELECT g.run_id, g.stage, g.promoted_at, g.promoted_by, g.reason, g.previous_run_id, "
        "g.forced, json_extract_string(r.parameters, '$.model') AS model "
        "FROM registry g LEFT JOIN runs r USING (run_id) "
        "ORDER BY g.promoted_at DESC, g.run_id"
    )
