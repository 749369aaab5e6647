"""What the database already holds for the pipeline: the lookups that make it idempotent."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from pricelab.store.db import Store
from pricelab.store.runs import fingerprint_digest, input_fingerprint

ESTIMATE_KEYS = ("model", "by", "instrument", "slope", "before")


def _runs(store: Store, command: str, status: str | None = "ok") -> list[dict[str, Any]]:
    sql = (
        "SELECT run_id, status, parameters, input_fingerprint, parents, started_at "
        "FROM runs WHERE command = ?"
    )
    params: list[Any] = [command]
    if status is not None:
        sql += " AND status = ?"
        params.append(status)
    rows = store.execute(sql + " ORDER BY started_at DESC, run_id DESC", params)
    return [
        {
            "run_id": r[0],
            "status": r[1],
            "parameters": json.loads(r[2] or "{}"),
            "fingerprint": r[3],
            "parents": json.loads(r[4] or "[]"),
            "started_at": r[5],
        }
        for r in rows
    ]


def current_digest(store: Store) -> str:
    """Digest of the input tables' fingerprint now (what runs record as ``input_fingerprint``)."""
    return fingerprint_digest(input_fingerprint(store))


def ingested_files(store: Store) -> dict[str, dict[str, str]]:
    """Per table kind, the newest ingest run that loaded it: ``{"sha256", "run_id", "path"}``."""
    out: dict[str, dict[str, str]] = {}
    for run in _runs(store, "ingest"):
        for kind, f in (run["parameters"].get("files") or {}).items():
            if kind not in out and isinstance(f, dict) and f.get("sha256"):
                out[kind] = {
                    "sha256": f["sha256"],
                    "run_id": run["run_id"],
                    "path": f.get("path", ""),
                }
    return out


def estimate_spec(cfg: dict[str, Any]) -> dict[str, Any]:
    """The ``api.estimate`` keyword arguments of the config's estimate section."""
    e = cfg["estimate"]
    spec = {k: e[k] for k in ESTIMATE_KEYS}
    if e.get("engine", "local") != "local":  # same numbers either way: not part of the match
        spec["engine"] = e["engine"]
    return spec


def matching_estimate(store: Store, spec: dict[str, Any], digest: str) -> str | None:
    """The newest estimate run with these parameters on inputs with this digest."""
    for run in _runs(store, "estimate"):
        p = run["parameters"]
        if run["fingerprint"] == digest and all(p.get(k) == spec[k] for k in ESTIMATE_KEYS):
            return str(run["run_id"])
    return None


def refused_run(
    store: Store, candidate: str, production: str | None, config: dict[str, Any]
) -> str | None:
    """A ``promote`` run in which the gate refused ``candidate`` against ``production``."""
    for run in _runs(store, "promote", status="refused"):
        p = run["parameters"]
        if (p.get("candidate"), p.get("production"), p.get("config")) == (
            candidate,
            production,
            config,
        ):
            return str(run["run_id"])
    return None


def matching_plan(
    store: Store, estimates: str, constraints: Any, baseline_weeks: int, digest: str
) -> str | None:
    """The newest optimize run built on ``estimates`` with these settings and inputs."""
    for run in _runs(store, "optimize"):
        p = run["parameters"]
        if (
            run["fingerprint"] == digest
            and p.get("estimates") == estimates
            and p.get("constraints_content") == constraints
            and p.get("baseline_weeks") == baseline_weeks
            and not p.get("demand")
        ):
            return str(run["run_id"])
    return None


def monitor_as_of(store: Store, as_of: str) -> dt.date:
    """``today`` (UTC), ``data`` (the Monday after the last sales week) or an ISO date."""
    if as_of == "today":
        return dt.datetime.now(dt.UTC).date()
    if as_of == "data":
        last = store.execute("SELECT max(date) FROM sales")[0][0]
        return (
            (last + dt.timedelta(weeks=1)) if last is not None else dt.datetime.now(dt.UTC).date()
        )
    return dt.date.fromisoformat(as_of)


def drift_probe(store: Store, production: str, max_share: float) -> dict[str, Any]:
    """Refit the production run's spec on the loaded data and measure elasticity drift.

    The share of items whose interval no longer overlaps the production estimate's (the
    monitor's drift measure, :func:`pricelab.store.lineage.interval_shifts`) against the
    monitor's ``drift.max_share``. Nothing is written.
    """
    from pricelab.elasticity import estimate
    from pricelab.registry.gate import refit_spec
    from pricelab.store.lineage import interval_shifts
    from pricelab.store.loaders import load_items, load_sales
    from pricelab.store.runs import get_run

    kwargs, before = refit_spec(get_run(store, production)["parameters"])
    sales = load_sales(store, before=before)
    probe = estimate(sales, items=load_items(store), **kwargs)
    moved, n = interval_shifts(store.read_result("elasticities", production), probe.elasticities)
    share = moved.height / n if n else 0.0
    return {
        "production": production,
        "compared": n,
        "moved": moved.height,
        "share": share,
        "max_share": max_share,
        "alert": bool(n and share > max_share),
    }
