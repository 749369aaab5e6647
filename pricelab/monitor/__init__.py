"""Monitoring: data freshness, volume anomalies, elasticity drift, fit quality, plan staleness.

``run_checks(store, as_of=..., config=...)`` returns a :class:`MonitorResult`; thresholds come
from :data:`DEFAULTS` overridden by a YAML ``monitor:`` section (see :mod:`.config`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pricelab.monitor.checks import ALERT, CHECKS, OK, SKIPPED, CheckResult, robust_z
from pricelab.monitor.config import DEFAULTS, load_config, merge_config
from pricelab.store.db import Store
from pricelab.store.runs import record_run

__all__ = [
    "ALERT",
    "DEFAULTS",
    "OK",
    "SKIPPED",
    "CheckResult",
    "MonitorResult",
    "load_config",
    "merge_config",
    "robust_z",
    "run_checks",
    "record_monitor_run",
]


@dataclass
class MonitorResult:
    """Every check's outcome on one as-of date."""

    as_of: dt.date
    checks: list[CheckResult]
    run_id: str | None = None  # the ``monitor`` run that recorded it, if any

    @property
    def alerts(self) -> list[CheckResult]:
        """Checks that raised an alert."""
        return [c for c in self.checks if c.status == ALERT]

    @property
    def ok(self) -> bool:
        """True when no check alerts (skipped checks do not count)."""
        return not self.alerts

    @property
    def status(self) -> str:
        """``alert`` or ``ok``."""
        return ALERT if self.alerts else OK

    def checks_frame(self) -> Any:
        """One row per check: as_of, check, status, value, threshold, message (``--output``)."""
        import polars as pl

        return pl.DataFrame(
            [
                {
                    "as_of": str(self.as_of),
                    "check": c.name,
                    "status": c.status,
                    "value": c.value,
                    "threshold": c.threshold,
                    "message": c.message,
                }
                for c in self.checks
            ],
            schema={
                "as_of": pl.String,
                "check": pl.String,
                "status": pl.String,
                "value": pl.Float64,
                "threshold": pl.Float64,
                "message": pl.String,
            },
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for schedulers)."""
        return {
            "as_of": str(self.as_of),
            "status": self.status,
            "alerts": [c.name for c in self.alerts],
            "checks": [c.to_dict() for c in self.checks],
        }


def record_monitor_run(store: Store, result: MonitorResult, config: dict[str, Any]) -> str:
    """Record ``result`` as a ``monitor`` run (status ``ok`` or ``alert``); its run id.

    The one way a monitoring run is recorded: ``pricelab monitor`` and the pipeline's
    monitor step both call it.
    """
    run = record_run(store, "monitor", {"as_of": str(result.as_of), "config": config})
    run.finish(result.to_dict(), status="ok" if result.ok else "alert")
    result.run_id = run.run_id
    return run.run_id


def run_checks(
    store: Store, *, as_of: dt.date | None = None, config: dict[str, dict[str, Any]] | None = None
) -> MonitorResult:
    """Run every enabled check against ``store``.

    Parameters
    ----------
    store:
        An open pricelab store (read-only is enough).
    as_of:
        The date the checks are judged at (default: today, UTC). Sales after it are ignored
        by the volume check.
    config:
        Thresholds as returned by :func:`load_config` / :func:`merge_config` (default: defaults).
    """
    cfg = config if config is not None else merge_config(None)
    day = as_of or dt.datetime.now(dt.UTC).date()
    results = []
    for name, fn in CHECKS.items():
        if not cfg[name]["enabled"]:
            results.append(CheckResult(name, SKIPPED, "disabled in config"))
            continue
        results.append(fn(store, day, cfg[name]))
    return MonitorResult(day, results)
