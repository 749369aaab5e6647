"""The Python API: one function per command. The CLI calls these and only these.

Every function opens the database itself (``db``: a path, or None for ``$PRICELAB_DB`` /
``./pricelab.duckdb``) and closes it before returning, so a batch job never holds a lock
longer than one call.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath
from typing import Any

import polars as pl

from pricelab.quality import QualityReport, check_loaded
from pricelab.store import IngestResult, Store
from pricelab.store import get_run as _get_run
from pricelab.store import ingest as _ingest
from pricelab.store import list_runs as _list_runs

PathLike = str | os.PathLike[str]


def ingest(
    db: PathLike | None = None, *, sales: PathLike | None = None, items: PathLike | None = None,
    costs: PathLike | None = None, markets: PathLike | None = None,
    inventory: PathLike | None = None, replace: bool = False,
) -> IngestResult:
    """Validate the given files and load them into the database in one transaction.

    Raises
    ------
    InputFileError, DataError
        A file is unreadable or breaks a data-quality rule; the database is unchanged.
    StoreError
        The database cannot be opened (missing folder, not DuckDB, locked).
    """
    files = {"sales": sales, "items": items, "costs": costs, "markets": markets,
             "inventory": inventory}
    with Store.open(db) as store:
        return _ingest(store, files, replace=replace)


def validate(db: PathLike | None = None) -> QualityReport:
    """Data-quality report on what is loaded (errors and warnings)."""
    with Store.open(db, must_exist=True) as store:
        store.require_sales()
        return check_loaded(store)


def runs(db: PathLike | None = None, *, command: str | None = None) -> pl.DataFrame:
    """Every recorded run, newest first."""
    with Store.open(db, must_exist=True, read_only=True) as store:
        return _list_runs(store, command)


def run(db: PathLike | None, run_id: str) -> dict[str, Any]:
    """One run with its parameters, input fingerprint, parents and summary."""
    with Store.open(db, must_exist=True, read_only=True) as store:
        return _get_run(store, run_id)


def sample_files() -> dict[str, Path]:
    """Paths of the bundled sample marketplace files by table kind."""
    from pricelab._resources import sample_dir

    d = sample_dir()
    return {k: d / f"{k}.csv" for k in ("sales", "items", "costs", "markets", "inventory")
            if (d / f"{k}.csv").exists()}


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

    path = Path(db) if db is not None else Path(tempfile.mkdtemp(prefix="pricelab-demo-")) / "demo.duckdb"
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


# -- estimation ---------------------------------------------------------------------------
class EstimateRun:
    """An estimate stored as a run: ``run_id`` and the :class:`ElasticityResults`."""

    def __init__(self, run_id: str | None, results: Any,
                 table: pl.DataFrame | None = None) -> None:
        self.run_id = run_id
        self.results = results
        self._table = table if table is not None else results.elasticities
        self.mlflow: Any = None  # TrackingOutcome when logged to MLflow

    @property
    def elasticities(self) -> pl.DataFrame:
        """Contract columns and diagnostics per group (with ``category`` when items are loaded)."""
        return self._table

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary for schedulers."""
        t = self.results.elasticities
        flags = (t.select(pl.col("flags").str.split(",")).explode("flags")
                 .filter(pl.col("flags").is_not_null() & (pl.col("flags") != ""))
                 .group_by("flags").len().sort("flags"))
        valid = t.filter(pl.col("elasticity").is_not_nan())
        return {
            "run_id": self.run_id, "model": self.results.model, "groups": t.height,
            "estimated": valid.height,
            "median_elasticity": float(valid["elasticity"].median()) if valid.height else None,
            "flags": dict(flags.iter_rows()),
            "parameters": {k: v for k, v in self.results.parameters.items()
                           if isinstance(v, str | int | float | bool | list | type(None))},
        }


