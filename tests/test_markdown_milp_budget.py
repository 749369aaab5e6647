"""Markdown's exact MILP steps stop on node limits, so a plan does not depend on the
machine's speed; ``milp_seconds`` (opt-in) shares a wall-clock budget among them, and a plan
stopped by it is still valid and its reported gap is still proven."""

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


def test_a_set_budget_does_not_change_a_quick_plan() -> None:
    timed = solve_markdown(_problem(60.0))
    unlimited = solve_markdown(_problem(None))
    assert not timed.milp_time_limit
    np.testing.assert_array_equal(timed.path, unlimited.path)
    assert timed.value == unlimited.value


class _SlowClock:
    """``time`` for :mod:`pricelab.markdown.milp` on a machine where every look at the clock
    finds ``step`` seconds more gone by (a loaded machine, exaggerated)."""

    def __init__(self, step: float) -> None:
        self.step, self.now = step, 0.0

    def monotonic(self) -> float:
        self.now += self.step
        return self.now


def test_default_plan_does_not_depend_on_the_clock(monkeypatch) -> None:
    """Regression: the default ``milp_seconds: 60`` made the plan depend on machine speed
    (``test_market_met_alone_is_priced_when_another_pushes_it_out`` failed at load 20+ with
    a gap of 1.1-2.8e-4). With 100 s passing at every look at the clock the default run
    returns the quiet machine's plan and gap (the old default stopped its MILP at once);
    every MILP carries its node limit and the guard's clock."""
    import scipy.optimize

    from pricelab.markdown import milp

    quiet = solve_markdown(_problem(None))
    assert quiet.milp_pools >= 1  # the case runs a MILP
    calls: list[dict] = []
    real = scipy.optimize.milp

    def spy(*a, **k):
        calls.append(dict(k["options"]))
        return real(*a, **k)

    monkeypatch.setattr(scipy.optimize, "milp", spy)
    monkeypatch.setattr(milp, "time", _SlowClock(100.0))
    default = load_markdown_config({})
    prob = _problem(None)
    slow = solve_markdown(replace(prob, config=replace(prob.config, **_milp_keys(default))))
    assert calls and all(c["node_limit"] <= 5_000 for c in calls)
    assert all(c["time_limit"] >= milp.GUARD_SECONDS - 100 * (2 * len(calls) + 1) for c in calls)
    assert not slow.milp_time_limit
    np.testing.assert_array_equal(slow.path, quiet.path)
    assert (slow.value, slow.upper_bound, slow.gap) == (quiet.value, quiet.upper_bound, quiet.gap)
    monkeypatch.setattr(milp, "time", _SlowClock(100.0))  # a budget set: the clock stops it
    cut = solve_markdown(_problem(60.0))
    assert cut.milp_time_limit and cut.gap > quiet.gap


def _milp_keys(cfg) -> dict:
    return {k: getattr(cfg, k) for k in ("milp_nodes", "milp_max_pools", "milp_seconds")}


def test_config_key() -> None:
    assert load_markdown_config({}).milp_seconds is None  # node limits only by default
    assert load_markdown_config({"milp_seconds": None}).milp_seconds is None
    assert load_markdown_config({"milp_seconds": 5}).milp_seconds == 5.0
    with pytest.raises(ConfigError, match="milp_seconds"):
        load_markdown_config({"milp_seconds": -1})
