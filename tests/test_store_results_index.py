"""Reading one run of a result with many parts without the view over every part.

The reference is the view itself (``SELECT * FROM el WHERE run_id = ?``, what
``read_result`` ran before): same rows, columns, order and types. A read that still goes
through the view fails once a part it does not need is gone (DuckDB binds every branch).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from pricelab.store import results
from pricelab.store.db import Store


def _frame(n: int, seed: int, extra: bool) -> pl.DataFrame:
    df = pl.DataFrame(
        {
            "item_id": [f"I{(i * 7 + seed) % 500}" for i in range(n)],
            "elasticity": [(i * 13 + seed) % 101 / 10.0 - 5.0 for i in range(n)],
        }
    )
    return df.with_columns(pl.lit(seed, dtype=pl.Int32).alias("n_obs")) if extra else df


# (run, rows, with the column added later): large runs (parts) and small ones (the base)
_RUNS = [("a", 80, False), ("b", 5, False), ("c", 100, False), ("d", 7, True), ("e", 90, True)]


def _write(db: Path, runs: list[tuple[str, int, bool]]) -> None:
    for i, (rid, n, extra) in enumerate(runs):
        with Store.open(db) as store, store.transaction():
            store.write_result("el", _frame(n, i, extra), rid)


def _via_view(store: Store, rid: str) -> pl.DataFrame:
    return store.query('SELECT * FROM "el" WHERE run_id = ?', [rid]).drop("run_id")


@pytest.fixture
def parted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(results, "PART_ROWS", 64)
    db = tmp_path / "p.duckdb"
    _write(db, _RUNS)
    return db


def test_each_run_reads_as_through_the_view(parted: Path) -> None:
    with Store.open(parted, read_only=True) as store:
        assert results.parts(store, "el") == ["el__part1", "el__part2", "el__part3"]
        for rid, n, _ in [*_RUNS, ("nope", 0, False)]:
            got, want = store.read_result("el", rid), _via_view(store, rid)
            assert got.height == n
            assert got.equals(want) and got.schema == want.schema, rid
        # the part written before n_obs existed reads it as NULL, typed as the base's column
        assert store.read_result("el", "a")["n_obs"].null_count() == 80


def test_a_run_is_read_without_binding_every_part(parted: Path) -> None:
    with Store.open(parted) as store:
        want = {rid: _via_view(store, rid) for rid, _, _ in _RUNS if rid != "a"}
        store.execute('DROP TABLE "el__part1"')  # run a's part: the view no longer binds
        with pytest.raises(Exception, match="el__part1"):
            _via_view(store, "c")
        for rid, frame in want.items():
            assert store.read_result("el", rid).equals(frame), rid


def test_parts_written_before_the_index_are_indexed_by_the_next_part(
    parted: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store.open(parted) as store:  # as session 9 left a store: parts, no index
        store.execute("DELETE FROM meta WHERE key LIKE 'result_part%'")
        assert results.read(store, "el", "a") is None  # through the view, as before
        assert store.read_result("el", "a").equals(_via_view(store, "a"))
    _write(parted, [("f", 70, True)])
    with Store.open(parted) as store:
        want = {rid: _via_view(store, rid) for rid, _, _ in [*_RUNS, ("f", 0, True)]}
        store.execute('DROP TABLE "el__part3"')  # run e's part
        for rid, frame in want.items():
            if rid != "e":
                assert results.read(store, "el", rid) is not None, rid
                assert store.read_result("el", rid).equals(frame), rid


def test_a_run_in_two_parts_reads_through_the_view(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(results, "PART_ROWS", 64)
    db = tmp_path / "two.duckdb"
    with Store.open(db) as store, store.transaction():
        store.write_result("el", _frame(70, 1, False), "x")
        store.write_result("el", _frame(75, 2, False), "x")
    with Store.open(db, read_only=True) as store:
        assert results.read(store, "el", "x") is None
        got = store.read_result("el", "x")
        assert got.height == 145 and got.equals(_via_view(store, "x"))


def test_a_part_an_older_pricelab_wrote_unindexed_is_still_read(parted: Path) -> None:
    """Session 9's code appends parts without indexing them: its run is not in the base
    table, so the read goes through the view rather than returning nothing."""
    with Store.open(parted) as store:
        store.execute("DELETE FROM meta WHERE key = 'result_part:el:e'")
        assert results.read(store, "el", "e") is None
        got = store.read_result("el", "e")
        assert got.height == 90 and got.equals(_via_view(store, "e"))
