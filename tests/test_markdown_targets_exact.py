"""Tight sell-through targets (per market, per category, both) solved to the proven gap:
plans against brute force and an independent whole-problem HiGHS MILP
(``tests/markdown_reference.py``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pricelab.errors import InfeasibleError
from pricelab.markdown import solve_markdown
from pricelab.markdown.targets import covers
from tests.markdown_reference import reference_milp
from tests.test_markdown_solver import brute_force_with_floors, check_plan, make


def with_targets(prob, market=None, category=None, n_cat=1):
    """Categories c0..c{n_cat-1} by pool; ``market``/``category``: name -> percent."""
    prob.category = np.array([f"c{p % n_cat}" for p in prob.pool], dtype=object)
    rules = {k: {"sell_through_min_pct": v} for k, v in (market or {}).items()}
    cats = {k: {"sell_through_min_pct": v} for k, v in (category or {}).items()}
    return replace(prob, config=replace(prob.config, market_rules=rules, category_rules=cats))


def brute_force_covers(prob) -> float:
    """The brute-force optimum with every target's rows selling at least its units."""
    cov = covers(prob)
    return brute_force_with_floors(prob, list(zip(cov.masks, cov.units, strict=True)))


def check_targets(prob, sol) -> None:
    """The plan meets every target, the solution reports each as met, the gap is proven."""
    check_plan(prob, sol)
    cov = covers(prob)
    sold = cov.sold(sol.outcome.sales)
    assert (sold >= cov.units - 1e-5).all(), (cov.names, sold, cov.units)
    assert sol.gap <= 1e-4


def tight(prob, market=(), n_cat=1, cat_frac=None, market_frac=0.6):
    """Targets a share ``frac`` of the way from the untargeted plan's sell-through to the
    most the target's rows can sell: they bind."""
    from pricelab.markdown.targets import most_demand

    free = solve_markdown(with_targets(prob, n_cat=n_cat))
    d_max = most_demand(prob)
    n = len(prob.pool_stock)
    half = with_targets(prob, {m: 50.0 for m in market}, n_cat=n_cat)
    row_t, names, units = half.market_targets()
    mk = {}
    for g, m in enumerate(names):
        sel = row_t == g
        stock_m = units[g] / 0.5
        most = np.minimum(
            np.bincount(prob.pool[sel], weights=d_max[sel], minlength=n), prob.pool_stock
        )
        now = free.outcome.sales[sel].sum()
        mk[m] = 100 * min(now + market_frac * (most.sum() - now), stock_m) / stock_m
    cats = {}
    if cat_frac is not None:
        cat_of = half.category
        for j in range(n_cat):
            pools = np.unique(prob.pool[cat_of == f"c{j}"])
            per = np.minimum(np.bincount(prob.pool, weights=d_max, minlength=n), prob.pool_stock)
            now = free.outcome.sold[pools].sum()
            cats[f"c{j}"] = (
                100 * (now + cat_frac * (per[pools].sum() - now)) / prob.pool_stock[pools].sum()
            )
    out = with_targets(prob, mk, cats, n_cat)
    assert not covers(out).met(free.outcome.sales)  # the targets bind
    return out


@pytest.mark.parametrize(("seed", "weeks", "ladder"), [(302, 2, [0, 25, 50]), (306, 3, [0, 40])])
def test_market_and_category_targets_against_brute_force(seed: int, weeks: int, ladder) -> None:
    """Two items in two markets sharing each item's stock: a market target and a category
    target that both bind; the plan is the brute-force optimum, the bound not below it."""
    rng = np.random.default_rng(seed)
    prob = make(rng, 2, 2, weeks, ladder, milp_max_pools=0)
    prob.pool_stock = prob.pool_stock * 1.4
    prob = tight(prob, market=["M0"], cat_frac=0.5)
    sol = solve_markdown(prob)
    check_targets(prob, sol)
    best = brute_force_covers(prob)
    assert sol.upper_bound >= best * (1 - 1e-7)
    assert sol.value == pytest.approx(best, rel=1e-6)


