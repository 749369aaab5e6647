"""``optimize`` and ``simulate`` state the same uplift for the same plan, or say why not
(on the sample: +9.5% both with the plan's baseline; +5.8% against the window's average
price, and simulate says that is why)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pricelab import api
from pricelab._resources import sample_dir
from tests.conftest import copy_db


@pytest.fixture(scope="module")
def planned(tmp_path_factory: pytest.TempPathFactory, estimated_template: Path) -> tuple[Path, Any]:
    db = copy_db(estimated_template, tmp_path_factory.mktemp("agree") / "s.duckdb")
    return db, api.optimize(db, constraints=sample_dir() / "constraints.yaml")


def _simulate(db: Path, run_id: str, **over: Any) -> Any:
    sc = {"baseline_weeks": 8, "horizon_weeks": 4, "baseline_price": "current"}
    model = over.pop("model", None)  # elasticities from another estimate run
    estimates = api.estimate(db, model=model).run_id if model else None
    sc.update(over)
    sc["scenarios"] = [{"name": "plan", "plan_run": run_id}]
    return api.simulate(db, sc, draws=0, estimates=estimates)


def test_same_set_up_same_uplift(planned: tuple[Path, Any]) -> None:
    db, run = planned
    sim = _simulate(db, run.run_id)
    (check,) = sim.plan_checks
    assert check["agree"] and check["why"] == []
    assert check["simulate_pct"] == pytest.approx(run.plan.uplift_pct, abs=1e-6)
    assert check["optimize_pct"] == pytest.approx(run.plan.uplift_pct, abs=1e-9)
    assert f"profit {run.plan.uplift_pct:+.1f}%, as optimize run {run.run_id} stated" in sim.summary
    assert sim.to_dict()["plan_checks"] == sim.plan_checks


@pytest.mark.parametrize(
    "over, why",
    [
        ({"baseline_price": "average"}, "window's average price (baseline_price: average)"),
        ({"model": "ols"}, "elasticities from estimate run"),
    ],
)
def test_a_different_set_up_says_why(planned: tuple[Path, Any], over: dict, why: str) -> None:
    db, run = planned
    sim = _simulate(db, run.run_id, **over)
    (check,) = sim.plan_checks
    assert not check["agree"]
    assert abs(check["simulate_pct"] - run.plan.uplift_pct) > 0.05
    assert any(why in w for w in check["why"]), check["why"]
    assert f"stated by optimize run {run.run_id}, because" in sim.summary