def estimate(
    db: PathLike | None = None, *, model: str = "hierarchical", by: str | None = None,
    instrument: str | None = None, slope: str = "item", before: str | None = None,
    engine: str = "local", source: PathLike | str | None = None, mlflow: Any = None,
    se: str = "HC1", hac_lags: int | None = None, tau: str = "level", progress: Any = None,
) -> EstimateRun:
    """Estimate elasticities from the loaded sales and store them as an ``estimate`` run.

    With ``source``, sales are read from there instead (CSV/Parquet for ``local``;
    Parquet, ``delta:PATH`` or a table name for ``spark``) and the run is stored only
    when ``db`` is given (its items table is used when loaded); otherwise ``run_id`` is
    None.

    Parameters
    ----------
    model:
        ``ols``, ``poisson``, ``panel``, ``hierarchical`` (default) or ``iv``.
    by:
        Comma-separated group columns (default ``item_id,market``; for ``panel`` the pooling
        level, default category × market).
    instrument:
        ``iv`` only: a sales column (e.g. ``unit_cost``) or ``hausman``.
    before:
        Use only weeks before this ISO date.
    engine:
        ``local`` (default) or ``spark`` (:mod:`pricelab.engines`; needs ``source``).
    source:
        Sales file, Delta path or table to read instead of the database.
    se, hac_lags:
        Standard errors: ``HC1`` (default), ``HC0``, ``nonrobust`` or ``HAC`` (Newey-West,
        ``ols`` only, ``hac_lags`` weeks; default floor(4 (n/100)^(2/9))).
    tau:
        ``hierarchical``: between-item spread per pooling level (``level``) or one per layer
        (``common``).
    progress:
        Optional ``callback(done, total)`` for long runs (local engine).
    mlflow:
        Log the stored run to MLflow (``pricelab[mlflow]``): True, a tracking URI, a
        ``{tracking_uri, experiment, strict}`` mapping or
        :class:`pricelab.tracking.MlflowSettings`; None follows ``$PRICELAB_MLFLOW``.
        The outcome is ``.mlflow`` and ``summary.mlflow`` of the run.
    """
    import json

    from pricelab.elasticity import MODELS
    from pricelab.elasticity import estimate as _estimate
    from pricelab.errors import UsageError
    from pricelab.store.loaders import load_items, load_sales
    from pricelab.tracking import resolve_mlflow

    if model not in MODELS:
        raise UsageError(f"unknown model '{model}'; choose one of {', '.join(MODELS)}")
    track = resolve_mlflow(mlflow)
    if track is not None and source is not None and db is None:
        raise UsageError("--mlflow logs stored runs: add --db to store this estimate")
    kwargs: dict[str, Any] = {"model": model, "slope": slope}
    group_cols = [c.strip() for c in by.split(",")] if by else None
    if model == "panel":
        kwargs["pool_by"] = group_cols
    elif group_cols:
        kwargs["by"] = group_cols
    if instrument is not None:
        kwargs["instrument"] = instrument
    if se != "HC1":
        kwargs["se"] = se
    if hac_lags is not None:
        kwargs["hac_lags"] = hac_lags
    if tau != "level":
        kwargs["tau"] = tau
    if source is not None or engine != "local":
        return _estimate_source(db, source, engine, kwargs, by=by, before=before,
                                track=track)
    with Store.open(db, must_exist=True) as store:
        sales = load_sales(store, before=before)
        items = load_items(store)
        results = _estimate(sales, items=items, progress=progress, **kwargs)
        params = {"model": model, "by": by, "instrument": instrument, "slope": slope,
                  "before": before, "se": se, "hac_lags": hac_lags, "tau": tau,
                  "fit": json.loads(json.dumps(results.parameters, default=str))}
        return _store_estimate(store, results, items, params, track)


def _estimate_source(db: PathLike | None, source: PathLike | str | None, engine: str,
                     kwargs: dict[str, Any], *, by: str | None, before: str | None,
                     track: Any = None) -> EstimateRun:
    """``estimate`` on sales read from ``source`` by ``engine``; stored when ``db`` is given."""
    import json

    from pricelab.engines import get_engine
    from pricelab.errors import UsageError
    from pricelab.store.loaders import load_items

    eng = get_engine(engine)
    if source is None and db is not None and Path(db).exists():
        return _estimate_db_on_engine(db, eng, engine, kwargs, by=by, before=before,
                                      track=track)
    if source is None:
        raise UsageError(f"--engine {engine} reads sales from --source (a Parquet file or "
                         "folder, delta:PATH or a table name) or from an existing --db")
    items = None
    if db is not None and Path(db).exists():
        with Store.open(db, read_only=True) as store:
            items = load_items(store)
    results = eng.estimate(str(source), items=items, before=before, **kwargs)
    if db is None:
        return EstimateRun(None, results)
    params = {"model": kwargs["model"], "by": by, "instrument": kwargs.get("instrument"),
              "slope": kwargs["slope"], "before": before, "engine": engine,
              "source": str(source),
              "fit": json.loads(json.dumps(results.parameters, default=str))}
    with Store.open(db) as store:
        return _store_estimate(store, results, items, params, track)


