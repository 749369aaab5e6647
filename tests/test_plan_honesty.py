"""Plans a person can trust: prices capped at the observed range (and flagged outside it),
skipped rows kept with their reason, revenue plans without costs, plain messages."""

from __future__ import annotations

import polars as pl
import pytest

from pricelab.errors import DataError
from pricelab.optimize import optimize


def _demand(**over: object) -> pl.DataFrame:
    row = {
        "item_id": ["TOTE-03"],
        "market": ["GB"],
        "elasticity": [-1.5],
        "base_price": [40.0],
        "base_quantity": [10.0],
        "unit_cost": [20.0],  # unconstrained optimum c e / (1 + e) = 60: +50%
        "min_price": [36.0],
        "max_price": [44.0],
    }
    row.update({k: [v] for k, v in over.items()})
    return pl.DataFrame(row)


def test_default_cap_is_the_observed_range_widened_by_20_pct() -> None:
    plan = optimize(_demand(), {"objective": "profit", "horizon_weeks": 4})
    r = plan.table.row(0, named=True)
    assert r["recommended_price"] == pytest.approx(44.0 * 1.2)
    assert r["binding"] == "max_extrapolation_pct"
    assert r["extrapolated"] is True and r["status"] == "optimized"


@pytest.mark.parametrize(
    "pct, price, extrapolated, binding",
    [(0, 44.0, False, "max_extrapolation_pct"), (50, 60.0, True, ""), (None, 60.0, True, "")],
)
def test_max_extrapolation_pct_is_configurable(
    pct: float | None, price: float, extrapolated: bool, binding: str
) -> None:
    """0: stay inside what was seen; 50: the closed-form optimum (60) lies within; null: off."""
    plan = optimize(_demand(), {"max_extrapolation_pct": pct})
    r = plan.table.row(0, named=True)
    assert r["recommended_price"] == pytest.approx(price)
    assert r["extrapolated"] is extrapolated and r["binding"] == binding


def test_cap_yields_to_a_margin_floor() -> None:
    """A margin floor above the widened range is a constraint: it holds, the row is flagged."""
    plan = optimize(_demand(unit_cost=45.0), {"min_margin_pct": 25})
    r = plan.table.row(0, named=True)
    assert r["recommended_price"] >= 45.0 / 0.75 * (1 - 1e-9)
    assert r["extrapolated"] is True


def test_inelastic_row_with_only_an_objective_is_capped_not_unbounded() -> None:
    """The issue's plan: only objective and horizon moved an inelastic row without limit."""
    plan = optimize(_demand(elasticity=-0.6), {"objective": "profit", "horizon_weeks": 4})
    r = plan.table.row(0, named=True)
    assert r["recommended_price"] == pytest.approx(52.8)
    assert r["binding"] == "max_extrapolation_pct"


def test_skipped_rows_stay_in_the_plan_with_a_reason() -> None:
    demand = pl.concat(
        [
            _demand(),
            _demand(item_id="MUG-02", elasticity=0.3),
            _demand(item_id="BAG-01", unit_cost=None),
        ],
        how="vertical_relaxed",
    )
    plan = optimize(demand, {"bounds": {"max_increase_pct": 10}})
    t = plan.table.sort("item_id")
    assert t["item_id"].to_list() == ["BAG-01", "MUG-02", "TOTE-03"]
    assert t["status"].to_list() == ["skipped", "skipped", "optimized"]
    assert t["reason"].to_list() == [
        "unit_cost missing or < 0",
        "elasticity >= 0 (no finite optimum)",
        "",
    ]
    skipped = t.filter(pl.col("status") == "skipped")
    assert (skipped["recommended_price"] == skipped["current_price"]).all()
    assert (skipped["expected_quantity"] == skipped["baseline_quantity"]).all()
    assert skipped["expected_profit"].to_list()[0] is None  # no cost: profit unknown
    doc = plan.to_dict()
    assert {s["item_id"] for s in doc["skipped"]} == {"BAG-01", "MUG-02"}
    assert "skipped 2 row(s)" in plan.summary


