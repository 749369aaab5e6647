"""Markdown prices a shop can charge: full price x (1 - discount / 100) on the currency's minor
unit (JPY whole, KWD three decimals, most two), never a deeper discount than the step, never
going up, and the plan's units and revenue computed at the shop price."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pricelab import api
from tests.conftest import write_csv

ROWS = {  # item, market, currency, full price (off the grid), fx
    ("A", "JP", "JPY", 12345.6, 160.0),
    ("A", "DE", "EUR", 99.999, 1.0),
    ("B", "KW", "KWD", 33.3337, 0.33),
    ("B", "GB", "GBP", 57.0, 0.85),
}
YAML = """
ladder: [0, 7, 15, 23, 33, 45]
monotone: true
min_weeks_between_changes: 1
max_discount_pct: 33
salvage: {pct_of_cost: 30}
"""
DEC = {"JPY": 0, "EUR": 2, "KWD": 3, "GBP": 2}


def _files(tmp_path: Path, stock: int = 60) -> tuple[Path, Path, Path]:
    lines = ["item_id,market,week,base_quantity,elasticity,full_price,unit_cost,fx_rate,currency"]
    for item, mk, cur, full, fx in sorted(ROWS):
        for w in range(1, 7):
            lines.append(f"{item},{mk},{w},{9 - w},-2.4,{full},{0.35 * full},{fx},{cur}")
    demand = tmp_path / "demand.csv"
    demand.write_text("\n".join(lines) + "\n")
    stock_f = write_csv(tmp_path / "stock.csv", f"item_id,stock\nA,{stock}\nB,{stock}")
    return demand, stock_f, write_csv(tmp_path / "md.yaml", YAML)


def _plan(tmp_path: Path, stock: int = 60) -> pl.DataFrame:
    demand, stock_f, cfg = _files(tmp_path, stock)
    table = api.markdown_plan(None, demand=demand, stock=stock_f, constraints=cfg).plan.table
    return table.join(
        pl.read_csv(demand)
        .filter(pl.col("week") == 1)
        .select("item_id", "market", "full_price", "currency", "base_quantity", "elasticity"),
        on=["item_id", "market"],
    )


def test_every_markdown_price_is_a_shop_price_that_meets_every_constraint(
    tmp_path: Path,
) -> None:
    t = _plan(tmp_path)
    dec = np.array([DEC[c] for c in t["currency"].to_list()])
    p, full = t["price"].to_numpy(), t["full_price"].to_numpy()
    k = p * 10.0**dec
    assert (np.abs(k - np.round(k)) <= 1e-6).all(), t.filter(
        pl.Series(np.abs(k - np.round(k)) > 1e-6)
    )
    actual = 100 * (1 - p / full)
    nominal = t["discount_pct"].to_numpy()
    assert (actual <= nominal + 1e-9).all()  # never deeper than the step
    assert (actual <= 33 + 1e-9).all()  # max_discount_pct holds after rounding
    unit = 10.0**-dec
    assert (p >= full * (1 - nominal / 100) - 1e-9).all() and (
        p < full * (1 - nominal / 100) + unit + 1e-9
    ).all()
    for _, g in t.sort("week").group_by("item_id", "market"):
        assert (np.diff(g["price"].to_numpy()) <= 1e-12).all()  # monotone: never goes up
    rev = t["expected_revenue"].to_numpy()
    assert np.allclose(rev, p * t["expected_units"].to_numpy(), rtol=1e-12)
    assert t.filter(pl.col("market") == "JP")["price"][0] == 12346.0  # full price, to the yen


def test_units_are_the_demand_at_the_shop_price(tmp_path: Path) -> None:
    """Stock large enough never to run out: each week's units are the demand at the rounded
    price (not at the unrounded ladder ratio)."""
    t = _plan(tmp_path, stock=10_000)
    w = t["week"].to_numpy()
    q0 = 9 - w
    want = q0 * (t["price"].to_numpy() / t["full_price"].to_numpy()) ** -2.4
    assert np.allclose(t["expected_units"].to_numpy(), want, rtol=1e-9)


def test_a_currency_column_must_be_the_same_every_week(tmp_path: Path) -> None:
    demand, stock_f, cfg = _files(tmp_path)
    d = pl.read_csv(demand)
    d = d.with_columns(
        pl.when((pl.col("week") == 3) & (pl.col("market") == "JP"))
        .then(pl.lit("EUR"))
        .otherwise(pl.col("currency"))
        .alias("currency")
    )
    d.write_csv(demand)
    from pricelab.errors import DataError

    with pytest.raises(DataError, match="column currency"):
        api.markdown_plan(None, demand=demand, stock=stock_f, constraints=cfg)


def test_database_mode_rounds_to_the_markets_currency(tmp_path: Path, cli) -> None:
    """The markets table's currency (JPY here) sets the unit: whole yen in the plan."""
    rows = ["item_id,market,date,price,quantity,unit_cost"]
    import datetime as dt

    rng = np.random.default_rng(4)
    for item in ("IT-1", "IT-2"):
        for w in range(30):
            d = (dt.date(2024, 1, 1) + dt.timedelta(weeks=w)).isoformat()
            for mk, base in (("JP", 15_555.5), ("DE", 97.777)):
                price = base * rng.uniform(0.85, 1.1)
                q = rng.poisson(20 * (price / base) ** -2.0)
                rows.append(f"{item},{mk},{d},{price:.4f},{q},{0.3 * base:.4f}")
    sales = tmp_path / "sales.csv"
    sales.write_text("\n".join(rows) + "\n")
    markets = write_csv(tmp_path / "m.csv", "market,currency,fx_rate\nJP,JPY,160\nDE,EUR,1")
    inv = write_csv(tmp_path / "inv.csv", "item_id,stock\nIT-1,200\nIT-2,150")
    db = tmp_path / "p.duckdb"
    res = cli("ingest", "--db", db, "--sales", sales, "--markets", markets, "--inventory", inv)
    assert res.exit_code == 0, res.stderr
    assert cli("estimate", "--db", db, "--model", "ols").exit_code == 0
    cfg = write_csv(tmp_path / "md.yaml", "weeks: 6\nladder: [0, 13, 27, 41]\n")
    out = tmp_path / "plan.csv"
    res = cli("markdown", "--db", db, "--constraints", cfg, "--output", out, "--json")
    assert res.exit_code == 0, res.stdout + res.stderr
    assert json.loads(res.stdout)
    t = pl.read_csv(out)
    jp, de = (t.filter(pl.col("market") == m)["price"].to_numpy() for m in ("JP", "DE"))
    assert jp.size and (jp == np.round(jp)).all()
    assert de.size and np.allclose(de * 100, np.round(de * 100), atol=1e-6)