def _estimate_db_on_engine(db: PathLike, eng: Any, engine: str, kwargs: dict[str, Any], *,
                           by: str | None, before: str | None, track: Any) -> EstimateRun:
    """Run ``engine`` on the database's own sales (exported once to Parquet), store the run."""
    import json
    import tempfile

    from pricelab.store.loaders import load_items

    with tempfile.TemporaryDirectory(prefix="pricelab-engine-") as tmp:
        export = Path(tmp) / "sales.parquet"
        with Store.open(db, must_exist=True, read_only=True) as store:
            store.require_sales()
            items = load_items(store)
            store.execute(f"COPY (SELECT * FROM sales ORDER BY item_id, market, date) "
                          f"TO '{export}' (FORMAT PARQUET)")
        results = eng.estimate(str(export), items=items, before=before, **kwargs)
    params = {"model": kwargs["model"], "by": by, "instrument": kwargs.get("instrument"),
              "slope": kwargs["slope"], "before": before, "engine": engine,
              "fit": json.loads(json.dumps(results.parameters, default=str))}
    with Store.open(db) as store:
        return _store_estimate(store, results, items, params, track)


def _store_estimate(store: Store, results: Any, items: pl.DataFrame | None,
                    params: dict[str, Any], track: Any = None) -> EstimateRun:
    """Write elasticities and coefficients as an ``estimate`` run."""
    from pricelab.store.runs import start_run
    from pricelab.tracking import log_run

    run = start_run(store, "estimate", params)
    table = results.elasticities
    if items is not None and "category" in items.columns and "category" not in table.columns \
            and "item_id" in table.columns:
        table = table.join(items.select("item_id", "category"), on="item_id", how="left")
    with store.transaction():
        store.write_result("elasticities", table, run.run_id)
        store.write_result("elasticity_params", results.params, run.run_id)
        out = EstimateRun(run.run_id, results, table)
        run.finish(out.to_dict())
    out.mlflow = log_run(store, run.run_id, table, track, table_name="elasticities")
    return out


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


# -- lineage, monitoring ------------------------------------------------------------------
def diff_runs(db: PathLike | None, run_a: str, run_b: str) -> Any:
    """What changed from run ``run_a`` to ``run_b``: a :class:`pricelab.store.lineage.RunDiff`.

    Parameters that differ, input tables whose fingerprint (rows, date range, hash) differs,
    and for two estimate runs the items whose elasticity intervals no longer overlap.

    Raises
    ------
    NotFoundError
        Either run does not exist.
    """
    from pricelab.store.lineage import diff_runs as _diff

    with Store.open(db, must_exist=True, read_only=True) as store:
        return _diff(store, run_a, run_b)


def monitor(db: PathLike | None = None, *, as_of: Any = None,
            config: PathLike | None = None) -> Any:
    """Run the monitoring checks: a :class:`pricelab.monitor.MonitorResult`.

    Parameters
    ----------
    as_of:
        ``datetime.date`` or ISO date string the checks are judged at (default today, UTC).
    config:
        YAML file with a ``monitor:`` section of thresholds (defaults: ``pricelab.monitor.DEFAULTS``).

    The caller decides what an alert means; the CLI exits 1 when ``result.ok`` is False.
    """
    import datetime as _dt

    from pricelab.errors import UsageError
    from pricelab.monitor import load_config, run_checks

    if isinstance(as_of, str):
        try:
            as_of = _dt.date.fromisoformat(as_of)
        except ValueError:
            raise UsageError(f"--as-of: {as_of!r} is not an ISO date (YYYY-MM-DD)") from None
    cfg = load_config(config)
    with Store.open(db, must_exist=True, read_only=True) as store:
        return run_checks(store, as_of=as_of, config=cfg)


