"""Tables fit an 80-column terminal or a pipe: no truncated headers ("baselin…")."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from pricelab import api
from pricelab._resources import sample_dir
from pricelab.cli.app import app
from tests.conftest import copy_db


@pytest.fixture(scope="module")
def est_db(tmp_path_factory: pytest.TempPathFactory, sample_template: Path) -> Path:
    db = copy_db(sample_template, tmp_path_factory.mktemp("width") / "sample.duckdb")
    api.estimate(db, model="poisson")
    return db


def test_optimize_tables_fit_80_columns(est_db: Path) -> None:
    args = [
        "optimize",
        "--db",
        str(est_db),
        "--constraints",
        str(sample_dir() / "constraints.yaml"),
    ]
    res = CliRunner().invoke(app, args, env={"COLUMNS": "80"}, terminal_width=80)
    assert res.exit_code == 0, res.output
    table_lines = [ln for ln in res.stdout.splitlines() if ln[:1] in "┏┃┡│└"]
    assert table_lines and max(len(ln) for ln in table_lines) <= 80
    assert "…" not in res.stdout  # nothing cut off
    for header in ("profit now", "profit plan", "change %", "binding"):
        assert header in res.stdout
    wide = CliRunner().invoke(app, [*args, "--wide"], env={"COLUMNS": "80"}, terminal_width=80)
    assert wide.exit_code == 0, wide.output

    def widest(text: str) -> int:  # columns of the widest table
        return max(ln.count("┃") for ln in text.splitlines() if ln.startswith("┃")) - 1

    assert widest(wide.stdout) > widest(res.stdout)  # --wide shows every column


def _fits(text: str) -> None:
    table_lines = [ln for ln in text.splitlines() if ln[:1] in "┏┃┡│└"]
    assert table_lines and max(len(ln) for ln in table_lines) <= 80
    assert "…" not in text  # no header or category cut ("share_f…", "accessor…")


def test_estimate_tables_fit_80_columns(est_db: Path) -> None:
    res = CliRunner().invoke(
        app, ["estimate", "--db", str(est_db)], env={"COLUMNS": "80"}, terminal_width=80
    )
    assert res.exit_code == 0, res.output
    _fits(res.stdout)
    for header in ("median", "se", "flagged", "accessories", "ready-to-wear"):
        assert header in res.stdout


def test_units_print_without_decimals_money_with() -> None:
    from rich.console import Console

    from pricelab.cli._common import frame_table

    df = pl.DataFrame(
        {
            "expected_quantity": [12.4, 1530.6],
            "units": [3.0, 7.5],
            "expected_profit": [1234.5, 9.0],
            "profit_%": [3.25, -1.0],
        }
    )
    out = Console(width=120, record=True)
    out.print(frame_table(df, floats=2))
    text = out.export_text()
    assert "│                12 │" in text and "1,531" in text and "│     8 │" in text
    assert "1,234.50" in text and "3.25" in text
