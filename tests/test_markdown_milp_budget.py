"""``milp_seconds``: the exact MILP steps of one markdown run share a wall-clock budget; a
plan stopped by it is still valid and its reported gap is still proven."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pricelab.errors import ConfigError
from pricelab.markdown import load_markdown_config, solve_markdown
from tests.test_markdown_solver import check_plan, make


def _problem(seconds: float | None):
    # seed 7, 10 items x 3 markets x 6 weeks: the Lagrangian leaves one pool open for the MILP
    prob = make(np.random.default_rng(7), 10, 3, 6, [0, 10, 20, 30, 40, 50])
    return replace(prob, config=replace(prob.config, milp_seconds=seconds))


def test_budget_spent_leaves_a_valid_plan_with_an_honest_gap() -> None:
    full = solve_markdown(_problem(None))
    assert full.milp_pools >= 1 and not full.milp_time_limit
    cut = solve_markdown(_problem(0.0))
    assert cut.milp_time_limit and cut.milp_pools == 0
    loose = _problem(0.0)  # every check of a plan but the gap, which is now above tolerance
    check_plan(replace(loose, config=replace(loose.config, gap_tolerance=1.0)), cut)
    assert cut.gap > loose.config.gap_tolerance >= full.gap
    assert cut.value <= full.value + 1e-9  # the MILP only improves the plan
    assert cut.upper_bound >= full.value - 1e-9  # the bound still bounds the best plan
    assert cut.gap >= full.gap
    assert cut.gap == pytest.approx((cut.upper_bound - cut.value) / abs(cut.upper_bound))


def test_default_budget_does_not_change_a_quick_plan() -> None:
    default = solve_markdown(_problem(60.0))
    unlimited = solve_markdown(_problem(None))
    assert not default.milp_time_limit
    np.testing.assert_array_equal(default.path, unlimited.path)
    assert default.value == unlimited.value


def test_config_key() -> None:
    assert load_markdown_config({}).milp_seconds == 60.0
    assert load_markdown_config({"milp_seconds": None}).milp_seconds is None
    assert load_markdown_config({"milp_seconds": 5}).milp_seconds == 5.0
    with pytest.raises(ConfigError, match="milp_seconds"):
        load_markdown_config({"milp_seconds": -1})
