"""Ingest's fast paths give what the text path gives (issue #20, goal 5).

A Parquet sales file is read with its own column types and validated without a text
round trip; a file already in strict key order is stored without a sort and without the
duplicate hash. References: the text path on the same file (every column, every message)
and a brute-force order check; the stored table equals a shuffled file's (sorted by
DuckDB's ORDER BY)."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from pricelab import api
from pricelab.io import read_local_table
from pricelab.quality.frames import strictly_ordered, unique_in_runs, validate_frame
from pricelab.store import Store
from pricelab.store.ingest_read import _one_chunk, read_validated
from pricelab.store.sales_keys import SALES_KEYS, run_order, runs_in_key_order, take_rows


def _text_path(path: Path) -> tuple[pl.DataFrame, list[str]]:
    df = read_local_table(path, all_strings=True, name=str(path))
    typed, rep = validate_frame("sales", df, str(path), line_offset=None)
    return typed, [str(i.to_dict()) for i in rep.issues]


def _sales(n: int = 400, seed: int = 3) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    days = [dt.date(2024, 1, 1) + dt.timedelta(weeks=int(w)) for w in rng.integers(0, 60, n)]
    return pl.DataFrame(
        {
            "item_id": rng.integers(0, 30, n),  # integer ids: text on both paths
            "market": pl.Series(rng.choice(["US", "DE", " GB "], n)).cast(pl.Categorical),
            "date": days,
            "price": rng.uniform(0.5, 300, n) * 10.0 ** rng.integers(-3, 6, n),
            "quantity": rng.poisson(3, n).astype(np.int32),
            "promo": rng.integers(0, 2, n).astype(np.int8),
            "unit_cost": rng.uniform(0, 1, n).astype(np.float32),  # text: 0.1 stays 0.1
            "deal": rng.integers(0, 2, n).astype(bool),  # text "true": not kept
            "temperature": rng.normal(10, 5, n),
            "visits": rng.integers(0, 1 << 62, n, dtype=np.int64),
            "when": [dt.datetime(2024, 1, 1, 8, 30)] * n,
        }
    ).unique(["item_id", "market", "date"], keep="first", maintain_order=True)


def test_typed_parquet_equals_the_text_path(tmp_path, monkeypatch) -> None:
    """Every column and every warning as the text path gives them."""
    import sys

    ingest = sys.modules["pricelab.store.ingest_read"]
    path = tmp_path / "sales.parquet"
    _sales().write_parquet(path)
    want, issues = _text_path(path)
    monkeypatch.setattr(ingest, "read_local_table", None)  # the typed path alone
    got, rep = read_validated("sales", path, str(path))
    assert rep.ok and [str(i.to_dict()) for i in rep.issues] == issues
    assert got.schema == want.schema and got.equals(want)
    assert "deal" not in got.columns and got["visits"].dtype == pl.Float64


@pytest.mark.parametrize(
    ("column", "value"),
    [("price", 0.0), ("quantity", -1), ("date", dt.date(1850, 1, 1)), ("price", float("nan"))],
)
def test_typed_parquet_errors_are_the_text_paths(tmp_path, column, value) -> None:
    """A file that breaks a rule gets the text path's messages, word for word."""
    df = _sales(60)
    df = df.with_columns(
        pl.when(pl.int_range(pl.len()) == 17)
        .then(pl.lit(value, dtype=df[column].dtype))
        .otherwise(pl.col(column))
        .alias(column)
    )
    path = tmp_path / "bad.parquet"
    df.write_parquet(path)
    _, rep = read_validated("sales", path, str(path))
    assert not rep.ok
    assert [str(i.to_dict()) for i in rep.issues] == _text_path(path)[1]


