"""What a pipeline run returns: each step's outcome and the summary a scheduler reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EX_TEMPFAIL = 75  # pricelab.errors.UnavailableError: storage unavailable, retry later
STEPS = ("ingest", "validate", "estimate", "backtest", "promote", "optimize", "monitor")
OK, SKIPPED, REFUSED, FAILED, NOT_RUN = "ok", "skipped", "refused", "failed", "not-run"


@dataclass
class Step:
    """One step's outcome: ``ok`` (ran), ``skipped``, ``refused`` (gate), ``failed``, ``not-run``."""

    step: str
    status: str
    message: str = ""
    run_id: str | None = None
    new: bool = False
    exit_code: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "step": self.step,
            "status": self.status,
            "run_id": self.run_id,
            "new_run": self.new,
            "exit_code": self.exit_code,
            "message": self.message,
            "details": self.details,
        }


@dataclass
class PipelineResult:
    """Every step's outcome, the pipeline run (None when nothing changed) and the exit code."""

    db: str
    steps: list[Step]
    run_id: str | None
    exit_code: int
    production_run: str | None
    mlflow: list[dict[str, Any]] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when some step recorded a new run."""
        return any(s.new for s in self.steps)

    @property
    def failed_step(self) -> str | None:
        """The step that stopped the pipeline."""
        return next((s.step for s in self.steps if s.status == FAILED), None)

    @property
    def message(self) -> str:
        """One line for logs."""
        if self.failed_step:
            s = next(s for s in self.steps if s.status == FAILED)
            return f"pipeline stopped at {s.step} (exit {s.exit_code}): {s.message}"
        if not self.changed:
            return "nothing new: inputs, estimates and plan are up to date"
        return f"pipeline run {self.run_id}: " + ", ".join(
            f"{s.step} {s.status}" for s in self.steps if s.status != SKIPPED
        )

    @property
    def tracking_message(self) -> str | None:
        """One line on the MLflow logging of the gate, promote, monitor and pipeline runs."""
        if not self.mlflow:
            return None
        failed = [e for e in self.mlflow if not e["ok"]]
        first = self.mlflow[0]
        if failed:
            return (
                f"MLflow logging failed for {', '.join(e['step'] for e in failed)}: "
                f"{failed[0]['error']}"
            )
        return (
            f"logged {', '.join(e['step'] for e in self.mlflow)} to MLflow "
            f"(experiment '{first['experiment']}' at {first['tracking_uri']})"
        )

    def to_dict(self) -> dict[str, Any]:
        """Summary a scheduler can read."""
        return {
            "run_id": self.run_id,
            "db": self.db,
            "exit_code": self.exit_code,
            "status": (
                ("unavailable" if self.exit_code == EX_TEMPFAIL else "failed")
                if self.failed_step
                else "ok"
            ),
            "changed": self.changed,
            "failed_step": self.failed_step,
            "production_run": self.production_run,
            "message": self.message,
            "steps": [s.to_dict() for s in self.steps],
        } | ({"mlflow": self.mlflow} if self.mlflow else {})
