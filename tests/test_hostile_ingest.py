"""Ingest refuses absurd values and odd headers with exit 2, naming file, row and column."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import CliResult, assert_same, snapshot

HEAD = "item_id,market,date,price,quantity\n"

CASES = {
    # two daily rows of 6e18 summed past 2**63 (was: exit 0 and a negative quantity)
    "daily sum overflow": (
        HEAD + "A,US,2024-01-01,10,6000000000000000000\nA,US,2024-01-02,10,6000000000000000000\n",
        "column 'quantity': must be at most 1e+12 in magnitude (2 rows; first: row 1 (line 2)",
    ),
    # was: exit 3 "Current transaction is aborted"
    "quantity 2**63": (
        HEAD + "A,US,2024-01-01,10,9223372036854775808\n",
        "column 'quantity': must be at most 1e+12",
    ),
    "date 9999": (HEAD + "A,US,9999-12-27,10,1\n", "date out of the plausible range"),
    "date 1899": (HEAD + "A,US,1899-12-25,10,1\n", "row 1 (line 2) value '1899-12-25'"),
    "tiny price": (HEAD + "A,US,2024-01-01,1e-300,1\n", "column 'price': must be at least 1e-06"),
    "huge price": (HEAD + "A,US,2024-01-01,1e300,1\n", "column 'price': must be at most 1e+12"),
    # was: exit 3 DuplicateError
    "space collision": (
        "item_id,market,date,price,quantity, price\nA,US,2024-01-01,10,1,11\n",
        "columns 'price' and ' price' are the same column name",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_sales_refused_with_row(
    cli: Callable[..., CliResult], loaded_db: Path, tmp_path: Path, case: str
) -> None:
    text, message = CASES[case]
    f = tmp_path / "bad.csv"
    f.write_text(text)
    before = snapshot(loaded_db)
    res = cli("ingest", "--db", loaded_db, "--sales", f)
    assert res.exit_code == 2, res.stderr
    assert message in res.stderr and "bad.csv" in res.stderr
    assert_same(before, snapshot(loaded_db))


def test_case_only_duplicate_item_columns(
    cli: Callable[..., CliResult], loaded_db: Path, tmp_path: Path
) -> None:
    """In one file: a named error. Against the loaded table: the stored spelling is used."""
    f = tmp_path / "items.csv"
    f.write_text("item_id,category,Category\nX,a,b\n")
    before = snapshot(loaded_db)
    res = cli("ingest", "--db", loaded_db, "--items", f)
    assert res.exit_code == 2 and "'category' and 'Category'" in res.stderr
    assert_same(before, snapshot(loaded_db))
    f.write_text("item_id,Season,CATEGORY\nX,SS25,bags\n")  # 'season', 'category' are loaded
    res = cli("ingest", "--db", loaded_db, "--items", f)
    assert res.exit_code == 0, res.stderr
    items = snapshot(loaded_db)["items"].filter(pl.col("item_id") == "X")
    assert items.row(0, named=True)["season"] == "SS25"
    assert items.row(0, named=True)["category"] == "bags"


def test_parquet_list_and_binary_columns(
    cli: Callable[..., CliResult], loaded_db: Path, tmp_path: Path
) -> None:
    base = {"market": ["US"], "date": ["2024-01-01"], "price": [10.0], "quantity": [1]}
    listed = tmp_path / "list.parquet"
    pl.DataFrame({"item_id": ["A"], **base, "tags": [[1, 2]]}).write_parquet(listed)
    binary = tmp_path / "bin.parquet"
    pl.DataFrame(
        {"item_id": [b"ok", b"\xff\xfe"], **{k: v * 2 for k, v in base.items()}}
    ).write_parquet(binary)
    before = snapshot(loaded_db)
    res = cli("ingest", "--db", loaded_db, "--sales", listed)
    assert res.exit_code == 2 and "list.parquet: column 'tags' is a List" in res.stderr
    res = cli("ingest", "--db", loaded_db, "--sales", binary)
    assert res.exit_code == 2
    assert (
        "bin.parquet: column 'item_id' holds bytes that are not UTF-8 text (first at row 2)"
        in res.stderr
    )
    assert_same(before, snapshot(loaded_db))


def test_edges_of_the_plausible_range_are_accepted_and_usable(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    """What ingest accepts, every command survives: weeks up to 2200-12-31."""
    rows = [HEAD.strip() + ",unit_cost"]
    import datetime as dt

    for w in range(12):
        d = dt.date(2200, 10, 13) + dt.timedelta(weeks=w)
        rows.append(f"A,US,{d},{100 + w % 3 * 5},{20 - w % 3 * 3},40")
        rows.append(f"B,US,{d},{50 + w % 2 * 5},{30 - w % 2 * 4},20")
    f = tmp_path / "late.csv"
    f.write_text("\n".join(rows) + "\n")
    db = tmp_path / "late.duckdb"
    assert cli("ingest", "--db", db, "--sales", f).exit_code == 0
    assert cli("estimate", "--db", db, "--model", "ols").exit_code == 0
    for args in (
        ["optimize"],
        ["simulate", "--scenario", _scenario(tmp_path)],
        ["experiment", "design", "--name", "e", "--cells=-5,0", "--weeks", "8", "--seed", "1"],
        ["report", "--output", tmp_path / "r.html"],
    ):
        res = cli(*args, "--db", db)
        assert res.exit_code in (0, 1), (args, res.stderr)


def _scenario(tmp: Path) -> Path:
    s = tmp / "s.yaml"
    s.write_text(
        "horizon_weeks: 4\nscenarios:\n  - name: up\n    changes:\n      - price_change_pct: 5\n"
    )
    return s