def test_strictly_ordered_against_brute_force() -> None:
    """Strict key order (no duplicate keys) with text and dates, nulls never ordered."""
    rng = np.random.default_rng(0)
    words = ["a", "B", "Zürich", "Äpfel", "a\x00b", "ab", ""]
    for n in range(0, 7):
        for _ in range(40):
            rows = [
                (
                    rng.choice(words),
                    rng.choice(words[:3]),
                    dt.date(2024, 1, int(rng.integers(1, 4))),
                )
                for _ in range(n)
            ]
            if rng.random() < 0.5:
                rows = sorted(set(rows), key=lambda r: (r[0].encode(), r[1].encode(), r[2]))
            df = pl.DataFrame(rows, schema=["item_id", "market", "date"], orient="row")
            enc = [(a.encode(), b.encode(), d) for a, b, d in rows]
            want = all(x < y for x, y in itertools.pairwise(enc))
            assert strictly_ordered(df, ["item_id", "market", "date"]) == want, rows
    nulls = pl.DataFrame({"item_id": ["a", None], "market": ["x", "x"]})
    assert not strictly_ordered(nulls, ["item_id", "market"])


def test_a_file_in_key_order_is_stored_as_a_shuffled_one(tmp_path) -> None:
    """No sort for a file in key order: the same table and keys as a shuffled file's
    (ORDER BY in DuckDB), also with keys DuckDB and polars could order differently."""
    items = ["I1", "I10", "I2", "Zürich", "Äpfel", "a", "B"]
    rows = [
        (i, m, dt.date(2024, 1, 1) + dt.timedelta(weeks=w), 10.0 + w, w % 4)
        for i in items
        for m in ("US", "DE")
        for w in range(6)
    ]
    df = pl.DataFrame(rows, schema=["item_id", "market", "date", "price", "quantity"], orient="row")
    ordered = df.sort("item_id", "market", "date")
    assert strictly_ordered(ordered, ["item_id", "market", "date"])
    stored = []
    for name, frame in (
        ("ordered", ordered),
        ("shuffled", df.sample(fraction=1.0, seed=2, shuffle=True)),
    ):
        frame.write_parquet(tmp_path / f"{name}.parquet")
        db = tmp_path / f"{name}.duckdb"
        api.ingest(db, sales=tmp_path / f"{name}.parquet")
        with Store.open(db, read_only=True) as store:
            stored.append(
                (
                    store.query("SELECT * FROM sales ORDER BY rowid"),
                    store.query(f"SELECT * FROM {SALES_KEYS} ORDER BY ALL"),
                    store.query("SELECT * FROM sales ORDER BY item_id, market, date"),
                )
            )
    (a, ka, sa), (b, kb, sb) = stored
    assert a.equals(b) and ka.equals(kb) and a.equals(sa) and b.equals(sb)
    assert ka.height == len(items) * 2


def test_runs_of_whole_groups_are_put_in_key_order_as_a_sort_would() -> None:
    """A file of whole groups in date order, groups in any order: the runs reordered
    equal the sorted frame; a group in two runs or dates out of order: None (sorted by
    DuckDB)."""
    rng = np.random.default_rng(4)
    words = ["a", "B", "Zürich", "Äpfel", "ab", "I10", "I2"]
    for trial in range(60):
        groups = {(str(rng.choice(words)), str(rng.choice(["US", "DE", "GB"]))) for _ in range(6)}
        parts = []
        for item, market in sorted(groups):  # a set's order changes with the hash seed
            n = int(rng.integers(1, 5))
            days = sorted(rng.choice(40, n, replace=False))
            parts.append(
                pl.DataFrame(
                    {
                        "item_id": [item] * n,
                        "market": [market] * n,
                        "date": [dt.date(2024, 1, 1) + dt.timedelta(weeks=int(d)) for d in days],
                        "price": rng.uniform(1, 9, n),
                    }
                )
            )
        order = rng.permutation(len(parts))
        frame = pl.concat([parts[i] for i in order])
        want = frame.sort("item_id", "market", "date")
        got = runs_in_key_order(frame)
        assert got is not None and got.equals(want)
        rows = run_order(frame)  # ingest's way: the same rows, a column at a time
        assert rows is not None
        if rows.size:
            box = [frame.clone()]
            assert take_rows(box, rows).equals(want) and not box
        else:  # the groups came in key order already
            assert frame.equals(want)
        big = [p for p in parts if p.height >= 2]
        if big and len(parts) > 1:
            other = next(p for p in parts if p is not big[0])
            split = pl.concat([big[0].head(1), other, big[0].slice(1)])  # a group twice
            assert runs_in_key_order(split) is None
            backwards = pl.concat([big[0].reverse(), other])  # dates out of order
            assert runs_in_key_order(backwards) is None
        rows = frame.sample(fraction=1.0, shuffle=True, seed=trial)  # any order at all
        result = runs_in_key_order(rows)
        assert result is None or result.equals(want)