CASES = {
    # name: (seed, items, markets, weeks, ladder, min weeks, markets targeted, categories, cat)
    "one item, market target": (302, 1, 3, 4, [0, 25, 50], 1, ["M0"], 1, None),
    "shared stock, market target": (11, 4, 3, 5, [0, 20, 40], 1, ["M0"], 1, None),
    "two markets and two categories": (14, 4, 3, 4, [0, 15, 30, 45], 2, ["M0", "M2"], 2, 0.5),
}


@pytest.mark.parametrize("name", list(CASES))
def test_tight_targets_against_whole_problem_milp(name: str) -> None:
    """Shared stock, tight market (and category) targets: the plan is within 1e-4 of the
    independent whole-problem MILP's optimum, the bound is not below it, and the plan meets
    every target, is on the ladder, never up, within stock."""
    seed, items, markets, weeks, ladder, mw, mk, n_cat, cat = CASES[name]
    rng = np.random.default_rng(seed)
    prob = make(rng, items, markets, weeks, ladder, min_weeks_between_changes=mw)
    prob.pool_stock = np.round(prob.pool_stock * 1.3)
    prob = tight(prob, market=mk, n_cat=n_cat, cat_frac=cat)
    sol = solve_markdown(prob)
    check_targets(prob, sol)
    ref = reference_milp(prob)
    assert ref is not None
    best, _, _ = ref
    assert sol.upper_bound >= best * (1 - 1e-7)
    assert sol.value >= best * (1 - 1e-4)
    assert sol.value <= best * (1 + 1e-7)


def test_targets_that_cannot_be_met_together_are_named() -> None:
    """Two items in two markets; item I1 has little demand even at the deepest discount.
    Each market's 90% target can be met alone (it takes most of I0's stock), not both;
    exit 1 naming both (the MILP agrees there is no plan)."""
    from pricelab.markdown.targets import most_demand

    rng = np.random.default_rng(4)
    prob = make(rng, 2, 2, 3, [0, 25, 50])
    prob.demand = (
        prob.demand * (np.array([100.0, 100.0, 5.0, 5.0]) / most_demand(prob))[:, None, None]
    )
    prob.pool_stock = np.array([100.0, 40.0])
    prob = with_targets(prob, {"M0": 90.0, "M1": 90.0})
    for m in ("M0", "M1"):  # each alone has a plan
        assert reference_milp(with_targets(prob, {m: 90.0})) is not None
    assert reference_milp(prob) is None
    with pytest.raises(InfeasibleError, match="market 'M0', market 'M1'"):
        solve_markdown(prob)


def test_market_met_alone_is_priced_when_another_pushes_it_out() -> None:
    """Market M1 meets its target at no multiplier, but once M0's target draws the shared
    stock M1 falls short: M1 gets a multiplier too and both targets are met."""
    rng = np.random.default_rng(12)
    prob = make(rng, 6, 3, 6, [0, 10, 20, 30, 40], min_weeks_between_changes=2)
    prob.pool_stock = np.round(prob.pool_stock * 1.3)
    prob = with_targets(prob, {"M0": 86.4, "M1": 80.0})
    sol = solve_markdown(prob)
    check_targets(prob, sol)


def test_category_targets_gap_closed_without_the_pools_milp() -> None:
    """Two tight category targets, the per-pool MILP off: the Lagrangian plan leaves a gap
    above the tolerance (4e-3); the swing-pool repair and the whole-problem MILP close it to
    the independent MILP's optimum, the bound not below it."""
    rng = np.random.default_rng(54)
    prob = make(rng, 3, 3, 4, [0, 15, 30, 45], min_weeks_between_changes=2, milp_max_pools=0)
    prob.pool_stock = np.round(prob.pool_stock * 1.3)
    prob = tight(prob, n_cat=2, cat_frac=0.6)
    sol = solve_markdown(prob)
    assert sol.stats["gap_search"] > 1e-3  # the case needs the repair
    check_targets(prob, sol)
    best, _, _ = reference_milp(prob)
    assert sol.upper_bound >= best * (1 - 1e-7)
    assert sol.value >= best * (1 - 1e-4)
    assert sol.value <= best * (1 + 1e-7)
