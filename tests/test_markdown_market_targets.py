"""Per-market sell-through targets (overrides.market) against brute force and the CLI."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pricelab.errors import InfeasibleError
from pricelab.markdown import load_markdown_config, solve_markdown
from tests.test_markdown_solver import brute_force_with_floors, check_plan, make


def brute_force_market(prob, market: str, need: float) -> float:
    """The brute-force optimum with the market's sales >= need."""
    return brute_force_with_floors(prob, [(prob.market == market, need)])


@pytest.mark.parametrize(("seed", "pct"), [(302, 75.0), (306, 85.0), (309, 95.0)])
def test_market_target_against_brute_force(seed: int, pct: float) -> None:
    """One item in three markets sharing its stock; market M0 must sell pct% of its share.
    The plan meets it, is within 1e-4 of the brute-force optimum with that gap proven, and
    the bound is not below that optimum."""
    rng = np.random.default_rng(seed)
    prob = make(rng, 1, 3, 3, [0, 25, 50], milp_max_pools=0)
    prob.pool_stock = prob.pool_stock * 1.4  # enough stock that M0's target binds
    prob.config = replace(prob.config, market_rules={"M0": {"sell_through_min_pct": pct}})
    _, _, units = prob.market_targets()
    sol = solve_markdown(prob)
    check_plan(prob, sol)  # the proven gap is within the tolerance (1e-4)
    sold_m0 = sol.outcome.sales[prob.market == "M0"].sum()
    assert sold_m0 >= units[0] - 1e-5
    best = brute_force_market(prob, "M0", float(units[0]))
    assert sol.upper_bound >= best * (1 - 1e-7)
    assert sol.value <= best * (1 + 1e-7)
    assert sol.value >= best * (1 - 1e-4)
    assert sol.target_names[-1] == "market M0"
    assert sol.target_multiplier[-1] > 0  # the target binds: without it M0 sells less


def test_market_target_infeasible_names_the_market() -> None:
    rng = np.random.default_rng(5)
    prob = make(rng, 2, 2, 3, [0, 10])
    prob.pool_stock = prob.pool_stock * 50
    prob.config = replace(prob.config, market_rules={"M1": {"sell_through_min_pct": 95.0}})
    with pytest.raises(InfeasibleError, match="market 'M1'"):
        solve_markdown(prob)


def test_market_override_parsed_and_checked() -> None:
    cfg = load_markdown_config({"overrides": {"market": {"US": {"sell_through_min_pct": 70}}}})
    assert cfg.market_target_for("US") == 70.0 and cfg.market_target_for("GB") is None
    from pricelab.errors import ConfigError

    with pytest.raises(ConfigError, match="max_discount_pct"):
        load_markdown_config({"overrides": {"market": {"US": {"max_discount_pct": 30}}}})
