"""Messages and rules for odd files: gzip, UTF-16, non-DuckDB --db, formulas in CSV output."""

from __future__ import annotations

import gzip
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from pricelab.store import Store
from tests.conftest import CliResult, assert_same, snapshot

SALES = "item_id,market,date,price,quantity\nIT-1,US,2024-03-04,10,1\n"


@pytest.mark.parametrize("kind", ["sales", "items"])
def test_one_gzip_rule_for_every_csv(
    cli: Callable[..., CliResult], loaded_db: Path, tmp_path: Path, kind: str
) -> None:
    """A gzip file named .csv is refused for sales too (was silently decompressed)."""
    text = SALES if kind == "sales" else "item_id,category\nIT-9,bags\n"
    f = tmp_path / f"{kind}.csv"
    f.write_bytes(gzip.compress(text.encode()))
    before = snapshot(loaded_db)
    res = cli("ingest", "--db", loaded_db, f"--{kind}", f)
    assert res.exit_code == 2 and f"{kind}.csv: is gzip-compressed" in res.stderr
    assert_same(before, snapshot(loaded_db))


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-16"])
def test_utf16_is_named(
    cli: Callable[..., CliResult], loaded_db: Path, tmp_path: Path, encoding: str
) -> None:
    f = tmp_path / "sales.csv"
    f.write_bytes(SALES.encode(encoding))
    res = cli("ingest", "--db", loaded_db, "--sales", f)
    assert res.exit_code == 2 and "looks like UTF-16" in res.stderr, res.stderr


def test_not_a_duckdb_file_as_db(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    """A CSV or SQLite file as --db is named for what it is, before DuckDB opens it."""
    csv = tmp_path / "sales.csv"
    csv.write_text(SALES)
    res = cli("runs", "list", "--db", csv)
    assert res.exit_code == 2 and "is a text file (CSV?), not a DuckDB database" in res.stderr
    lite = tmp_path / "x.sqlite"
    con = sqlite3.connect(lite)
    con.execute("CREATE TABLE a (x)")
    con.commit()
    con.close()
    res = cli("validate", "--db", lite)
    assert res.exit_code == 2 and "is a SQLite database, not a DuckDB database" in res.stderr
    assert "extension" not in res.stderr


def test_connections_never_autoload_extensions(tmp_path: Path) -> None:
    with Store.open(tmp_path / "a.duckdb") as store:
        rows = store.execute(
            "SELECT current_setting('autoload_known_extensions'), "
            "current_setting('autoinstall_known_extensions')"
        )
    assert rows == [(False, False)]


def test_validate_reads_only(cli: Callable[..., CliResult], loaded_db: Path) -> None:
    """validate works while another process has the file open read-only (was a lock error)."""
    code = (
        "import duckdb, sys, time; c = duckdb.connect(sys.argv[1], read_only=True); "
        "print('open', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(loaded_db)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        t0 = time.perf_counter()
        res = cli("validate", "--db", loaded_db)
        assert res.exit_code in (0, 1), res.stderr
        assert time.perf_counter() - t0 < 30
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


def test_items_bad_column_names_the_file(
    cli: Callable[..., CliResult], loaded_db: Path, tmp_path: Path
) -> None:
    f = tmp_path / "attrs.csv"
    f.write_text("item_id,my col\nIT-1,x\n")
    res = cli("ingest", "--db", loaded_db, "--items", f, "--replace")
    assert res.exit_code == 2
    assert "attrs.csv: column name 'my col' cannot be an items attribute" in res.stderr


def test_formulas_escaped_in_csv_output(cli: Callable[..., CliResult], tmp_path: Path) -> None:
    """Ids like =HYPERLINK(...) reach CSV output with a leading apostrophe; Parquet is exact."""
    evil = '=HYPERLINK("http://evil","click")'
    rows = ["item_id,market,date,price,quantity"]
    for w in range(12):
        for item in (evil, "+1-2", "@SUM(A1)", "IT-ok"):
            q = '"' + item.replace('"', '""') + '"'
            rows.append(
                f"{q},US,2024-{1 + w // 4:02d}-{1 + 7 * (w % 4):02d},{10 + w % 3},{5 + w % 2}"
            )
    f = tmp_path / "sales.csv"
    f.write_text("\n".join(rows) + "\n")
    db = tmp_path / "f.duckdb"
    assert cli("ingest", "--db", db, "--sales", f).exit_code == 0
    out = tmp_path / "e.csv"
    res = cli("estimate", "--db", db, "--model", "ols", "--output", out)
    assert res.exit_code == 0, res.stderr
    ids = set(pl.read_csv(out)["item_id"].to_list())
    assert ids == {"'" + evil, "'+1-2", "'@SUM(A1)", "IT-ok"}
    pq = tmp_path / "e.parquet"
    assert cli("estimate", "--db", db, "--model", "ols", "--output", pq).exit_code == 0
    assert evil in pl.read_parquet(pq)["item_id"].to_list()


def test_line_numbers_after_quoted_newlines(
    cli: Callable[..., CliResult], loaded_db: Path, tmp_path: Path
) -> None:
    """Each quoted id spans two lines, so row 11 starts on line 22 (was: 'line 12')."""
    rows = ["item_id,market,date,price,quantity"]
    rows += [f'"A{i}\nsecond line",US,2024-01-{i + 1:02d},10,1' for i in range(10)]
    rows.append("B,US,2024-02-05,x,1")
    f = tmp_path / "ql.csv"
    f.write_text("\n".join(rows) + "\n")
    res = cli("ingest", "--db", loaded_db, "--sales", f)
    assert res.exit_code == 2
    assert "row 11 (line 22) value 'x'" in res.stderr
    assert f.read_text().splitlines()[21] == "B,US,2024-02-05,x,1"
