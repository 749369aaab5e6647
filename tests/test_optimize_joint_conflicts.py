"""Conflicts only the joint candidate MILP finds (each constraint feasible on its own) give a
partial plan like the other conflicts: the rows of the links the slack MILP names stay at
their current price with status=conflict and the constraint in reason; the rest is the plan
of the problem without those rows; the CLI exits by the conflicts policy."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml

from pricelab.errors import InfeasibleError
from pricelab.optimize import optimize
from tests._optimize_data import demand

BOUNDS = {"max_increase_pct": 20, "max_decrease_pct": 20}
VOLUME = {"where": {"category": "bags"}, "min_volume_pct": 125}
BUDGET = {"where": {"category": "bags"}, "max_avg_change_pct": 0.5}
CONS = {"bounds": BOUNDS, "overrides": [{**VOLUME, **BUDGET}]}


def _df() -> pl.DataFrame:
    return demand(4, markets=("US", "GB"), seed=1)


def test_each_constraint_alone_is_feasible_but_not_both() -> None:
    df = _df()
    optimize(df, {"bounds": BOUNDS, "overrides": [VOLUME]})
    optimize(df, {"bounds": BOUNDS, "overrides": [BUDGET]})
    with pytest.raises(InfeasibleError, match="cannot be met together"):
        optimize(df, CONS)


def test_joint_conflict_keeps_its_rows_and_prices_the_rest() -> None:
    df = _df()
    plan = optimize(df, CONS, conflicts="keep")
    t = plan.table
    bags = (t["category"] == "bags").to_numpy()
    assert (t["status"].to_numpy()[bags] == "conflict").all()
    assert (t["status"].to_numpy()[~bags] == "optimized").all()
    assert all("cannot be met together" in r for r in t["reason"].to_numpy()[bags])
    assert all("(category=bags)" in r for r in t["reason"].to_numpy()[bags])
    p = t["recommended_price"].to_numpy()
    assert np.array_equal(p[bags], t["current_price"].to_numpy()[bags])
    shoes = optimize(df.filter(pl.col("category") == "shoes"), CONS)
    assert np.allclose(p[~bags], shoes.table["recommended_price"].to_numpy(), rtol=1e-9)
    assert [c["item_id"] for c in plan.extra["conflicts"]] == ["IT-1", "IT-1", "IT-3", "IT-3"]


def test_cli_lists_joint_conflicts_and_exits_by_policy(
    cli: Callable[..., Any], tmp_path: Path
) -> None:
    path = tmp_path / "d.csv"
    _df().write_csv(path)
    cons = tmp_path / "c.yaml"
    cons.write_text(yaml.safe_dump(CONS))
    res = cli("optimize", "--demand", path, "--constraints", cons, "--json")
    assert res.exit_code == 1, res.stderr
    doc: dict[str, Any] = json.loads(res.stdout)
    assert len(doc["conflicts"]) == 4
    ok = cli("optimize", "--demand", path, "--constraints", cons, "--allow-conflicts")
    assert ok.exit_code == 0, ok.stderr