def test_unique_in_runs_never_hides_a_duplicate() -> None:
    """Against brute force: True only when no two rows share their keys, and True for
    any frame of whole groups in date order (the duplicate hash is then skipped)."""
    rng = np.random.default_rng(6)
    keys = ["item_id", "market", "date"]
    for trial in range(300):
        n = int(rng.integers(0, 9))
        rows = [
            (
                str(rng.choice(["a", "B", "Ä"])),
                str(rng.choice(["US", "DE"])),
                int(rng.integers(1, 4)),
            )
            for _ in range(n)
        ]
        if trial % 3 == 0:  # whole groups in date order, groups in any order
            rows = sorted(set(rows), key=lambda r: (r[0], r[1], r[2]))
            groups = sorted({r[:2] for r in rows})
            rng.shuffle(groups)
            rows = [r for g in groups for r in rows if r[:2] == tuple(g)]
        df = pl.DataFrame(rows, schema=keys, orient="row")
        got = unique_in_runs(df, keys)
        if got:
            assert len(set(rows)) == len(rows), rows
        if trial % 3 == 0:
            assert got, rows
    assert not unique_in_runs(
        pl.DataFrame({"item_id": [None, None], "date": [1, 1]}), ["item_id", "date"]
    )


def test_the_one_pass_number_check_agrees_with_every_rule() -> None:
    """``_all_valid`` is True exactly when the rules of ``number`` (run on the text of the
    same values) flag nothing, for every rule set and edge values."""
    from pricelab.quality.frames import _all_valid, _Checker

    edge = [0.0, -0.0, 1.0, 0.5, 2.0, -1.0, 1e-7, 1e-6, 1e12, 1.0000001e12, -1e12, 3.5]
    edge += [float("nan"), float("inf"), None]
    rng = np.random.default_rng(8)
    names = ["required", "positive", "fraction", "nonneg", "integer", "binary"]
    for _ in range(400):
        values = [edge[i] for i in rng.integers(0, len(edge), int(rng.integers(1, 4)))]
        num = pl.Series("v", values, dtype=pl.Float64)
        rules = dict(zip(names, (bool(b) for b in rng.integers(0, 2, len(names))), strict=True))
        checker = _Checker("sales", pl.DataFrame({"v": num.cast(pl.String)}), "f", None)
        checker.number("v", **rules)
        assert _all_valid(num, *rules.values()) == (not checker.report.issues), (values, rules)
        typed = _Checker("sales", pl.DataFrame({"v": num}), "f", None)
        typed.number("v", **rules)
        # the same rules and counts (values are shown as numbers here, as text there:
        # ingest reports a file's errors from the text path)
        assert [(i.rule, i.count) for i in typed.report.issues] == [
            (i.rule, i.count) for i in checker.report.issues
        ]
        assert typed.out["v"].equals(checker.out["v"], null_equal=True)


def test_one_chunk_keeps_every_value_and_type() -> None:
    """The reads are made one chunk per column, a column at a time: same frame."""
    parts = [_sales(50, seed) for seed in range(4)]
    chunked = pl.concat(parts, rechunk=False)
    assert max(chunked.n_chunks("all")) == 4
    got = _one_chunk(chunked.clone())
    assert got.n_chunks("all") == [1] * chunked.width
    assert got.schema == chunked.schema and got.equals(chunked)
