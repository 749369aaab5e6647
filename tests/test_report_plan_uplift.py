"""The report's per-market plan table is the plan's own numbers (Plan.uplift_by, price_change_pct)."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import polars as pl
import pytest

from pricelab.optimize import optimize
from pricelab.report import decisions as S
from pricelab.report.data import ReportData

FX = {"US": 1.08, "DE": 1.0}
H = 4  # horizon_weeks
# item, market, elasticity, unit cost / base price: closed-form optimum p* = c e / (1 + e)
ROWS = [
    ("A", "US", -3.0, 0.5),
    ("B", "US", -2.5, 0.5),
    ("C", "US", -3.0, 0.7),
    ("A", "DE", -2.0, 0.5),
    ("B", "DE", -3.0, 0.7),
    ("C", "DE", -4.0, 0.6),
]


def _demand() -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "item_id": i,
                "market": m,
                "elasticity": e,
                "base_price": 100.0 * FX[m] * (1 + 0.1 * k),
                "base_quantity": 10.0 + k,
                "unit_cost": cs * 100.0 * FX[m] * (1 + 0.1 * k),
                "fx_rate": FX[m],
            }
            for k, (i, m, e, cs) in enumerate(ROWS)
        ]
    )


def _closed_form() -> dict[str, dict[str, float]]:
    """Per market, in its currency: baseline and optimal profit, moves, median change %."""
    out: dict[str, dict[str, list[float]]] = {}
    for r in _demand().iter_rows(named=True):
        e, p0, c, q0 = r["elasticity"], r["base_price"], r["unit_cost"], r["base_quantity"]
        p = c * e / (1 + e)
        m = out.setdefault(r["market"], {"base": [], "exp": [], "chg": []})
        m["base"].append((p0 - c) * q0 * H)
        m["exp"].append((p - c) * q0 * H * (p / p0) ** e)
        m["chg"].append(100 * (p / p0 - 1))
    return {
        k: {
            "baseline": sum(v["base"]),
            "expected": sum(v["exp"]),
            "raised": sum(x > 1e-6 for x in v["chg"]),
            "lowered": sum(x < -1e-6 for x in v["chg"]),
            "median": float(np.median(v["chg"])),
        }
        for k, v in out.items()
    }


def _report_data(table: pl.DataFrame, summary: dict | None = None) -> ReportData:
    return ReportData(
        db="test",
        generated_at=dt.datetime(2024, 1, 1),
        base_currency="EUR",
        runs={
            "estimate": None,
            "simulate": None,
            "optimize": {"run_id": "R1", "summary": summary or {}},
        },
        anchor=None,
        quality=None,
        sales_summary=None,
        weekly=None,
        fx=FX,
        currency={"US": "USD", "DE": "EUR"},
        plan=table,
    )


def _html_rows(html: str) -> list[list[str]]:
    """Cells of every row of the section's first table (header excluded)."""
    body = re.search(r"<tbody>(.*?)</tbody>", html, re.S)
    assert body is not None
    return [
        re.findall(r"<td[^>]*>(.*?)</td>", row)
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1))
    ]


@pytest.fixture(scope="module")
def plan():
    cons = {
        "objective": "profit",
        "horizon_weeks": H,
        "bounds": {"max_increase_pct": 50, "max_decrease_pct": 50},
    }
    return optimize(_demand(), cons)


