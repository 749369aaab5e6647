"""Series-level warnings of `validate`: what they count, and the grain and unit-cost checks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from pricelab import api
from pricelab.errors import DataError


def _sales(
    dates: list[dt.date],
    *,
    keys=(("A", "US"), ("B", "US"), ("A", "JP")),
    price: float = 100.0,
    cost: float | None = 50.0,
) -> pl.DataFrame:
    rows = [
        (i, m, d, price * (160.0 if m == "JP" else 1.0), 3, cost) for i, m in keys for d in dates
    ]
    return pl.DataFrame(
        rows, schema=["item_id", "market", "date", "price", "quantity", "unit_cost"], orient="row"
    )


def _load(tmp_path: Path, sales: pl.DataFrame) -> Path:
    sales.write_csv(tmp_path / "sales.csv")
    pl.DataFrame(
        {"market": ["US", "JP"], "currency": ["USD", "JPY"], "fx_rate": [1.0, 160.0]}
    ).write_csv(tmp_path / "markets.csv")
    db = tmp_path / "q.duckdb"
    api.ingest(db, sales=tmp_path / "sales.csv", markets=tmp_path / "markets.csv")
    return db


def _warnings(db: Path) -> dict[str, dict]:
    return {w["rule"].split(":")[0]: w for w in api.validate(db).to_dict()["warnings"]}


def _weeks(n: int) -> list[dt.date]:
    return [dt.date(2024, 1, 1) + dt.timedelta(weeks=k) for k in range(n)]


def test_monthly_dates_are_flagged_per_series(tmp_path):
    months = [dt.date(2024, m, 1) for m in range(1, 13)]
    w = _warnings(_load(tmp_path, _sales(months)))
    monthly = w["dates at least 21 days apart on average"]
    assert monthly["count"] == 3 and monthly["unit"] == "series"
    assert "(3 series; first: A/JP, A/US, B/US)" in monthly["message"]
    # the monthly series also have gaps between their (Monday) weeks: counted as series
    gaps = w["weekly series with gaps (missing weeks)"]
    assert gaps["count"] == 3 and "(3 series;" in gaps["message"]


def test_weekly_dates_with_a_few_gaps_are_not_monthly(tmp_path):
    weeks = [d for k, d in enumerate(_weeks(20)) if k not in (5, 6, 11)]
    w = _warnings(_load(tmp_path, _sales(weeks)))
    assert not any(k.startswith("dates at least") for k in w)
    assert w["weekly series with gaps (missing weeks)"]["count"] == 3


def test_unit_cost_against_price_in_base_currency(tmp_path):
    # JP prices are in yen (fx 160): 16000 JPY = 100 base; costs are in base currency
    sales = pl.concat(
        [
            _sales(_weeks(10), keys=(("OK", "US"), ("OK", "JP")), cost=60.0),
            _sales(_weeks(10), keys=(("LOSS", "JP"),), cost=120.0),  # 120 >= 100 base
            _sales(_weeks(10)[:2], keys=(("TINY", "US"),), cost=0.5),  # 0.5% of the price
        ]
    )
    w = _warnings(_load(tmp_path, sales))
    loss = w["unit cost at or above the price (in base currency)"]
    assert loss["count"] == 10 and loss["message"].endswith(
        "(10 rows; first: LOSS/JP/2024-01-01, LOSS/JP/2024-01-08, LOSS/JP/2024-01-15)"
    )
    tiny = w["unit cost below 1% of the price (in base currency)"]
    assert (
        tiny["count"] == 2 and "first: TINY/US/2024-01-01, TINY/US/2024-01-08)" in tiny["message"]
    )
    # the yen prices of OK/JP are not compared with base-currency costs as they stand
    assert "OK" not in loss["message"] + tiny["message"]


def test_several_missing_columns_are_one_message(tmp_path):
    pl.DataFrame({"sku": ["A"], "when": ["2024-01-01"], "price": [1.0]}).write_csv(
        tmp_path / "s.csv"
    )
    with pytest.raises(DataError) as err:
        api.ingest(tmp_path / "x.duckdb", sales=tmp_path / "s.csv")
    msg = str(err.value)
    assert msg.count("\n") == 0, msg
    assert msg.endswith(
        "s.csv: missing required columns 'item_id', 'market', 'date', "
        "'quantity' (found: sku, when, price)"
    )
    # the failed ingest would have created the database: it leaves none behind
    assert not (tmp_path / "x.duckdb").exists() and list(tmp_path.iterdir()) == [tmp_path / "s.csv"]
