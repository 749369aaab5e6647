"""What-if simulation against the history in DuckDB, and backtests of the demand models.

``load_scenario`` parses a scenario file, ``simulate`` projects its scenarios from the
baseline window with stored elasticities, and ``backtest`` fits models before a cutoff and
scores their predictions after it.
"""

from pricelab.demand.baseline import baseline
from pricelab.demand.baseline import window_sql as baseline_sql

from .backtest import BacktestResult, backtest
from .scenario import Change, Scenario, ScenarioFile, load_scenario, loads_scenario
from .simulation import SCENARIO_COLUMNS, SimulationResult, simulate

__all__ = [
    "SCENARIO_COLUMNS",
    "BacktestResult",
    "Change",
    "Scenario",
    "ScenarioFile",
    "SimulationResult",
    "backtest",
    "baseline",
    "baseline_sql",
    "load_scenario",
    "loads_scenario",
    "simulate",
]


def _simulate_db(db, scenario, **kwargs):  # type: ignore[no-untyped-def]
    """``pricelab.simulate(db, scenario)``: the scenario table as a polars frame."""
    from pricelab import api

    return api.simulate(db, scenario, **kwargs).table


# ``pricelab.simulate(db, scenario)`` (see pricelab/_callable.py)
from pricelab._callable import make_callable  # noqa: E402

make_callable(__name__, _simulate_db)