def test_per_market_numbers_are_the_plans_own(plan) -> None:
    truth = _closed_form()
    by = S.plan_by_market(plan)
    up = plan.uplift_by("market")
    assert by["market"].to_list() == up["market"].to_list() == ["DE", "US"]
    for r, u in zip(by.iter_rows(named=True), up.iter_rows(named=True), strict=True):
        m, t, fx = r["market"], truth[r["market"]], FX[r["market"]]
        assert r["items"] == u["rows"] == 3
        # Plan.uplift_by (base currency) times the market's fx_rate ...
        assert r["baseline_profit"] == pytest.approx(u["baseline_profit"] * fx, rel=1e-12)
        assert r["expected_profit"] == pytest.approx(u["expected_profit"] * fx, rel=1e-12)
        assert r["uplift_%"] == pytest.approx(u["profit_%"], rel=1e-12)  # baseline > 0 here
        # ... and the closed-form optimum
        assert r["baseline_profit"] == pytest.approx(t["baseline"], rel=1e-9), m
        assert r["expected_profit"] == pytest.approx(t["expected"], rel=1e-6), m
        assert r["uplift"] == pytest.approx(t["expected"] - t["baseline"], rel=1e-5), m
        assert (r["raised"], r["lowered"]) == (t["raised"], t["lowered"]), m
        assert r["median_change_%"] == pytest.approx(t["median"], abs=1e-4), m
    chg = plan.table.sort("market", "item_id")["price_change_pct"]
    assert by.filter(pl.col("market") == "DE")["median_change_%"][0] == pytest.approx(
        float(chg[:3].median()), rel=1e-12
    )


def test_report_table_shows_them(plan) -> None:
    _, _, html, shown = S.plan(_report_data(plan.table, {"status": "optimal"}))
    assert shown
    rows = {r[0]: r for r in _html_rows(html)}
    truth = _closed_form()
    for m, currency in (("DE", "EUR"), ("US", "USD")):
        t = truth[m]
        assert rows[m][1:5] == [currency, "3", str(t["raised"]), str(t["lowered"])]
        assert rows[m][6:9] == [
            f"{t['baseline']:,.0f}",
            f"{t['expected']:,.0f}",
            f"{t['expected'] - t['baseline']:,.0f}",
        ]
        assert rows[m][9] == f"{(t['expected'] / t['baseline'] - 1) * 100:.1f}"
    base_b = sum(truth[m]["baseline"] / FX[m] for m in FX)
    base_e = sum(truth[m]["expected"] / FX[m] for m in FX)
    assert rows["total"][6:10] == [
        f"{base_b:,.0f}",
        f"{base_e:,.0f}",
        f"{base_e - base_b:,.0f}",
        f"{(base_e / base_b - 1) * 100:.1f}",
    ]
    assert f"{base_e - base_b:+,.0f} EUR" in html


def test_a_market_that_loses_less_shows_a_positive_uplift() -> None:
    """Baseline -100, expected -50 (DE): +50% uplift over |baseline|; US +20%."""
    t = pl.DataFrame(
        {
            "item_id": ["A", "B", "A", "B"],
            "market": ["DE", "DE", "US", "US"],
            "current_price": [10.0, 10.0, 20.0, 20.0],
            "recommended_price": [10.0, 12.0, 22.0, 19.0],
            "price_change_pct": [0.0, 20.0, 10.0, -5.0],
            "baseline_profit": [-40.0, -60.0, 100.0, 300.0],
            "expected_profit": [-20.0, -30.0, 150.0, 330.0],
            "baseline_revenue": [1.0] * 4,
            "expected_revenue": [1.0] * 4,
            "fx_rate": [1.0, 1.0, 2.0, 2.0],
            "binding": [""] * 4,
        }
    )
    by = S.plan_by_market(S._stored_plan(t, None))
    assert by.select(
        "market",
        "items",
        "raised",
        "lowered",
        "baseline_profit",
        "expected_profit",
        "uplift",
        "uplift_%",
    ).rows() == [
        ("DE", 2, 1, 0, -100.0, -50.0, 50.0, 50.0),
        ("US", 2, 1, 1, 400.0, 480.0, 80.0, 20.0),
    ]
    _, _, html, _ = S.plan(_report_data(t))
    total = _html_rows(html)[-1]
    # base currency: baseline -100 + 400 / 2 = 100, expected -50 + 480 / 2 = 190
    assert total[0] == "total" and total[6:10] == ["100", "190", "90", "90.0"]