# -- optimization -------------------------------------------------------------------------
class OptimizeRun:
    """A plan, the estimate run it used and the run it is stored as (None without a db)."""

    def __init__(self, plan: Any, run_id: str | None, estimates: str | None) -> None:
        self.plan = plan
        self.run_id = run_id
        self.estimates = estimates
        self.mlflow: Any = None  # TrackingOutcome when logged to MLflow

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (the plan's own summary plus lineage)."""
        return {"run_id": self.run_id, "estimates_run": self.estimates, **self.plan.to_dict()}


def _constraints_content(constraints: PathLike | dict[str, Any] | None) -> Any:
    """What the constraints said, for lineage (the file may change later)."""
    import json

    import yaml

    if constraints is None:
        return None
    if isinstance(constraints, dict):
        return json.loads(json.dumps(constraints, default=str))
    from pricelab.io import read_text

    text = read_text(constraints, what="constraints file")
    return json.loads(json.dumps(yaml.safe_load(text), default=str))


def _file_name(path: PathLike) -> str:
    """``path`` as given for a local file; a URL without its query string or secrets."""
    from pricelab.storage import display, is_url

    return display(path) if is_url(path) else str(path)


def _seasonal_demand(store: Store, table: pl.DataFrame, est_run: str, cons: Any,
                     baseline_weeks: int, mode: str) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Scale base units to the plan horizon's season (shared with simulate)."""
    import math

    from pricelab.demand.season import MODES, seasonal_adjustment
    from pricelab.errors import UsageError

    if mode not in MODES:
        raise UsageError(f"--seasonality must be one of {', '.join(MODES)}, got {mode!r}")
    horizon = math.ceil(cons.horizon_weeks) if cons is not None else 1
    adj = seasonal_adjustment(store, table, weeks=baseline_weeks, horizon=horizon,
                              estimates_run=est_run, mode=mode)
    table = table.with_columns(pl.col("base_quantity") * pl.Series(adj.factor))
    return table, adj.to_dict()


def _db_given(db: PathLike | None) -> bool:
    return db is not None or bool(os.environ.get("PRICELAB_DB"))


def optimize(
    db: PathLike | None = None, *, demand: PathLike | None = None,
    constraints: PathLike | dict[str, Any] | None = None, estimates: str | None = None,
    baseline_weeks: int = 8, draws: int | None = None, risk: str | None = None, seed: int = 0,
    strict: bool = False, mlflow: Any = None, seasonality: str = "auto",
) -> OptimizeRun:
    """Recommend a price per item × market and store the plan as an ``optimize`` run.

    Parameters
    ----------
    db:
        The database (demand built from its estimates, sales, costs, markets, inventory).
    demand:
        A demand-table file instead of the database; the plan is then stored only when a
        database is named explicitly (``db`` or ``$PRICELAB_DB``).
    constraints:
        Constraints YAML path or URL (contract schema) or an equivalent dict.
    estimates:
        Estimate run id (default: the production run if one is promoted, else the latest).
    baseline_weeks:
        Weeks of history that define current base units.
    draws, risk, seed:
        Elasticity draws for profit intervals; ``cvar:ALPHA`` risk constraint; seed.
    strict:
        Fail (exit 2) on rows that would otherwise be skipped with a flag.
    mlflow:
        Log the stored plan to MLflow; see :func:`estimate`.
    """
    from pricelab.demand.from_store import demand_from_store
    from pricelab.errors import UsageError
    from pricelab.io import read_table
    from pricelab.optimize import load_constraints
    from pricelab.optimize import optimize as _optimize
    from pricelab.store.runs import start_run
    from pricelab.tracking import log_run, resolve_mlflow

    track = resolve_mlflow(mlflow)
    if track is not None and demand is not None and not _db_given(db):
        raise UsageError("--mlflow logs stored runs: add --db to store this plan")
    cons = load_constraints(constraints) if constraints is not None else None
    params: dict[str, Any] = {
        "constraints": _file_name(constraints) if constraints is not None and not isinstance(
            constraints, dict) else constraints,
        "constraints_content": _constraints_content(constraints),
        "demand": _file_name(demand) if demand is not None else None, "estimates": estimates,
        "baseline_weeks": baseline_weeks, "draws": draws, "risk": risk, "seed": seed,
        "strict": strict,
    }
    if demand is not None:
        table = read_table(demand)
        plan = _optimize(table, cons, draws=draws, risk=risk, seed=seed, strict=strict)
        if not _db_given(db):
            return OptimizeRun(plan, None, None)
        with Store.open(db) as store:
            run = start_run(store, "optimize", params)
            with store.transaction():
                store.write_result("plans", plan.table, run.run_id)
                out = OptimizeRun(plan, run.run_id, None)
                run.finish(out.to_dict())
            out.mlflow = log_run(store, run.run_id, plan.table, track, table_name="plans")
            return out
    with Store.open(db, must_exist=True) as store:
        table, est_run = demand_from_store(store, estimates=estimates,
                                           baseline_weeks=baseline_weeks)
        table, season = _seasonal_demand(store, table, est_run, cons, baseline_weeks,
                                         seasonality)
        plan = _optimize(table, cons, draws=draws, risk=risk, seed=seed, strict=strict)
        params["estimates"] = est_run
        params["seasonality"] = season
        run = start_run(store, "optimize", params, parents=[est_run])
        with store.transaction():
            store.write_result("plans", plan.table, run.run_id)
            if plan.skipped.height:
                store.write_result("plan_skipped", plan.skipped, run.run_id)
            out = OptimizeRun(plan, run.run_id, est_run)
            run.finish(out.to_dict())
        out.mlflow = log_run(store, run.run_id, plan.table, track, table_name="plans")
        return out


def _demo_optimize(db: PathLike) -> dict[str, Any]:
    from pricelab._resources import sample_dir

    cons = sample_dir() / "constraints.yaml"
    run = optimize(db, constraints=cons)
    plan = run.plan
    return {
        "run_id": run.run_id, "status": plan.status, "formulation": plan.formulation,
        "uplift_pct": plan.uplift_pct, "rows": plan.table.height,
        "lines": [
            f"profit-maximizing prices for {plan.table.height} item x market rows under "
            f"bounds, margin floor, parity and a volume floor (run {run.run_id})",
            f"{plan.formulation}: {plan.status}, profit {plan.uplift_pct:+.1f}% vs current prices",
            f"see: pricelab optimize --db {db} --constraints {cons}",
        ],
    }


_DEMO_STEPS.append(("optimize", _demo_optimize))


# -- what-if simulation and backtests (pricelab.simulate) -----------------------------------
from pricelab.simulate import BacktestResult, SimulationResult  # noqa: E402


def simulate(db: PathLike | None, scenario: PathLike | dict[str, Any], *,
             estimates: str | None = None, draws: int = 1000, seed: int = 0,
             mlflow: Any = None, engine: str = "local",
             source: PathLike | str | None = None) -> SimulationResult:
    """Project the scenarios of a scenario file against the baseline, stored as a run.

    Parameters
    ----------
    db : path or None
        The database (``$PRICELAB_DB`` / ``./pricelab.duckdb`` when None).
    scenario : path or dict
        Scenario file (YAML) or its parsed content; see :func:`pricelab.simulate.load_scenario`.
    estimates : str, optional
        Estimate run id (default: the production run, else the newest).
    draws, seed : int
        Elasticity draws for the 90% intervals and their seed.
    mlflow : optional
        Log the stored run to MLflow; see :func:`estimate`.
    engine : {"local", "spark"}
        Where the baseline window is aggregated (:mod:`pricelab.engines`): ``spark`` reads
        the sales history from ``source`` and the database then only needs the estimates.
    source : path or str, optional
        Sales history for ``spark``: Parquet file or folder, ``delta:PATH`` or a table.

    Returns
    -------
    SimulationResult
        ``.table`` (contract scenario columns per scenario × item × market),
        ``.aggregates``, ``.warnings``, ``.run_id`` (and ``.mlflow`` when logged).

    Raises
    ------
    ConfigError, UsageError, NotFoundError, EmptyStoreError, StoreError
    """
    from pricelab.simulate import simulate as _simulate
    from pricelab.tracking import log_run, resolve_mlflow

    track = resolve_mlflow(mlflow)
    with Store.open(db, must_exist=True) as store:
        result = _simulate(store, scenario, estimates=estimates, draws=draws, seed=seed,
                           engine=engine, source=source)
        result.mlflow = log_run(store, result.run_id, result.table, track,  # type: ignore[attr-defined]
                                table_name="scenarios")
        return result


def backtest(db: PathLike | None = None, *, cutoff: str, horizon_weeks: int = 8,
             models: tuple[str, ...] | list[str] = ("poisson", "hierarchical"), cutoffs: int = 1,
             naive_weeks: int = 8, rank_by: str = "deviance") -> BacktestResult:
    """Fit models before ``cutoff``, predict after it, score; stored as a ``backtest`` run.

    The scores go to result table ``backtests``. See :func:`pricelab.simulate.backtest`.

    Raises
    ------
    UsageError
        Bad cutoff or model, or no history before / sales after an origin.
    EmptyStoreError, StoreError
    """
    from pricelab.simulate import backtest as _backtest
    from pricelab.store import start_run

    with Store.open(db, must_exist=True) as store:
        store.require_sales()
        sales = store.table("sales")
        items = store.table("items") if store.count("items") else None
        result = _backtest(sales, cutoff=cutoff, horizon_weeks=horizon_weeks, models=models,
                           cutoffs=cutoffs, items=items, naive_weeks=naive_weeks,
                           rank_by=rank_by)
        run = start_run(store, "backtest", result.parameters)
        with store.transaction():
            store.write_result("backtests", result.scores, run.run_id)
            run.finish({"best": result.best(), "scores": result.overall().to_dicts()})
        result.run_id = run.run_id
        return result


def report(db: PathLike | None = None, *, output: PathLike, run: str | None = None,
           top: int = 6) -> Any:
    """Write the self-contained HTML report to ``output``: a :class:`pricelab.report.Report`.

    Parameters
    ----------
    output:
        The ``.html`` file to write: a path or an fsspec URL (``az://``, ``s3://``...).
    run:
        Build around this estimate, optimize or simulate run (default: the latest runs).
    top:
        Number of items whose demand and profit curves are drawn.

    Raises
    ------
    UsageError
        ``output`` does not end in .html/.htm, its folder is missing, or ``top`` < 1.
    NotFoundError
        ``run`` does not exist.
    """
    from pricelab.errors import UsageError
    from pricelab.report import build_report, write_report
    from pricelab.storage import display, normalize

    out = normalize(output)
    name = display(out)
    if PurePath(name).suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"--output {name}: the report is HTML; use a .html file name")
    if isinstance(out, Path) and not out.parent.exists():
        raise UsageError(f"--output {out}: folder {out.parent} does not exist")
    if top < 1:
        raise UsageError(f"--top must be at least 1, got {top}")
    with Store.open(db, must_exist=True, read_only=True) as store:
        rep = build_report(store, run_id=run, top=top)
    write_report(rep, out)
    return rep


