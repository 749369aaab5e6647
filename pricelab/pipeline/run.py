"""``run_pipeline``: ingest → validate → estimate → backtest → promote → optimize → monitor.

Each step records a run (``validate`` and ``monitor`` too) and is skipped when what it would
compute is already in the database: files whose sha256 matches the newest ingest of their
table, an estimate run with the same parameters on the same input fingerprint, a candidate
already in production or already refused against it, a plan on the production estimates with
the same constraints and inputs. A run that changes anything is recorded as a ``pipeline`` run
whose parents are the step runs; a run that changes nothing records nothing and says so. The
first failing step stops the pipeline with that step's exit code.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from pricelab.errors import PricelabError, UsageError
from pricelab.pipeline import state
from pricelab.pipeline.config import load_pipeline_config
from pricelab.pipeline.inputs import file_name, input_files
from pricelab.pipeline.plan_step import jsonable, optimize_step
from pricelab.pipeline.result import (
    FAILED,
    NOT_RUN,
    OK,
    REFUSED,
    SKIPPED,
    STEPS,
    PipelineResult,
    Step,
)
from pricelab.registry import GateConfig, production_run, promote, run_gate
from pricelab.store.db import Store, resolve_db_path
from pricelab.store.runs import record_run


def _sha256(path: Any) -> str:
    from pricelab.urls import sha256

    return sha256(path)


class _Pipeline:
    def __init__(self, db: Path, cfg: dict[str, Any], track: Any = None) -> None:
        self.db, self.cfg = db, cfg
        self.track = track or False  # MlflowSettings, or False: not even $PRICELAB_MLFLOW
        g = cfg["gate"]
        self.gate = GateConfig(
            min_improvement_wape=g["min_improvement_wape"],
            tolerance_flags=g["tolerance_flags"],
            refresh=g["refresh"],
            horizon_weeks=g["horizon_weeks"],
            cutoffs=g["cutoffs"],
            naive_weeks=g["naive_weeks"],
        )
        self.loaded = False
        self.candidate: str | None = None
        self.comparison: Any = None

    def store(self, **kw: Any) -> Store:
        return Store.open(self.db, **kw)

    def monitor_config(self) -> dict[str, dict[str, Any]]:
        from pricelab.monitor import load_config, merge_config

        m = self.cfg["monitor"]
        return load_config(m["config"]) if m["config"] else merge_config(m["thresholds"] or None)

    # -- steps ---------------------------------------------------------------------------
    def ingest(self) -> Step:
        from pricelab.api.data import ingest

        files = input_files(self.cfg)
        known: dict[str, dict[str, str]] = {}
        if self.db.exists():
            with self.store(read_only=True) as store:
                known = state.ingested_files(store)
        changed = {k: p for k, p in files.items() if _sha256(p) != known.get(k, {}).get("sha256")}
        if not changed:
            runs = sorted({known[k]["run_id"] for k in files})
            return Step(
                "ingest",
                SKIPPED,
                f"{', '.join(file_name(p) for p in files.values())} "
                f"unchanged since ingest run(s) {', '.join(runs)}",
            )
        res = ingest(self.db, replace=self.cfg["inputs"]["replace"], **changed)
        self.loaded = True
        rows = ", ".join(f"{k} {n:,}" for k, n in res.loaded.items())
        return Step("ingest", OK, f"loaded {rows} rows", res.run_id, True, details=res.to_dict())

    def validate(self) -> Step:
        from pricelab.api.data import validate

        if not self.loaded:
            return Step("validate", SKIPPED, "no new data")
        report = validate(self.db)  # records the validate run, as the CLI does
        if not report.ok:
            return Step(
                "validate",
                FAILED,
                f"validation found {len(report.errors)} error(s): {report.errors[0].message()}",
                report.run_id,
                True,
                1,
                report.to_dict(),
            )
        return Step(
            "validate", OK, f"{len(report.warnings)} warning(s), no errors", report.run_id, True
        )

    def estimate(self) -> Step:
        from pricelab.api.estimate import estimate

        spec = state.estimate_spec(self.cfg)
        with self.store(must_exist=True) as store:
            store.require_sales()
            existing = state.matching_estimate(store, spec, state.current_digest(store))
            production = production_run(store)
            probe = None
            if existing is None and self.cfg["estimate"]["trigger"] == "drift" and production:
                share = self.monitor_config()["drift"]["max_share"]
                probe = state.drift_probe(store, production, share)
        if existing is not None:
            self.candidate = existing
            return Step(
                "estimate",
                SKIPPED,
                f"estimate run {existing} already fits these inputs with this model",
                existing,
            )
        if probe is not None and not probe["alert"]:
            return Step(
                "estimate",
                SKIPPED,
                f"no drift: {probe['moved']} of {probe['compared']} "
                f"items ({probe['share']:.1%}) moved beyond production's intervals "
                f"(limit {probe['max_share']:.0%}); production estimates kept",
                details=probe,
            )
        run = estimate(self.db, **spec, mlflow=self.track)
        self.candidate = run.run_id
        d = run.to_dict()
        why = f" (drift alert: {probe['share']:.1%} of items moved)" if probe else ""
        return Step(
            "estimate",
            OK,
            f"{d['model']}: {d['estimated']} of {d['groups']} groups" + why,
            run.run_id,
            True,
            details={k: d[k] for k in ("model", "groups", "estimated", "flags")}
            | ({"drift": probe} if probe else {}),
        )

    def _skip_gate(self, step: str, store: Store) -> Step | None:
        production = production_run(store)
        if self.candidate is None:
            return Step(step, SKIPPED, "no new estimate")
        if self.candidate == production:
            return Step(step, SKIPPED, f"estimate run {production} is in production")
        if not self.cfg["gate"]["enabled"] and step == "backtest":
            return Step(step, SKIPPED, "gate disabled in config")
        refused = state.refused_run(store, self.candidate, production, self.gate.to_dict())
        if refused:
            return Step(
                step,
                SKIPPED,
                f"the gate already refused run {self.candidate} against "
                f"production {production} (promote run {refused})",
                refused,
            )
        if step == "backtest":
            from pricelab.registry.promote import rollback_pin

            pin = rollback_pin(store, self.candidate)
            if pin is not None and not pin["passed"]:
                return Step(step, SKIPPED, f"no backtest: {pin['rule']}")
        return None

    def backtest(self) -> Step:
        with self.store(must_exist=True) as store:
            skip = self._skip_gate("backtest", store)
            if skip is not None:
                return skip
            self.comparison = run_gate(store, str(self.candidate), self.gate)
        comp, run_id = self.comparison
        t = {r["role"]: r for r in comp.table().iter_rows(named=True)}
        ref = "production" if comp.production else "naive"
        return Step(
            "backtest",
            OK,
            f"WAPE candidate {t['candidate']['wape']:.3f} vs {ref} "
            f"{t[ref]['wape']:.3f} over {len(comp.origins)} origin(s)",
            run_id,
            True,
            details=comp.to_dict(),
        )

    def promote(self) -> Step:
        with self.store(must_exist=True) as store:
            skip = self._skip_gate("promote", store)
            if skip is not None:
                return skip
            gate_off = not self.cfg["gate"]["enabled"]
            res = promote(
                store,
                str(self.candidate),
                config=self.gate,
                force=gate_off,
                reason="pipeline: gate disabled in config" if gate_off else None,
                comparison=self.comparison,
            )
        if res.promoted:
            return Step(
                "promote",
                OK,
                f"run {res.candidate} is now in production"
                + (f" (was {res.previous})" if res.previous else ""),
                res.run_id,
                True,
                details=res.to_dict(),
            )
        failed = ", ".join(c["check"] for c in res.failed_checks())
        return Step(
            "promote",
            REFUSED,
            f"gate refused run {res.candidate} ({failed}); production "
            f"stays {res.previous or 'unset'}: {res.reason}",
            res.run_id,
            True,
            details=res.to_dict(),
        )

    def optimize(self) -> Step:
        return optimize_step(self)

    def monitor(self, record: bool) -> Step:
        from pricelab.monitor import record_monitor_run, run_checks

        m = self.cfg["monitor"]
        if not m["enabled"]:
            return Step("monitor", SKIPPED, "disabled in config")
        thresholds = self.monitor_config()
        with self.store(must_exist=True, read_only=True) as store:
            as_of = state.monitor_as_of(store, m["as_of"])
            result = run_checks(store, as_of=as_of, config=thresholds)
        run_id = None
        if record:
            with self.store() as store:
                run_id = record_monitor_run(store, result, thresholds)
        if not result.ok:
            names = ", ".join(c.name for c in result.alerts)
            return Step(
                "monitor",
                FAILED,
                f"monitoring alert: {names} ({result.alerts[0].message})",
                run_id,
                record,
                1,
                result.to_dict(),
            )
        return Step(
            "monitor", OK, f"all clear as of {as_of}", run_id, record, details=result.to_dict()
        )


def run_pipeline(db: Any, config: Any, *, engine: str | None = None) -> PipelineResult:
    """Run every step; see the module docstring. Config errors raise before anything runs."""
    cfg = load_pipeline_config(config)
    if engine is not None:
        if engine not in ("local", "spark"):
            raise UsageError(f"--engine must be local or spark, got {engine!r}")
        cfg["estimate"]["engine"] = engine
    path = resolve_db_path(db if db is not None else cfg["db"])
    from pricelab.tracking import resolve_mlflow

    track = resolve_mlflow(cfg["mlflow"])  # MLflow missing: an error before anything runs
    p = _Pipeline(path, cfg, track)
    steps: list[Step] = []
    exit_code = 0
    fns: dict[str, Callable[[], Step]] = {
        "ingest": p.ingest,
        "validate": p.validate,
        "estimate": p.estimate,
        "backtest": p.backtest,
        "promote": p.promote,
        "optimize": p.optimize,
        "monitor": lambda: p.monitor(any(s.new for s in steps)),
    }
    for name in STEPS:
        if exit_code:
            steps.append(Step(name, NOT_RUN))
            continue
        try:
            step = fns[name]()
        except PricelabError as exc:
            step = Step(name, FAILED, str(exc), exit_code=exc.exit_code)
        except Exception as exc:  # noqa: BLE001 - a scheduler still gets a summary
            exit_code = 3
            step = Step(name, FAILED, f"internal error: {type(exc).__name__}: {exc}", exit_code=3)
        steps.append(step)
        exit_code = step.exit_code if step.status == FAILED else 0
    production = None
    run_id = None
    logged: list[dict[str, Any]] = []
    if path.exists():
        with Store.open(path) as store:
            production = production_run(store)
            new = [s.run_id for s in steps if s.new and s.run_id]
            if new:
                run = record_run(store, "pipeline", {"config": jsonable(cfg)}, parents=new)
                run_id = run.run_id
                result = PipelineResult(str(path), steps, run_id, exit_code, production)
                run.finish(result.to_dict(), status="failed" if exit_code else "ok")
            if track and run_id:
                from pricelab.tracking.pipeline_log import log_pipeline

                logged = log_pipeline(store, steps, run_id, track)
    return PipelineResult(str(path), steps, run_id, exit_code, production, logged)
