"""Result tables: large runs in tables of their own behind a view (``pricelab/store/results.py``).

The reference is the previous code path on the same data: every run appended to one table
(``PART_ROWS`` set above any run). Reads must give the same frames, columns and types.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from pricelab.store import results
from pricelab.store.db import Store


def _frame(n: int, seed: int, cols: tuple[str, ...]) -> pl.DataFrame:
    data: dict[str, object] = {
        "item_id": [f"I{(i * 7 + seed) % 1000}" for i in range(n)],
        "elasticity": [(i * 13 + seed) % 101 / 10.0 - 5.0 for i in range(n)],
    }
    if "n_obs" in cols:
        data["n_obs"] = [i % 52 + seed for i in range(n)]
    if "flags" in cols:
        data["flags"] = [None if i % 3 else "fallback" for i in range(n)]
    return pl.DataFrame(data).select([c for c in ("item_id", "elasticity", *cols) if c in data])


# (rows, extra columns): small and large runs, a column added by a small run and by a
# large one, a large run without a column the table has
_RUNS = [
    (10, ("n_obs",)),
    (100, ("n_obs",)),
    (5, ("n_obs", "flags")),
    (120, ("flags",)),
    (64, ("n_obs", "flags")),
    (3, ()),
]


def _write_all(db: Path) -> None:
    # a small and a large write to one table in one transaction
    with Store.open(db) as store, store.transaction():
        store.write_result("el", _frame(20, 99, ("n_obs",)), "r_first_small")
        store.write_result("el", _frame(80, 98, ("n_obs",)), "r_first_large")
    for i, (n, cols) in enumerate(_RUNS):
        with Store.open(db) as store, store.transaction():
            store.write_result("el", _frame(n, i, cols), f"r{i}")


def _read_all(db: Path) -> tuple[dict[str, pl.DataFrame], pl.DataFrame]:
    with Store.open(db, read_only=True) as store:
        ids = ["r_first_small", "r_first_large", *[f"r{i}" for i in range(len(_RUNS))]]
        each = {rid: store.read_result("el", rid) for rid in ids}
        whole = store.table("el")
        return each, whole.sort(whole.columns, nulls_last=True)


def test_runs_read_back_as_from_one_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(results, "PART_ROWS", 10**9)
    _write_all(tmp_path / "one.duckdb")
    want, want_whole = _read_all(tmp_path / "one.duckdb")
    monkeypatch.setattr(results, "PART_ROWS", 64)
    _write_all(tmp_path / "parts.duckdb")
    got, got_whole = _read_all(tmp_path / "parts.duckdb")
    with Store.open(tmp_path / "parts.duckdb", read_only=True) as store:
        assert results.parts(store, "el") == ["el__part1", "el__part2", "el__part3", "el__part4"]
        assert store.has_table("el") and store.count("el") == want_whole.height
    for rid, frame in want.items():
        assert got[rid].equals(frame), rid  # values, column order and dtypes
        assert got[rid].schema == frame.schema, rid
    assert got_whole.equals(want_whole)
    # and each run is what was written (new columns NULL for the runs before them)
    n, cols = _RUNS[3]
    written = _frame(n, 3, cols)
    assert got["r3"].select(written.columns).equals(written)
    assert got["r3"]["n_obs"].null_count() == n


def test_failed_command_leaves_no_part(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(results, "PART_ROWS", 64)
    db = tmp_path / "p.duckdb"
    with Store.open(db) as store, store.transaction():
        store.write_result("el", _frame(10, 0, ()), "small")
    with Store.open(db) as store:
        before = store.snapshot()
        with pytest.raises(RuntimeError), store.transaction():
            store.write_result("el", _frame(100, 1, ()), "large")
            raise RuntimeError("the command failed after writing")
        assert store.table_names() == sorted(before)
        after = store.snapshot()
    assert all(after[t].equals(before[t]) for t in before)


def _blocks(con: duckdb.DuckDBPyConnection, table: str, groups: list[int]) -> set[tuple[int, ...]]:
    """Where each column segment of ``table``'s row groups ``groups`` is stored."""
    rows = con.execute(
        "SELECT row_group_id, column_id, segment_id, block_id, block_offset "
        f"FROM pragma_storage_info('{table}') WHERE persistent"
    ).fetchall()
    return {tuple(r) for r in rows if r[0] in groups}


# rows per run, and the run whose close merges the first run's rows when every run is
# appended to one table: 300,000 = 122,880 + 122,880 + 54,240 (the next run merges the last
# group); 80,000 (the fourth run: three runs fit in two groups)
_SIZES = [(300_000, 2), (80_000, 4)]


def _large_runs(db: Path, n: int, runs: int, plain: bool) -> list[set[tuple[int, ...]]]:
    """``runs`` commands that each store ``n`` rows; after each, where the first run's rows
    are stored (``plain``: appended to one table, as before)."""
    frame = pl.DataFrame({"x": pl.int_range(n, eager=True)})
    seen = []
    for r in range(runs):
        with Store.open(db) as store, store.transaction():
            if plain:
                run = frame.with_columns(pl.lit(f"r{r}").alias("run_id"))
                if r == 0:
                    store.execute("CREATE TABLE el (x BIGINT, run_id VARCHAR)")
                store.insert_frame("el", run)
            else:
                store.write_result("el", frame, f"r{r}")
        con = duckdb.connect(str(db), read_only=True)
        try:
            first = [0, 1, 2] if n > 122_880 else [0]
            seen.append(_blocks(con, "el" if plain else "el__part1", first))
        finally:
            con.close()
    with Store.open(db, read_only=True) as store:
        back = store.read_result("el", "r0")
        assert back.height == n and back["x"].equals(frame["x"])
    return seen


@pytest.mark.parametrize(("n", "merged_at"), _SIZES)
def test_a_later_run_never_rewrites_an_earlier_runs_row_groups(
    tmp_path: Path, n: int, merged_at: int
) -> None:
    seen = _large_runs(tmp_path / "parts.duckdb", n, merged_at + 1, plain=False)
    assert seen[0] and all(s == seen[0] for s in seen), "a later run moved run 1's segments"


@pytest.mark.parametrize(("n", "merged_at"), _SIZES)
def test_appending_every_run_to_one_table_rewrites_them(
    tmp_path: Path, n: int, merged_at: int
) -> None:
    """Why these runs get tables of their own: appended to one table, a later run's
    checkpoint merges the first run's row groups with others (if DuckDB stops doing that,
    the parts are no longer needed)."""
    seen = _large_runs(tmp_path / "plain.duckdb", n, merged_at, plain=True)
    assert all(s == seen[0] for s in seen[:-1]) and seen[-1] != seen[0]