# -- experiments --------------------------------------------------------------------------
def _parse_where(where: list[str] | None) -> dict[str, list[str]]:
    from pricelab.errors import UsageError

    out: dict[str, list[str]] = {}
    for w in where or []:
        if "=" not in w:
            raise UsageError(f"--where {w!r}: expected COLUMN=VALUE[,VALUE...]")
        col, vals = w.split("=", 1)
        out.setdefault(col.strip(), []).extend(v.strip() for v in vals.split(",") if v.strip())
    return out


def _units(store: Store, where: dict[str, list[str]]) -> pl.DataFrame:
    """Item × market units with current price, market and item attributes."""
    from pricelab.errors import UsageError
    from pricelab.store.loaders import load_items

    units = store.query(
        "SELECT item_id, market, arg_max(price, date) AS current_price FROM sales "
        "GROUP BY item_id, market ORDER BY item_id, market")
    items = load_items(store)
    if items is not None:
        units = units.join(items, on="item_id", how="left")
    for col, vals in where.items():
        if col not in units.columns:
            raise UsageError(f"unknown --where column '{col}'; use one of "
                             f"{', '.join(units.columns)}")
        units = units.filter(pl.col(col).cast(pl.String).is_in(vals))
    if units.height == 0:
        raise UsageError("--where matches no item x market: " + ", ".join(
            f"{k}={','.join(v)}" for k, v in where.items()))
    return units


