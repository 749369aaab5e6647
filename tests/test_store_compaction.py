"""The database file stays proportional to its content over many commands.

Every command appends a row to ``runs`` (and most a few result rows) and closes the database;
DuckDB's checkpoint at the close writes those rows as a new row group and its vacuum merges
it with the previous one. Skipping the vacuum (``max_vacuum_tasks = 0``) was measured as a way
to save the merge of the large result tables (0.5-0.7 CPU s every other estimate at 300k
groups, ``benchmarks/bench_writes.py``) but leaves one row group (and about a block) per
command in every small table: the file would grow without bound relative to its content.
Large runs are stored in tables of their own instead (``pricelab/store/results.py``,
``tests/test_store_results.py``); small runs still rely on the vacuum, as tested here.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pricelab.store.db import Store
from pricelab.store.runs import record_run

_COMMANDS = 8
_ROWS = pl.DataFrame(
    {"item_id": [f"I{i}" for i in range(40)], "price": [float(i) for i in range(40)]}
)


def _commands(db: Path, setting: str | None = None) -> dict[str, int]:
    """``_COMMANDS`` commands that each record a run with 40 result rows; then the row
    groups of ``runs`` and of the result table."""
    for i in range(_COMMANDS):
        with Store.open(db) as store:
            if setting:
                store.con.execute(setting)
            run = record_run(store, "optimize", {"i": i})
            with store.transaction():
                store.write_result("plans", _ROWS, run.run_id)
                run.finish({})
    with Store.open(db, read_only=True) as store:
        assert store.count("runs") == _COMMANDS
        assert store.count("plans") == _COMMANDS * _ROWS.height
        return {
            t: store.execute(
                f"SELECT count(DISTINCT row_group_id) FROM pragma_storage_info('{t}')"
            )[0][0]
            for t in ("runs", "plans")
        }


def test_small_tables_stay_compact_over_many_commands(tmp_path: Path) -> None:
    groups = _commands(tmp_path / "p.duckdb")
    assert groups["runs"] == 1, groups
    assert groups["plans"] <= 2, groups
    with Store.open(tmp_path / "p.duckdb", read_only=True) as store:
        first = store.read_result("plans", store.execute("SELECT min(run_id) FROM runs")[0][0])
    assert first.equals(_ROWS)


def test_without_the_vacuum_every_command_leaves_a_row_group(tmp_path: Path) -> None:
    """Why pricelab keeps DuckDB's vacuum on: without it each command's rows stay a row
    group of their own (if DuckDB stops doing that, skipping the vacuum after large result
    appends becomes worth measuring again)."""
    plain = _commands(tmp_path / "plain.duckdb")
    skipped = _commands(tmp_path / "skip.duckdb", "SET max_vacuum_tasks = 0")
    assert skipped["runs"] > plain["runs"] and skipped["plans"] > plain["plans"], skipped
    assert (tmp_path / "skip.duckdb").stat().st_size > 2 * (
        tmp_path / "plain.duckdb"
    ).stat().st_size
    assert plain["runs"] == 1
