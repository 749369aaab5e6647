"""Every data-quality rule: exact message, exit code 2, and an untouched database."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tests.conftest import assert_same, snapshot, write_csv

HEADER = "item_id,market,date,price,quantity"

BAD_SALES = [
    (
        "missing_column",
        "item_id,market,date,price\nA,US,2024-01-01,10",
        "sales.csv: column 'quantity': missing required column (found: item_id, market, date, price)",
    ),
    (
        "non_numeric_price",
        f"{HEADER}\nA,US,2024-01-01,ten,1",
        "sales.csv: column 'price': not a number (1 row; first: row 1 (line 2) value 'ten')",
    ),
    (
        "non_numeric_quantity",
        f"{HEADER}\nA,US,2024-01-01,10,1\nA,US,2024-01-08,10,many",
        "sales.csv: column 'quantity': not a number (1 row; first: row 2 (line 3) value 'many')",
    ),
    (
        "price_zero",
        f"{HEADER}\nA,US,2024-01-01,0,1",
        "sales.csv: column 'price': must be > 0 (1 row; first: row 1 (line 2) value '0')",
    ),
    (
        "price_negative",
        f"{HEADER}\nA,US,2024-01-01,-3,1\nA,US,2024-01-08,-4,1",
        "sales.csv: column 'price': must be > 0 (2 rows; first: row 1 (line 2) value '-3', "
        "row 2 (line 3) value '-4')",
    ),
    (
        "price_nan",
        f"{HEADER}\nA,US,2024-01-01,NaN,1",
        "sales.csv: column 'price': must be finite (NaN or infinite found) (1 row; first: row 1 "
        "(line 2) value 'NaN')",
    ),
    (
        "price_inf",
        f"{HEADER}\nA,US,2024-01-01,inf,1",
        "sales.csv: column 'price': must be finite (NaN or infinite found) (1 row; first: row 1 "
        "(line 2) value 'inf')",
    ),
    (
        "negative_quantity",
        f"{HEADER}\nA,US,2024-01-01,10,-1",
        "sales.csv: column 'quantity': must be >= 0 (1 row; first: row 1 (line 2) value '-1')",
    ),
    (
        "fractional_quantity",
        f"{HEADER}\nA,US,2024-01-01,10,1.5",
        "sales.csv: column 'quantity': must be a whole number (1 row; first: row 1 (line 2) "
        "value '1.5')",
    ),
    (
        "duplicate_key",
        f"{HEADER}\nA,US,2024-01-01,10,1\nA,US,2024-01-01,11,2",
        "sales.csv: duplicate (item_id, market, date) rows, e.g. item_id=A, market=US, "
        "date=2024-01-01; rows are not summed (2 rows; first: row 1 (line 2), row 2 (line 3))",
    ),
    (
        "bad_date",
        f"{HEADER}\nA,US,01/02/2024,10,1",
        "sales.csv: column 'date': unparseable date (expected ISO YYYY-MM-DD) (1 row; first: "
        "row 1 (line 2) value '01/02/2024')",
    ),
    (
        "impossible_date",
        f"{HEADER}\nA,US,2024-02-30,10,1",
        "sales.csv: column 'date': unparseable date (expected ISO YYYY-MM-DD) (1 row; first: "
        "row 1 (line 2) value '2024-02-30')",
    ),
    (
        "empty_item",
        f"{HEADER}\n,US,2024-01-01,10,1",
        "sales.csv: column 'item_id': must not be empty (1 row; first: row 1 (line 2) value None)",
    ),
    (
        "bad_promo",
        f"{HEADER},promo\nA,US,2024-01-01,10,1,2",
        "sales.csv: column 'promo': must be 0 or 1 (1 row; first: row 1 (line 2) value '2')",
    ),
    ("header_only", HEADER, "sales.csv: has a header but no data rows"),
]


@pytest.mark.parametrize(("case", "content", "message"), BAD_SALES, ids=[c[0] for c in BAD_SALES])
def test_bad_sales_file(
    cli, loaded_db: Path, tmp_path: Path, case: str, content: str, message: str
) -> None:
    before = snapshot(loaded_db)
    bad = tmp_path / "bad" / "sales.csv"
    bad.parent.mkdir()
    bad.write_text(content + "\n")
    res = cli("ingest", "--db", loaded_db, "--sales", bad)
    assert res.exit_code == 2
    assert res.stdout == ""
    assert res.stderr.startswith(f"error: {bad}: {message.removeprefix('sales.csv: ')}\n"), (
        res.stderr
    )
    assert "Traceback" not in res.stderr
    assert_same(before, snapshot(loaded_db))


def _one_error(cli, db: Path, args: list[object]) -> str:
    res = cli("ingest", "--db", db, *args)
    assert res.exit_code == 2, res.stdout + res.stderr
    assert "Traceback" not in res.stderr
    return res.stderr


def test_empty_file(cli, loaded_db: Path, tmp_path: Path) -> None:
    before = snapshot(loaded_db)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    err = _one_error(cli, loaded_db, ["--sales", empty])
    assert err == f"error: {empty}: file is empty (expected a header row and data)\n"
    assert_same(before, snapshot(loaded_db))


def test_unknown_extension(cli, loaded_db: Path, tmp_path: Path) -> None:
    f = tmp_path / "sales.xlsx"
    f.write_text("x")
    err = _one_error(cli, loaded_db, ["--sales", f])
    assert f"{f}: unknown file extension '.xlsx'; expected one of .csv, .parquet, .pq" in err


def test_file_not_found(cli, loaded_db: Path, tmp_path: Path) -> None:
    err = _one_error(cli, loaded_db, ["--sales", tmp_path / "nope.csv"])
    assert err == f"error: {tmp_path / 'nope.csv'}: file not found\n"


def test_not_utf8(cli, loaded_db: Path, tmp_path: Path) -> None:
    before = snapshot(loaded_db)
    f = tmp_path / "latin1.csv"
    f.write_bytes(f"{HEADER}\nA,US,2024-01-01,10,1\nCaf\xe9,US,2024-01-01,10,1\n".encode("latin-1"))
    err = _one_error(cli, loaded_db, ["--sales", f])
    assert f"{f}: not UTF-8 text (first invalid byte at offset" in err
    assert "line 3); save it as UTF-8" in err
    assert_same(before, snapshot(loaded_db))


def test_costs_unknown_item_and_market(cli, loaded_db: Path, tmp_path: Path) -> None:
    before = snapshot(loaded_db)
    costs = write_csv(
        tmp_path / "c2.csv",
        """
        item_id,unit_cost,market
        GHOST-9,10,
        IT-1,12,XX""",
    )
    err = _one_error(cli, loaded_db, ["--costs", costs])
    assert err.startswith(
        "error: costs: column 'item_id': names items that are in neither sales nor items "
        "(1 item; first: GHOST-9)\n"
    )
    assert (
        "costs: column 'market': names markets that are in neither sales nor markets "
        "(1 market; first: XX)" in err
    )
    assert_same(before, snapshot(loaded_db))


def test_inventory_unknown_item(cli, loaded_db: Path, tmp_path: Path) -> None:
    inv = write_csv(
        tmp_path / "inv.csv",
        """
        item_id,stock
        NOPE,3""",
    )
    err = _one_error(cli, loaded_db, ["--inventory", inv])
    assert (
        "inventory: column 'item_id': names items that are in neither sales nor items "
        "(1 item; first: NOPE)" in err
    )


def test_markets_missing_a_sales_market(cli, tmp_path: Path, small_files) -> None:
    db = tmp_path / "m.duckdb"
    markets = write_csv(
        tmp_path / "mk.csv",
        """
        market,currency,fx_rate,vat_rate
        US,USD,1.08,0""",
    )
    res = cli("ingest", "--db", db, "--sales", small_files["sales"], "--markets", markets)
    assert res.exit_code == 2
    assert res.stderr == (
        "error: markets: column 'market': is missing markets used in sales "
        "(add them with their fx_rate) (1 market; first: DE)\n"
    )
    # nothing at all was loaded, not even the valid sales file: no database is left behind
    assert not db.exists()
    res = cli("validate", "--db", db)
    assert res.exit_code == 2
    assert res.stderr == (
        f"error: {db}: no database here; load data first with 'pricelab ingest --db {db}'\n"
    )


def test_db_in_missing_folder(cli, small_files, tmp_path: Path) -> None:
    db = tmp_path / "no" / "such" / "x.duckdb"
    err = _one_error(cli, db, ["--sales", small_files["sales"]])
    assert err == f"error: {db}: folder {db.parent} does not exist; create it first\n"
    assert not db.parent.exists()


def test_not_a_duckdb_file(cli, small_files, tmp_path: Path) -> None:
    db = tmp_path / "notes.duckdb"
    db.write_text("just some text, not a database\n" * 50)
    err = _one_error(cli, db, ["--sales", small_files["sales"]])
    assert err.startswith(f"error: {db}: is a text file (CSV?), not a DuckDB database;")
    assert db.read_text().startswith("just some text")


def test_parquet_input_and_row_numbers(cli, loaded_db: Path, tmp_path: Path) -> None:
    before = snapshot(loaded_db)
    f = tmp_path / "s.parquet"
    pl.DataFrame(
        {
            "item_id": ["A", "A"],
            "market": ["US", "US"],
            "date": ["2024-01-01", "2024-01-08"],
            "price": [10.0, -1.0],
            "quantity": [1, 2],
        }
    ).write_parquet(f)
    err = _one_error(cli, loaded_db, ["--sales", f])
    assert err == f"error: {f}: column 'price': must be > 0 (1 row; first: row 2 value '-1.0')\n"
    assert_same(before, snapshot(loaded_db))


def test_several_errors_reported_together(cli, loaded_db: Path, tmp_path: Path) -> None:
    f = tmp_path / "multi.csv"
    f.write_text(f"{HEADER}\nA,US,2024-01-01,-1,1\nA,US,2024-01-08,10,-2\n")
    err = _one_error(cli, loaded_db, ["--sales", f])
    lines = err.splitlines()
    assert lines[0].startswith(f"error: {f}: column 'price': must be > 0")
    assert lines[1].startswith(f"  {f}: column 'quantity': must be >= 0")