def experiment_design(
    db: PathLike | None = None, *, name: str, cells: list[float], weeks: int, seed: int,
    unit: str = "item-market", stratify: list[str] | None = None,
    where: list[str] | None = None, start: str | None = None, mde: float | None = None,
) -> tuple[Any, str]:
    """Design a randomised price test on the loaded items and store it under ``name``.

    Returns the :class:`~pricelab.experiment.ExperimentDesign` and its run id.
    """
    from pricelab.errors import UsageError
    from pricelab.experiment import design_experiment
    from pricelab.store.experiments import experiment_exists, save_design
    from pricelab.store.loaders import load_sales
    from pricelab.store.runs import start_run

    with Store.open(db, must_exist=True) as store:
        store.require_sales()
        if experiment_exists(store, name):
            raise UsageError(f"experiment '{name}' already exists; choose another --name")
        units = _units(store, _parse_where(where))
        history = load_sales(store)
        design = design_experiment(units, history, name=name, cells=cells, unit=unit,
                                   stratify=stratify, weeks=weeks, seed=seed, start=start,
                                   mde=mde)
        params = {"name": name, "cells": cells, "weeks": weeks, "seed": seed, "unit": unit,
                  "stratify": stratify, "where": where, "start": start, "mde": mde}
        run = start_run(store, "experiment-design", params)
        with store.transaction():
            save_design(store, design, run.run_id)
            run.finish({"name": name, "cell_counts": design.cell_counts,
                        "start": str(design.start), "end": str(design.end)})
        return design, run.run_id


