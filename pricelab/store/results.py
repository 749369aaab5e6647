"""Result tables: where a command's result rows are stored, and how they stay cheap to append.

A result kind (``elasticities``, ``plans``...) is read as one relation of that name, keyed by
``run_id``. Small runs are appended to one table. A run of at least half a DuckDB row group
(:data:`PART_ROWS` rows) is stored in a table of its own, ``<name>__part<k>``, and ``<name>``
becomes a view over the rows of small runs (``<name>__base``) and every part, by column name.

Why: DuckDB's checkpoint merges adjacent row groups that fit in fewer (its vacuum). With
every run appended to one table, a run of 300,000 rows (122,880 + 122,880 + 54,240) left a
last row group that the next run's groups merged with, so every other 300k-row ``estimate``
rewrote ~354k rows of two tables at its close (0.5-0.9 CPU s, ``benchmarks/bench_writes.py``).
Runs of 61,441-92,160 rows were worse: three or four of them fit in one group fewer, so a
later run's close rewrote up to three earlier runs (270k rows). A part is written once and
never appended to, so no later checkpoint can merge its row groups with another run's; small
runs still share a table whose vacuum keeps it compact (``tests/test_store_compaction.py``),
and a merge there rewrites at most about one row group of earlier rows. Readers see the same
rows, columns and types either way.

A view over ~1,000 parts (three years of nightly runs) is slow to read: DuckDB binds and
plans every branch, so ``WHERE run_id = ?`` on it took seconds. Each part is therefore
indexed in the ``meta`` table (``result_part:<name>:<run_id>`` -> its part), and
:func:`read` takes one run from its own part, or from ``<name>__base``, without the view
(``benchmarks/bench_result_parts.py``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pricelab.errors import StoreError

if TYPE_CHECKING:
    import polars as pl

    from pricelab.store.db import Store

#: half of DuckDB's row group (122,880 rows): runs with at least this many rows get a table
#: of their own (smaller runs: two fit in one row group, the vacuum merges them cheaply)
PART_ROWS = 61_440
_BASE = "__base"
#: meta keys: ``result_part:<name>:<run_id>`` -> the part holding that run ("" when more
#: than one does); ``result_parts:<name>`` -> the base table, once every part is indexed
_RUN_KEY = "result_part:"
_INDEXED = "result_parts:"
_PART = re.compile(r"^(?P<name>.+)__part(?P<k>[0-9]+)$")


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")  # as pricelab.store.db's identifiers


def _q(name: str) -> str:
    if not _IDENT.match(name):
        raise StoreError(f"invalid table or column name {name!r}")
    return f'"{name}"'


def _catalog(store: Store) -> dict[str, str]:
    """Every table and view of the main schema and its type (``BASE TABLE`` or ``VIEW``)."""
    rows = store.con.execute(
        "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'main'"
    ).fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def parts(store: Store, name: str, catalog: dict[str, str] | None = None) -> list[str]:
    """The part tables of result ``name`` in the order they were written."""
    found = []
    for table in catalog if catalog is not None else _catalog(store):
        m = _PART.match(table)
        if m and m["name"] == name:
            found.append((int(m["k"]), table))
    return [t for _, t in sorted(found)]


def base_table(store: Store, name: str, catalog: dict[str, str] | None = None) -> str | None:
    """The table that holds the small runs of result ``name`` (None: no result stored yet)."""
    catalog = _catalog(store) if catalog is None else catalog
    kind = catalog.get(name)
    if kind is None:
        return None
    return name + _BASE if kind == "VIEW" else name


def write(store: Store, name: str, arrow: str, columns: list[str], rows: int, run_id: str) -> None:
    """Append the registered frame ``arrow`` (``columns``, ``rows`` rows of run ``run_id``)
    to result ``name``."""
    catalog = _catalog(store)
    base = base_table(store, name, catalog)
    large = rows >= PART_ROWS
    if base is None:
        base = name + _BASE if large else name
        store.con.execute(f"CREATE TABLE {_q(base)} AS SELECT * FROM {arrow} LIMIT 0").fetchall()
    elif large and base == name:  # first large run: the small runs' table moves behind a view
        base = name + _BASE
        store.con.execute(f"ALTER TABLE {_q(name)} RENAME TO {_q(base)}").fetchall()
    added = _add_columns(store, base, arrow, columns)
    cols = ", ".join(_q(c) for c in columns)
    if not large:
        store.con.execute(f"INSERT INTO {_q(base)} ({cols}) SELECT {cols} FROM {arrow}").fetchall()
        if added and base != name:
            _replace_view(store, name, base, parts(store, name, catalog))
        return
    have = parts(store, name, catalog)
    last = _PART.match(have[-1]) if have else None
    part = f"{name}__part{int(last['k']) + 1 if last else 1}"
    # the base's column types: rows read back as if appended to one table
    store.con.execute(f"CREATE TABLE {_q(part)} AS SELECT * FROM {_q(base)} LIMIT 0").fetchall()
    store.con.execute(f"INSERT INTO {_q(part)} ({cols}) SELECT {cols} FROM {arrow}").fetchall()
    _replace_view(store, name, base, [*have, part])
    _index(store, name, base, have, part, run_id)


def _index(store: Store, name: str, base: str, have: list[str], part: str, run_id: str) -> None:
    """Record in ``meta`` that ``part`` holds ``run_id`` (parts written before the index
    existed are indexed first, by their run ids)."""
    if not store.con.execute("SELECT 1 FROM meta WHERE key = ?", [_INDEXED + name]).fetchall():
        for old in have:
            for (rid,) in store.con.execute(f"SELECT DISTINCT run_id FROM {_q(old)}").fetchall():
                _point(store, name, str(rid), old)
        store.con.execute("INSERT INTO meta VALUES (?, ?)", [_INDEXED + name, base]).fetchall()
    _point(store, name, run_id, part)


def _point(store: Store, name: str, run_id: str, part: str) -> None:
    key = f"{_RUN_KEY}{name}:{run_id}"
    seen = store.con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchall()
    value = part if not seen or seen[0][0] == part else ""  # a run in two parts: the view
    store.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value]).fetchall()


def read(store: Store, name: str, run_id: str) -> pl.DataFrame | None:
    """The rows of run ``run_id`` in result ``name`` (with ``run_id``) read from its own
    part or from the base table, as the view gives them (same columns, order and types);
    None when the parts of ``name`` are not indexed (no parts: read the table as it is) or
    the run is in neither (read the view: a part written by an older pricelab)."""
    key = f"{_RUN_KEY}{name}:{run_id}"
    found = dict(
        store.con.execute(
            "SELECT key, value FROM meta WHERE key IN (?, ?)", [_INDEXED + name, key]
        ).fetchall()
    )
    base, part = found.get(_INDEXED + name), found.get(key)
    if base is None or part == "":
        return None
    if part is None:  # a small run: the base table has every column the view has
        rows = store.query(f"SELECT * FROM {_q(base)} WHERE run_id = ?", [run_id])
        # none: no such run, or a part an older pricelab wrote without indexing it
        return rows if rows.height else None
    return store.query(
        f"SELECT * FROM {_q(base)} WHERE false UNION ALL BY NAME "
        f"SELECT * FROM {_q(part)} WHERE run_id = ?",
        [run_id],
    )


def _add_columns(store: Store, table: str, arrow: str, columns: list[str]) -> bool:
    """Add the columns of ``arrow`` that ``table`` lacks (their type as in the frame)."""
    existing = {r[0] for r in store.con.execute(f"DESCRIBE SELECT * FROM {_q(table)}").fetchall()}
    missing = [c for c in columns if c not in existing]
    for col in missing:
        dtype = store.con.sql(f"SELECT {_q(col)} FROM {arrow} LIMIT 0").types[0]
        store.con.execute(f"ALTER TABLE {_q(table)} ADD COLUMN {_q(col)} {dtype}").fetchall()
    return bool(missing)


def _replace_view(store: Store, name: str, base: str, part_tables: list[str]) -> None:
    """``name`` as the base table's rows then every part's, matched by column name (a part
    written before a column was added reads NULL there, as an appended row would)."""
    selects = [f"SELECT * FROM {_q(t)}" for t in (base, *part_tables)]
    store.con.execute(
        f"CREATE OR REPLACE VIEW {_q(name)} AS " + " UNION ALL BY NAME ".join(selects)
    ).fetchall()
