"""A stored plan simulated with ``plan_run`` reproduces the plan's expected quantities:
optimize and simulate share one baseline (last price, elasticity-adjusted units, seasonality)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pricelab import api
from pricelab._resources import sample_dir
from tests.conftest import copy_db


@pytest.mark.parametrize("seasonality", ["auto", "off"])
def test_plan_quantities_reproduced_by_simulation(
    tmp_path: Path, seasonality: str, estimated_template: Path
) -> None:
    db = copy_db(estimated_template, tmp_path / "s.duckdb")
    run = api.optimize(db, constraints=sample_dir() / "constraints.yaml", seasonality=seasonality)
    plan = run.plan.table
    scenario = {
        "baseline_weeks": 8,
        "horizon_weeks": 4,
        "baseline_price": "current",
        "seasonality": seasonality,
        "scenarios": [{"name": "plan", "plan_run": run.run_id}],
    }
    sim = api.simulate(db, scenario, draws=0).table
    joined = plan.join(sim, on=["item_id", "market"], how="inner")
    assert joined.height == plan.height
    assert joined["scenario_price"].to_list() == pytest.approx(
        joined["recommended_price"].to_list(), rel=1e-12
    )
    assert joined["scenario_quantity"].to_list() == pytest.approx(
        joined["expected_quantity"].to_list(), rel=1e-9
    )
    assert joined["baseline_quantity_right"].to_list() == pytest.approx(
        joined["baseline_quantity"].to_list(), rel=1e-9
    )
    if seasonality == "auto":
        assert (sim["seasonal_factor"] != 1.0).any()
    assert isinstance(plan, pl.DataFrame)