def experiment_analyze(db: PathLike | None = None, *, name: str,
                       estimates: str | None = None) -> tuple[Any, str]:
    """Analyse stored experiment ``name`` with the sales of its test window.

    Returns the :class:`~pricelab.experiment.ExperimentAnalysis` and its run id.
    """
    from pricelab.demand.from_store import resolve_estimates
    from pricelab.experiment import analyze_experiment
    from pricelab.store.experiments import load_design
    from pricelab.store.loaders import load_sales
    from pricelab.store.runs import latest_run, start_run

    with Store.open(db, must_exist=True) as store:
        header, assignment = load_design(store, name)
        sales = load_sales(store)
        start, end = header["start"], header["end"]
        test = sales.filter((pl.col("date") >= start) & (pl.col("date") < end))
        pre = sales.filter(pl.col("date") < start)
        observational = None
        est_run = None
        if estimates is not None or latest_run(store, "estimate") is not None:
            est_run = resolve_estimates(store, estimates)
            observational = store.read_result("elasticities", est_run)
        analysis = analyze_experiment(assignment, test, pre, observational=observational,
                                      start=start, end=end, name=name)
        parents = [header["run_id"], *([est_run] if est_run else [])]
        run = start_run(store, "experiment-analyze", {"name": name, "estimates": est_run},
                        parents=parents)
        with store.transaction():
            store.write_result("experiment_results",
                               analysis.table.with_columns(pl.lit(name).alias("experiment")),
                               run.run_id)
            run.finish({"name": name, "pooled": analysis.pooled, "srm": analysis.srm})
        return analysis, run.run_id


def _demo_simulate(db: PathLike) -> dict[str, Any]:
    from pricelab._resources import sample_dir

    path = sample_dir() / "scenario.yaml"
    result = simulate(db, path, draws=500, seed=0)
    lines = [f"what-if scenarios from {path.name} against the last 8 weeks (run {result.run_id})"]
    for r in result.totals().iter_rows(named=True):
        lines.append(f"  {r['scenario']}: profit {r['profit_delta_pct']:+.1f}% "
                     f"(90% interval {r['profit_low']:,.0f} to {r['profit_high']:,.0f})")
    lines.append(f"see: pricelab simulate --db {db} --scenario {path}")
    return {"run_id": result.run_id, "lines": lines}


_DEMO_STEPS.append(("simulate", _demo_simulate))


