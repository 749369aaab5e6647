"""Volume floors and stock on the cross route: a row's dedicated stock is a limit on its units
under the cross demand (its siblings' prices move them), not a price floor from its own curve;
what cannot be met is named with its shortfall on the candidate prices (exit 1). Checked
against brute force over every ladder plan."""

from __future__ import annotations

import itertools
import re

import numpy as np
import polars as pl
import pytest

from pricelab.demand.curves import CrossElasticity
from pricelab.optimize.cross import optimize_cross
from tests._cross_cases import brute, category, ladder

CONS = {
    "horizon_weeks": 4,
    "bounds": {"max_increase_pct": 30, "max_decrease_pct": 30},
    "min_margin_pct": 20,
    "ladder": {"step": 5},
}


def every_plan(demand: pl.DataFrame, cons: dict) -> tuple[np.ndarray, np.ndarray]:
    """Every ladder plan within the bounds and margin floor, and its weekly units."""
    p0, c = demand["base_price"].to_numpy(), demand["unit_cost"].to_numpy()
    b, m = cons["bounds"], cons.get("min_margin_pct", 0)
    grids = [
        ladder(
            max(p * (1 - b["max_decrease_pct"] / 100), f), p * (1 + b["max_increase_pct"] / 100), 5
        )
        for p, f in zip(p0, c / (1 - m / 100), strict=True)
    ]
    return np.array(list(itertools.product(*grids))), grids  # type: ignore[return-value]


def test_dedicated_stock_is_met_through_the_siblings_prices() -> None:
    # A/US may sell 160 units in 4 weeks: on its own curve that needs a price of 135.7, above
    # its +30% cap (130); under the cross demand cheaper siblings take enough of its buyers
    demand, cross = category()
    demand = demand.with_columns(stock=pl.Series([160.0, None, None]))
    cons = {**CONS, "inventory": True}
    plan = optimize_cross(demand, cross, cons)
    best, arg = brute(demand, cross, cons, lambda p, q: 4 * q[0] <= 160 * (1 + 1e-12))
    p = plan.table["recommended_price"].to_numpy()
    assert plan.objective == pytest.approx(best, rel=1e-9)
    assert p == pytest.approx(arg)
    q = CrossElasticity.from_tables(demand, cross).quantity(p)
    assert 4 * q[0] <= 160 * (1 + 1e-9) and p[0] <= 130 + 1e-9
    free = optimize_cross(demand, cross, CONS).table["recommended_price"].to_numpy()
    assert (p[1:] < free[1:]).all()  # the stock binds: the siblings are cheaper for it
    # the own curve alone would have called it infeasible: A needs 135.7 > 130 without help
    assert 100 * (160 / 400) ** (1 / -3.0) > 130


def _cli_plan(tmp_path, cli, demand, cross, yaml: str):
    demand.write_csv(tmp_path / "demand.csv")
    cross.write_csv(tmp_path / "cross.csv")
    (tmp_path / "c.yaml").write_text(yaml)
    return cli(
        "optimize", "--demand", tmp_path / "demand.csv", "--cross", tmp_path / "cross.csv",
        "--constraints", tmp_path / "c.yaml",
    )  # fmt: skip


YAML = (
    "horizon_weeks: 4\nbounds: {max_increase_pct: 30, max_decrease_pct: 30}\n"
    "min_margin_pct: 20\nladder: {step: 5}\n"
)


def test_unreachable_stock_is_named_with_its_excess(tmp_path, cli) -> None:
    demand, cross = category()
    demand = demand.with_columns(stock=pl.Series([40.0, None, None]))
    r = _cli_plan(tmp_path, cli, demand, cross, YAML + "inventory: true\n")
    P, _ = every_plan(demand, CONS)
    least = 4 * CrossElasticity.from_tables(demand, cross).quantity(P)[:, 0].min()
    assert r.exit_code == 1, r.stdout + r.stderr
    out = " ".join((r.stdout + r.stderr).split())
    want = (
        f"infeasible: inventory (A/US, stock 40) (over its limit by {100 * (least / 40 - 1):.2f}%)"
        " cannot be met under cross-price demand within the row limits on the candidate prices"
    )
    assert want in out
    assert "B/US" not in out and "C/US" not in out  # only the conflicting stock is named


def test_unreachable_volume_floor_is_named_with_its_shortfall(tmp_path, cli) -> None:
    demand, cross = category()
    P, _ = every_plan(demand, CONS)
    most = CrossElasticity.from_tables(demand, cross).quantity(P).sum(axis=1).max()
    floor = int(100 * most / 300) + 5  # 5 points above the most units any ladder plan sells
    r = _cli_plan(tmp_path, cli, demand, cross, YAML + f"min_volume_pct: {floor}\n")
    assert r.exit_code == 1, r.stdout + r.stderr
    out = " ".join((r.stdout + r.stderr).split())
    short = 100 * (1 - most / (floor / 100 * 300))
    assert (
        f"infeasible: min_volume_pct {floor} (all rows) (short of its limit by {short:.2f}%) "
        "cannot be met under cross-price demand within the row limits on the candidate prices"
    ) in out
    # a floor the candidates reach is met, at the brute-force optimum
    reach = int(100 * most / 300) - 1
    plan = optimize_cross(demand, cross, {**CONS, "min_volume_pct": reach})
    best, _ = brute(demand, cross, CONS, lambda p, q: q.sum() >= reach / 100 * 300 * (1 - 1e-12))
    assert plan.objective == pytest.approx(best, rel=1e-9)


def test_volume_floor_and_stock_that_conflict_only_together_are_both_named(tmp_path, cli) -> None:
    demand, cross = category()
    P, _ = every_plan(demand, CONS)
    Q = CrossElasticity.from_tables(demand, cross).quantity(P)
    # A and C share 639 units; the most units the category sells within that is 150.1% of
    # today's, and 207.6% without it: a 160% floor conflicts with the pool, with neither alone
    pooled = 4 * (Q[:, 0] + Q[:, 2])
    assert Q.sum(axis=1)[pooled <= 639].max() < 1.6 * 300 < Q.sum(axis=1).max()
    assert pooled.min() < 639
    demand = demand.with_columns(
        stock=pl.Series([639.0, None, 639.0]), stock_pool=pl.Series(["AC", None, "AC"])
    )
    r = _cli_plan(
        tmp_path,
        cli,
        demand,
        cross,
        YAML + "inventory: true\nmin_volume_pct: 160\nmax_avg_change_pct: 40\n",
    )
    assert r.exit_code == 1, r.stdout + r.stderr
    out = " ".join((r.stdout + r.stderr).split())
    assert re.search(
        r"infeasible: min_volume_pct 160 \(all rows\) \(short of its limit by [\d.]+%\) and "
        r"inventory pool AC \(stock 639\) \(over its limit by [\d.]+%\) cannot be met "
        "together under cross-price demand on the candidate prices",
        out,
    )
    assert "max_avg_change_pct" not in out  # a constraint outside the conflict is not named
