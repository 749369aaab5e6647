"""``simulate``: run every scenario of a file against the stored history and elasticities."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from pricelab.demand.from_store import cross_table
from pricelab.errors import UsageError
from pricelab.store import Store, record_run
from pricelab.store.runs import FingerprintAhead, fingerprint_ahead, settled

from .aggregate import ALL, aggregate, market_category_levels
from .agree import describe, plan_checks
from .cross import with_cross
from .project import ChangeApplier, project_rows, resolve_estimates, resolve_plan
from .scenario import ScenarioFile, load_scenario
from .window import baseline_window

SCENARIO_COLUMNS = [
    "scenario",
    "item_id",
    "market",
    "baseline_price",
    "scenario_price",
    "baseline_quantity",
    "scenario_quantity",
    "quantity_low",
    "quantity_high",
    "baseline_revenue",
    "scenario_revenue",
    "baseline_profit",
    "scenario_profit",
]
EXTRA_COLUMNS = [
    "category",
    "fx_rate",
    "unit_cost",
    "elasticity",
    "std_error",
    "price_change_pct",
    "revenue_low",
    "revenue_high",
    "profit_low",
    "profit_high",
    "seasonal_factor",
    "cannibalised_quantity",
]


#: whether there are sales, the baseline window's dates (one parameter: weeks; as
#: :func:`pricelab.demand.baseline.window_dates`) and the base currency, in one query
_FACTS_SQL = (
    "SELECT count(*), CAST(max(date) - to_days(CAST(? AS INTEGER) * 7) AS DATE), max(date), "
    "(SELECT value FROM meta WHERE key = 'base_currency') FROM sales"
)


@dataclass
class SimulationResult:
    """What-if projections of one scenario file.

    Attributes
    ----------
    table : polars.DataFrame
        One row per scenario × item × market: the contract's scenario columns (market
        currency, over the horizon; low/high a 90% interval) then ``category, fx_rate,
        unit_cost, elasticity, std_error, price_change_pct, revenue_low, revenue_high,
        profit_low, profit_high, seasonal_factor`` (the multiplier that moved the window's
        average units to the horizon's season; 1.0 when not adjusted) and
        ``cannibalised_quantity`` (with a cross estimate run: the units a row gains or
        loses from its siblings' price changes, included in ``scenario_quantity``; 0
        otherwise; see :mod:`pricelab.simulate.cross`).
    aggregates : polars.DataFrame
        One row per scenario × market × category, per scenario × market (category
        ``(all)``) and per scenario (both ``(all)``), money in the base currency,
        intervals from summed draws (null with ``draws=0``).
    warnings : list of str
        Filters that matched nothing, rows without elasticities, plans made against other prices.
    """

    table: pl.DataFrame
    aggregates: pl.DataFrame
    warnings: list[str]
    scenario: ScenarioFile
    estimates_run: str
    plan_runs: dict[str, str]
    draws: int
    seed: int
    base_currency: str = "EUR"
    run_id: str | None = None
    window: dict[str, Any] = field(default_factory=dict)
    seasonality: dict[str, Any] = field(default_factory=dict)
    plan_checks: list[dict[str, Any]] = field(default_factory=list)

    def to_polars(self) -> pl.DataFrame:
        """The per-row scenario table."""
        return self.table

    def totals(self) -> pl.DataFrame:
        """One row per scenario: the overall aggregate."""
        return self.aggregates.filter((pl.col("market") == ALL) & (pl.col("category") == ALL))

    @property
    def summary(self) -> str:
        """Readable text: each scenario's units, revenue and profit against the baseline."""
        lines = [
            f"What-if simulation: {len(self.scenario.scenarios)} scenario(s), "
            f"{self.table['item_id'].n_unique() if self.table.height else 0} items, "
            f"horizon {self.scenario.horizon_weeks} weeks, baseline last "
            f"{self.scenario.baseline_weeks} weeks; estimates run {self.estimates_run}; "
            + (
                f"90% intervals from {self.draws} elasticity draws"
                if self.draws
                else "no aggregate intervals (draws=0)"
            )
            + f"; money in {self.base_currency}"
        ]
        if self.seasonality.get("applied"):
            lines.append(
                f"  baseline seasonality-adjusted ({', '.join(self.seasonality['terms'])}"
                f") for {self.seasonality['adjusted_rows']} row(s)"
            )
        for r in self.totals().iter_rows(named=True):
            parts = []
            for k in ("quantity", "revenue", "profit"):
                lo, hi = r[f"{k}_low"], r[f"{k}_high"]
                ival = f", 90% {lo:,.0f} to {hi:,.0f}" if self.draws else ""
                parts.append(f"{k} {r[f'scenario_{k}']:,.0f} ({r[f'{k}_delta_pct']:+.1f}%{ival})")
            lines.append(f"  {r['scenario']}: " + "; ".join(parts))
        if self.plan_checks:
            lines.append("plan vs optimize:")
            lines += [describe(c) for c in self.plan_checks]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (for ``--json``): parameters, totals, aggregates, warnings."""
        return {
            "run_id": self.run_id,
            "estimates_run": self.estimates_run,
            "plan_runs": self.plan_runs,
            "draws": self.draws,
            "seed": self.seed,
            "base_currency": self.base_currency,
            "window": self.window,
            "seasonality": self.seasonality,
            "scenario": self.scenario.to_dict(),
            "rows": self.table.height,
            "totals": self.totals().to_dicts(),
            "aggregates": self.aggregates.to_dicts(),
            "warnings": self.warnings,
            "plan_checks": self.plan_checks,
        }


def simulate(
    store: Store,
    scenario: str | os.PathLike[str] | dict[str, Any] | ScenarioFile,
    *,
    estimates: str | None = None,
    draws: int = 1000,
    seed: int = 0,
    record: bool = True,
    engine: str = "local",
    source: Any = None,
    spark: Any = None,
    inputs: FingerprintAhead | None = None,
) -> SimulationResult:
    """Project every scenario of ``scenario`` from the baseline window with stored elasticities.

    Parameters
    ----------
    store : Store
        An open, writable pricelab database with sales and at least one estimate run.
    scenario : path, dict or ScenarioFile
        The scenario file (see :func:`pricelab.simulate.load_scenario`).
    estimates : str, optional
        Run id of the ``estimate`` run to use; the newest when None or ``latest``.
    draws : int
        Elasticity draws (normal with the estimate's standard error) for aggregate intervals;
        0 skips them (point projections and per-row intervals only, the fastest path).
    seed : int
        Seed of the draws; equal seeds give equal intervals.
    record : bool
        Store the result as a ``simulate`` run (tables ``scenarios`` and
        ``scenario_totals``); parents are the estimate run and any plan runs.
    engine : {"local", "spark"}
        Where the baseline window is aggregated: ``local`` from the store's sales (DuckDB),
        ``spark`` from ``source`` (see :func:`pricelab.simulate.window.baseline_window`);
        the projection and draws run here either way.
    source : path or table name, optional
        The sales history the ``spark`` engine reads (Parquet file or folder,
        ``delta:PATH`` or a table); the store then only needs the estimates.
    spark : SparkSession, optional
        Session for the ``spark`` engine (default: active, else a new local one).
    inputs : FingerprintAhead, optional
        The store's input fingerprint, already being taken
        (:func:`pricelab.store.runs.fingerprint_ahead`; the caller settles it); by default
        a recorded run starts taking it as it inserts its rows.

    Returns
    -------
    SimulationResult

    Raises
    ------
    ConfigError
        The scenario file is invalid (names key and line).
    UsageError
        A filter names an unknown market, or ``draws`` < 1.
    NotFoundError
        No estimate run / plan run as referenced.
    EmptyStoreError
        No sales loaded.
    """
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 0:
        raise UsageError(f"draws must be a whole number >= 0, got {draws!r}")
    spec = load_scenario(scenario)
    names = set(store.table_names())  # one catalog query for the whole call
    dates, currency = None, None
    if engine == "local" and source is None:
        n_sales, *dates, currency = (0, None, None, None)
        if "sales" in names:  # one query: any sales, the window's dates, the base currency
            n_sales, *dates, currency = store.execute(_FACTS_SQL, [spec.baseline_weeks])[0]
        if not n_sales:
            store.require_sales()  # raises EmptyStoreError with the store's message
    est_run = resolve_estimates(store, estimates, tables=names)
    plan_runs: dict[str, str] = {}
    plans: dict[str, pl.DataFrame] = {}
    for ref in spec.plan_refs:
        plan_runs[ref], plans[ref] = resolve_plan(store, ref)
    with settled(inputs):  # a caller's fingerprint cursor must not outlive a failed command
        base, season, window = baseline_window(
            store,
            spec,
            est_run,
            engine=engine,
            source=source,
            spark=spark,
            tables=names,
            dates=dates,
        )
        if season.applied:
            base = base.with_columns(
                pl.col("baseline_units") * pl.Series(season.factor),
                pl.Series("seasonal_factor", season.factor),
            )
        else:  # every factor is 1.0: the units stay as they are
            base = base.with_columns(pl.lit(1.0).alias("seasonal_factor"))
        applier = ChangeApplier(store, base, plans, tables=names)
        warnings: list[str] = list(season.warnings)
        n_no_e = base["elasticity"].null_count() + int(base["elasticity"].is_nan().sum())
        cross = cross_table(store, est_run, tables=names)
        levels = market_category_levels(base)  # the same groups for every scenario
        tables, aggs = [], []
        for s in spec.scenarios:
            new_price = applier.prices(s)
            proj = with_cross(project_rows(base, new_price, spec.horizon_weeks), cross)
            q = proj["scenario_quantity"]
            n_miss = q.null_count() + int(q.is_nan().sum())
            if n_miss:
                warnings.append(
                    f"scenario '{s.name}': {n_miss} changed row(s) have no elasticity "
                    f"in estimate run {est_run}; they are left out of the totals"
                )
            tables.append(_rows(s.name, proj))
            aggs.append(
                aggregate(proj, draws=draws, seed=seed, levels=levels).with_columns(
                    pl.lit(s.name).alias("scenario")
                )
            )
        for ref, plan in plans.items():
            cmp = base.join(plan, on=["item_id", "market"], how="inner").filter(
                (pl.col("current_price") / pl.col("baseline_price") - 1).abs() > 0.005
            )
            if cmp.height:
                warnings.append(
                    f"plan run {plan_runs[ref]}: current_price differs from the baseline "
                    f"price by more than 0.5% for {cmp.height} row(s); the scenario "
                    "applies the plan's recommended prices to the baseline"
                )
        warnings = applier.warnings + warnings
        if n_no_e:
            warnings.append(
                f"{n_no_e} item × market row(s) have no elasticity in estimate run {est_run}"
            )
        table = pl.concat(tables)
        agg = pl.concat(aggs).select("scenario", pl.exclude("scenario"))
        if draws == 0:
            agg = agg.with_columns(
                pl.col(f"{k}_{b}").fill_nan(None)
                for k in ("quantity", "revenue", "profit")
                for b in ("low", "high")
            )
        res = SimulationResult(
            table,
            agg,
            warnings,
            spec,
            est_run,
            plan_runs,
            draws,
            seed,
            (currency if dates is not None else store.meta("base_currency")) or "EUR",
            window=window,
            seasonality=season.to_dict(),
        )
        res.plan_checks = plan_checks(
            store, spec, plan_runs, res.totals(), est_run, bool(season.to_dict().get("applied"))
        )
        if record:
            params = {
                "scenario": spec.to_dict(),
                "source": spec.source,
                "estimates": est_run,
                "draws": draws,
                "seed": seed,
            }
            if engine != "local" or source is not None:
                params.update(engine=engine, sales_source=str(source))
            run = record_run(
                store, "simulate", params, parents=[est_run, *dict.fromkeys(plan_runs.values())]
            )
            # simulate writes no input table: the run's input fingerprint (a scan of every
            # sales row on its own cursor, both cores) is taken while the rows are inserted,
            # which DuckDB does on one core; settled before the store closes
            ahead = fingerprint_ahead(store) if inputs is None else inputs
            run.inputs = ahead
            with settled(ahead), store.transaction():
                store.write_result("scenarios", table, run.run_id)
                store.write_result("scenario_totals", agg, run.run_id)
                run.finish(
                    {
                        "totals": res.totals().to_dicts(),
                        "warnings": warnings,
                        "rows": table.height,
                        "plan_checks": res.plan_checks,
                    }
                )
            res.run_id = run.run_id
        return res


def _rows(name: str, proj: pl.DataFrame) -> pl.DataFrame:
    return (
        proj.with_columns(
            pl.lit(name).alias("scenario"),
            (100.0 * (pl.col("scenario_price") / pl.col("baseline_price") - 1.0)).alias(
                "price_change_pct"
            ),
        )
        .select(*SCENARIO_COLUMNS, *EXTRA_COLUMNS)
        .with_columns(pl.col(pl.Float64).fill_nan(None))
    )