# -- model registry: promotion gate and history (pricelab.registry) -----------------------
def promote(db: PathLike | None, run_id: str, *, force: bool = False, reason: str | None = None,
            tolerance_wape: float = 2.0, tolerance_flags: float = 5.0, horizon_weeks: int = 4,
            cutoffs: int = 3, naive_weeks: int = 8) -> Any:
    """Promote estimate run ``run_id`` to production if it passes the gate.

    The gate backtests the candidate against the production run on the last
    ``cutoffs * horizon_weeks`` weeks (both refitted with their stored parameters before each
    origin) and passes when the candidate's WAPE is at most ``tolerance_wape`` percent worse
    (relative) and its share of flagged groups at most ``tolerance_flags`` points higher; the
    first promotion must beat the naive forecast. See :mod:`pricelab.registry.gate`.

    Parameters
    ----------
    run_id : str
        An estimate run id, or ``latest``.
    force, reason : bool, str
        Promote whatever the gate says; ``reason`` is then required and recorded.

    Returns
    -------
    pricelab.registry.Promotion
        ``status`` is ``promoted``, ``refused`` (``ok`` False: the CLI exits 1) or
        ``already-production``.

    Raises
    ------
    NotFoundError, UsageError, EmptyStoreError, StoreError
    """
    from pricelab.registry import GateConfig
    from pricelab.registry import promote as _promote

    config = GateConfig(tolerance_wape=tolerance_wape, tolerance_flags=tolerance_flags,
                        horizon_weeks=horizon_weeks, cutoffs=cutoffs, naive_weeks=naive_weeks)
    with Store.open(db, must_exist=True) as store:
        store.require_sales()
        return _promote(store, run_id, config=config, force=force, reason=reason)


def registry(db: PathLike | None = None) -> pl.DataFrame:
    """Every promotion, newest first: ``run_id, stage, promoted_at, promoted_by, reason,
    previous_run_id, forced, model`` (the first row is the production run)."""
    from pricelab.registry import history

    with Store.open(db, must_exist=True, read_only=True) as store:
        return history(store)


def pipeline(db: PathLike | None = None, *, config: PathLike | dict[str, Any] | None = None,
             engine: str | None = None) -> Any:
    """Run the nightly pipeline: ingest new files, validate, estimate, backtest, promote if
    better, optimize, monitor — each step a run, skipped when its inputs did not change.

    Parameters
    ----------
    db : path, optional
        The database (default: the config's ``db``, else ``$PRICELAB_DB`` /
        ``./pricelab.duckdb``).
    config : path or dict, optional
        Pipeline YAML (see ``examples/pipeline.yaml``); None runs on the bundled sample.
    engine : {"local", "spark"}, optional
        Overrides the config's ``estimate.engine`` (Spark runs the estimators on a local or
        cluster Spark session: ``pricelab[spark]``).

    Returns
    -------
    pricelab.pipeline.PipelineResult
        ``steps`` (name, status, run id, message), ``exit_code``, ``changed``, ``run_id``.
        A failing step does not raise: it stops the pipeline and sets ``exit_code``.

    Raises
    ------
    ConfigError, InputFileError
        The config file is unreadable or invalid (nothing has run).
    """
    from pricelab.pipeline import run_pipeline

    return run_pipeline(db, config, engine=engine)


def _demo_report(db: PathLike) -> dict[str, Any]:
    out = Path(db).parent / "report.html"
    report(db, output=out)
    return {"output": str(out),
            "lines": [f"self-contained HTML report with plots: {out}",
                      f"see: pricelab report --db {db} --output report.html"]}


def _demo_monitor(db: PathLike) -> dict[str, Any]:
    import datetime as _dt

    with Store.open(db, must_exist=True, read_only=True) as store:
        last = store.execute("SELECT max(date) FROM sales")[0][0]
    as_of = last + _dt.timedelta(days=7)
    result = monitor(db, as_of=as_of)
    checks = ", ".join(f"{c.name} {c.status}" for c in result.checks)
    return {"status": result.status,
            "lines": [f"monitoring as of {as_of} (the week after the last sales week): "
                      f"{result.status} ({checks})",
                      f"see: pricelab monitor --db {db} --as-of {as_of}  (exit 1 on an alert)"]}


_DEMO_STEPS.append(("report", _demo_report))
_DEMO_STEPS.append(("monitor", _demo_monitor))
