"""Append, conflict, --replace, idempotence, weekly aggregation, crashes and locks."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl

from pricelab.store import Store
from tests.conftest import assert_same, run_subprocess, snapshot, write_csv


def _sales(store_path: Path) -> pl.DataFrame:
    with Store.open(store_path, read_only=True) as s:
        return s.table("sales").sort("item_id", "market", "date")


def test_loads_all_tables(loaded_db: Path) -> None:
    with Store.open(loaded_db, read_only=True) as s:
        assert s.count("sales") == 40
        assert s.count("items") == 2 and "season" in s.table("items").columns
        costs = s.table("costs").sort("item_id")
        assert costs["market"].to_list() == [None, "US"]
        assert s.table("markets").sort("market")["fx_rate"].to_list() == [1.0, 1.08]
        assert s.count("inventory") == 2
        assert s.table("runs")["command"].to_list() == ["ingest"]


def test_append_new_dates(cli, loaded_db: Path, tmp_path: Path) -> None:
    more = write_csv(
        tmp_path / "more.csv",
        """
        item_id,market,date,price,quantity
        IT-1,US,2024-03-11,120,2
        IT-3,DE,2024-03-11,80,0""",
    )
    res = cli("ingest", "--db", loaded_db, "--sales", more)
    assert res.exit_code == 0, res.stderr
    df = _sales(loaded_db)
    assert df.height == 42
    assert df.filter(pl.col("item_id") == "IT-3")["quantity"].to_list() == [0]


def test_conflict_without_replace(cli, loaded_db: Path, tmp_path: Path) -> None:
    before = snapshot(loaded_db)
    clash = write_csv(
        tmp_path / "clash.csv",
        """
        item_id,market,date,price,quantity
        IT-9,US,2024-01-01,1,1
        IT-1,US,2024-01-08,999,9""",
    )
    res = cli("ingest", "--db", loaded_db, "--sales", clash)
    assert res.exit_code == 2
    assert res.stderr == (
        f"error: {clash}: 1 sales key(s) already loaded, e.g. item_id=IT-1, "
        "market=US, date=2024-01-08; use --replace to replace them\n"
    )
    assert_same(before, snapshot(loaded_db))


def test_replace_replaces_and_is_idempotent(
    cli, loaded_db: Path, tmp_path: Path, small_files
) -> None:
    clash = write_csv(
        tmp_path / "clash.csv",
        """
        item_id,market,date,price,quantity
        IT-1,US,2024-01-08,999,9""",
    )
    res = cli("ingest", "--db", loaded_db, "--sales", clash, "--replace", "--json")
    assert res.exit_code == 0, res.stderr
    df = _sales(loaded_db)
    row = df.filter(
        (pl.col("item_id") == "IT-1")
        & (pl.col("market") == "US")
        & (pl.col("date") == dt.date(2024, 1, 8))
    )
    assert row["price"].to_list() == [999.0] and row["quantity"].to_list() == [9]
    assert df.height == 40
    # the same files twice with --replace change nothing in the data
    args = ["ingest", "--db", loaded_db, "--replace"]
    for kind, path in small_files.items():
        args += [f"--{kind}", path]
    assert cli(*args).exit_code == 0
    first = snapshot(loaded_db)
    assert cli(*args).exit_code == 0
    second = snapshot(loaded_db)
    for name in ("sales", "items", "costs", "markets", "inventory"):
        assert first[name].equals(second[name])
    with Store.open(loaded_db, read_only=True) as s:
        fps = s.query("SELECT input_fingerprint FROM runs ORDER BY started_at")
    assert fps[-1, 0] == fps[-2, 0]


def test_daily_rows_summed_to_weeks(cli, tmp_path: Path) -> None:
    daily = write_csv(
        tmp_path / "daily.csv",
        """
        item_id,market,date,price,quantity,promo,unit_cost
        A,US,2024-01-01,10,3,0,4
        A,US,2024-01-03,20,1,1,4
        A,US,2024-01-07,15,0,0,4
        A,US,2024-01-08,12,0,0,4
        A,US,2024-01-09,14,0,0,4""",
    )
    db = tmp_path / "d.duckdb"
    res = cli("ingest", "--db", db, "--sales", daily, "--json")
    assert res.exit_code == 0, res.stderr
    df = _sales(db)
    assert df["date"].to_list() == [dt.date(2024, 1, 1), dt.date(2024, 1, 8)]
    assert df["quantity"].to_list() == [4, 0]
    # revenue-weighted price in a week with sales, plain mean in a week without
    assert df["price"].to_list() == [(10 * 3 + 20 * 1) / 4, 13.0]
    assert df["promo"].to_list() == [1, 0]
    assert '"daily_rows_summed_to_weeks": 3' in res.stdout


def test_crash_mid_ingest_keeps_previous_content(loaded_db: Path, tmp_path: Path) -> None:
    before = snapshot(loaded_db)
    new = write_csv(
        tmp_path / "new.csv",
        """
        item_id,market,date,price,quantity
        IT-5,US,2024-05-06,50,1""",
    )
    items = write_csv(
        tmp_path / "items2.csv",
        """
        item_id,category
        IT-5,bags""",
    )
    proc = run_subprocess(
        "ingest",
        "--db",
        loaded_db,
        "--sales",
        new,
        "--items",
        items,
        env={"PRICELAB_FAULT": "ingest:after-sales"},
    )
    assert proc.returncode == -9  # killed by SIGKILL after the sales insert, before commit
    assert_same(before, snapshot(loaded_db))


def test_locked_database(small_files, tmp_path: Path) -> None:
    db = tmp_path / "locked.duckdb"
    duckdb.connect(str(db)).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,time; c=duckdb.connect({str(db)!r}); print('ready', flush=True); "
            "time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        proc = run_subprocess("ingest", "--db", db, "--sales", small_files["sales"])
        assert proc.returncode == 75  # transient (EX_TEMPFAIL): a scheduler retries it
        assert proc.stderr.startswith(f"error: {db}: database is locked by another process")
        assert "retry when that command has finished" in proc.stderr
        assert "Traceback" not in proc.stderr
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    time.sleep(0.1)
    assert run_subprocess("ingest", "--db", db, "--sales", small_files["sales"]).returncode == 0


def test_newer_schema_is_refused(cli, loaded_db: Path, small_files) -> None:
    con = duckdb.connect(str(loaded_db))
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'").fetchall()
    con.close()
    res = cli("validate", "--db", loaded_db)
    assert res.exit_code == 2
    assert res.stderr == (
        f"error: {loaded_db}: database schema version 99 was written by a "
        "newer pricelab (this one reads up to 1); upgrade pricelab\n"
    )


def test_foreign_duckdb_is_refused(cli, tmp_path: Path, small_files) -> None:
    db = tmp_path / "other.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE t(x INT)").fetchall()
    con.close()
    res = cli("ingest", "--db", db, "--sales", small_files["sales"])
    assert res.exit_code == 2
    assert "is a DuckDB database but not a pricelab one" in res.stderr


def test_db_from_environment(cli, small_files, tmp_path: Path, monkeypatch) -> None:
    db = tmp_path / "env.duckdb"
    monkeypatch.setenv("PRICELAB_DB", str(db))
    assert cli("ingest", "--sales", small_files["sales"]).exit_code == 0
    assert db.exists()


def test_validate_reports_warnings_and_errors(cli, loaded_db: Path) -> None:
    res = cli("validate", "--db", loaded_db, "--json")
    assert res.exit_code == 0
    assert '"ok": true' in res.stdout
    # break referential integrity behind pricelab's back: validate must exit 1
    con = duckdb.connect(str(loaded_db))
    con.execute("INSERT INTO costs VALUES ('GHOST', NULL, 3.0)").fetchall()
    con.close()
    res = cli("validate", "--db", loaded_db)
    assert res.exit_code == 1
    assert "costs: column 'item_id': names items that are in neither sales nor items" in res.stderr


def test_warnings_gaps_jumps_short(cli, tmp_path: Path) -> None:
    f = write_csv(
        tmp_path / "w.csv",
        """
        item_id,market,date,price,quantity
        A,US,2024-01-01,10,1
        A,US,2024-01-15,200,1
        A,US,2024-01-22,20,1""",
    )
    db = tmp_path / "w.duckdb"
    res = cli("ingest", "--db", db, "--sales", f, "--json")
    assert res.exit_code == 0
    import json

    rules = {w["rule"] for w in json.loads(res.stdout)["warnings"]}
    assert rules == {
        "weekly series with gaps (missing weeks)",
        "price jumps more than 10x week over week",
        "items without a unit cost (no unit_cost in sales and no costs row)",
        "series shorter than 8 weeks (too short to estimate reliably)",
    }