def test_without_costs_the_message_says_costs_are_missing() -> None:
    demand = pl.concat(
        [_demand(unit_cost=None), _demand(item_id="B", unit_cost=None)], how="vertical_relaxed"
    )
    with pytest.raises(DataError) as err:
        optimize(demand, {"objective": "profit"})
    assert str(err.value) == (
        "no unit costs: all 2 rows lack unit_cost, so profit cannot be optimised; load costs "
        "(pricelab ingest --costs F, or a unit_cost column in sales) or set 'objective: "
        "revenue' in the constraints file, which needs no costs"
    )


def test_revenue_objective_needs_no_costs() -> None:
    """Revenue p q with e = -1.5 falls as price rises: the optimum is the lowest allowed price."""
    demand = _demand(unit_cost=None)
    plan = optimize(demand, {"objective": "revenue", "bounds": {"max_decrease_pct": 10}})
    r = plan.table.row(0, named=True)
    assert r["status"] == "optimized"
    assert r["recommended_price"] == pytest.approx(36.0)  # 10% down (inside the cap)
    assert r["expected_profit"] is None or r["expected_profit"] != r["expected_profit"]
    # a margin floor needs the cost again: that row is skipped, and says why
    with pytest.raises(DataError, match="no unit costs"):
        optimize(demand, {"objective": "revenue", "min_margin_pct": 20})


def test_max_avg_change_pct_is_the_documented_weighted_average() -> None:
    """README: |sum a p / sum a p0 - 1| <= B with a = q0 / fx, signed (ups and downs offset)."""
    demand = pl.DataFrame(
        {
            "item_id": ["A", "B", "C"],
            "market": ["US", "JP", "US"],
            "elasticity": [-1.2, -1.3, -4.0],
            "base_price": [100.0, 16000.0, 50.0],
            "base_quantity": [10.0, 5.0, 40.0],
            "unit_cost": [30.0, 4000.0, 45.0],
            "fx_rate": [1.0, 160.0, 1.0],
        }
    )
    plan = optimize(demand, {"bounds": {"max_increase_pct": 30}, "max_avg_change_pct": 5})
    t = plan.table.sort("item_id")
    a = t["baseline_quantity"] / t["fx_rate"]
    avg = (a * t["recommended_price"]).sum() / (a * t["current_price"]).sum() - 1
    assert avg == pytest.approx(0.05, abs=1e-6)  # binding at +5%
    changes = t["price_change_pct"].to_list()
    assert max(changes) > 5 and min(changes) < 0  # C's cut pays for A's and B's rises


def test_cross_plans_keep_skipped_rows_too() -> None:
    from pricelab.optimize.cross import optimize_cross
    from pricelab.report.decisions import _stored_plan

    demand = pl.concat(
        [_demand(), _demand(item_id="TOTE-04"), _demand(item_id="MUG-02", elasticity=0.3)],
        how="vertical_relaxed",
    ).with_columns(category=pl.lit("totes"))
    cross = pl.DataFrame(
        {
            "item_id": ["TOTE-03", "TOTE-04"],
            "market": ["GB", "GB"],
            "other_item_id": ["TOTE-04", "TOTE-03"],
            "elasticity": [0.5, 0.5],
        }
    )
    plan = optimize_cross(demand, cross, {"bounds": {"max_increase_pct": 10}})
    t = plan.table
    assert t["status"].to_list() == ["optimized", "optimized", "skipped"]
    assert t["reason"][2] == "elasticity >= 0 (no finite optimum)"
    assert t["cannibalised_quantity"][2] is None
    doc = plan.to_dict()
    assert doc["skipped"] == [
        {"item_id": "MUG-02", "market": "GB", "reason": "elasticity >= 0 (no finite optimum)"}
    ]
    # the report reads them from the stored plan's status column; a plan stored before that
    # column existed (an old database) from its run summary's list
    assert _stored_plan(t, {"summary": {}}).skipped.to_dicts() == doc["skipped"]
    old = t.filter(pl.col("status") != "skipped").drop("status", "reason")
    assert _stored_plan(old, {"summary": doc}).skipped.to_dicts() == doc["skipped"]
