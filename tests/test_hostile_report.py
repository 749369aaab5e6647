"""``report`` renders whatever a run stored: absurd, NaN and infinite elasticities are flagged."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest

from pricelab.report import plots
from tests.conftest import REPO, CliResult

SAMPLE = REPO / "data" / "sample"
ABSURD = [5e4, -5e4, math.nan, math.inf, -1e300, -3e4]


def test_curves_survive_absurd_elasticities() -> None:
    """Python's float power raised OverflowError at e = -5e4 (exit 3 in report)."""
    rows = pl.DataFrame(
        {
            "label": [f"IT{i}" for i in range(4)],
            "market": ["US"] * 4,
            "current_price": [100.0] * 4,
            "recommended_price": [80.0, 120.0, 100.0, 90.0],
            "baseline_quantity": [10.0] * 4,
            "elasticity": [-5e4, 5e4, -1e300, -2.0],
            "unit_cost": [40.0] * 4,
            "ci_low": [-6e4, -math.inf, math.nan, -2.5],
            "ci_high": [-4e4, math.inf, 1e300, -1.5],
        }
    )
    png = plots.demand_profit_curves(rows, {"US": "USD"})
    assert png.startswith(b"\x89PNG")
    q, profit = plots.curve_at(80.0, 100.0, 10.0, -5e4, 40.0)
    assert math.isnan(q) and math.isnan(profit)
    pts = plots.curve_points(100.0, 80.0, 10.0, -2.0, 40.0)
    assert np.isfinite(pts["quantity"]).all()


@pytest.fixture
def absurd_db(tmp_path: Path, cli: Callable[..., CliResult]) -> Path:
    db = tmp_path / "a.duckdb"
    args: list[object] = ["ingest", "--db", db]
    for kind in ("sales", "items", "costs", "markets", "inventory"):
        args += [f"--{kind}", SAMPLE / f"{kind}.csv"]
    assert cli(*args).exit_code == 0
    assert cli("estimate", "--db", db, "--model", "ols").exit_code == 0
    res = cli("optimize", "--db", db, "--constraints", SAMPLE / "constraints.yaml")
    assert res.exit_code == 0, res.stderr
    con = duckdb.connect(str(db))
    plan = con.execute(
        "SELECT item_id, market FROM plans ORDER BY baseline_revenue DESC LIMIT 6"
    ).fetchall()
    for (item, market), e in zip(plan, ABSURD, strict=True):
        for table in ("elasticities", "plans"):
            con.execute(
                f"UPDATE {table} SET elasticity = ? WHERE item_id = ? AND market = ?",
                [e, item, market],
            )
        con.execute(
            "UPDATE elasticities SET ci_low = ?, ci_high = ? WHERE item_id = ? AND market = ?",
            [-math.inf, e, item, market],
        )
    con.close()
    return db


def test_report_renders_and_flags_absurd_values(
    absurd_db: Path, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    out = tmp_path / "r.html"
    res = cli("report", "--db", absurd_db, "--output", out)
    assert res.exit_code == 0, res.stderr
    html = out.read_text()
    assert "absurd estimate(s)" in html and "(-5e+04)" in html
