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
