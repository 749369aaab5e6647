"""``sales_keys``: the distinct ``item_id, market`` keys of the sales, kept by ingest.

``estimate`` finds the groups of the stored sales in its one scan of them (runs of equal
key hashes, :mod:`pricelab.engines.keyruns`) and looks their keys up here instead of
aggregating the whole table first (at 300k item-markets × 52 weeks that aggregate cost
about as much CPU as the scan). It is an index, not an input: not in the run
fingerprints, not in the contract.

``ingest`` keeps it valid on every load, inside the load's transaction:

- sales loaded into an empty table (written in key order): every key;
- later sales whose keys all sort after the stored ones (new items with higher ids):
  appended after the stored rows, the table stays in key order; their keys are added;
- any other later sales (a nightly append of the week's sales to the stored groups, a
  corrected day re-loaded with ``--replace``, a new item between stored ones): their
  rows would sit apart from their group's or out of key order, so the table is rewritten
  in key order (:func:`cluster_sales`) and the new keys are added.

So sales are always stored as a fresh load of the same rows stores them: in key order,
each group's rows together (at 300k item-markets × 53 weeks the rewrite costs about 6 CPU
seconds and 1.1 GB more in the nightly ingest; ``estimate`` on a database whose groups
are split costs about 10 CPU seconds and 2.9 GB more, on the whole-frame path).

The scan checks every group against it, so a table edited behind ingest's back is never
misread (``estimate`` then reads the groups another way).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pricelab.quality.frames import strictly_ordered
from pricelab.store.db import Store, _ident

SALES_KEYS = "sales_keys"
#: the order ingest stores sales in (a fresh load and a rewrite alike)
SALES_ORDER = ("item_id", "market", "date")
_CLUSTERED = "sales__clustered"


def update_sales_keys(store: Store, frame: pl.DataFrame, stored_before: int) -> None:
    """Keep ``sales_keys`` (and the key order of sales) valid after ``frame`` was appended
    to sales, inside ingest's transaction; ``stored_before``: sales rows in the table
    before the append (after rows replaced by ``--replace`` were deleted). The distinct
    keys are found by DuckDB (at 15.6M rows: 0.3 CPU s, where polars took 3 s and 1.2 GB)."""
    if stored_before == 0:
        store.execute(f"DROP TABLE IF EXISTS {SALES_KEYS}")
        store.execute(
            f"CREATE TABLE {SALES_KEYS} AS SELECT DISTINCT item_id, market FROM sales "
            "ORDER BY item_id, market"
        )
        return
    if not store.has_table(SALES_KEYS):  # loaded before the index existed: build it
        cluster_sales(store)
        store.execute(
            f"CREATE TABLE {SALES_KEYS} AS SELECT DISTINCT item_id, market FROM sales "
            "ORDER BY item_id, market"
        )
        return
    with store.registered("__pricelab_new_keys", frame.select("item_id", "market")) as view:
        if not _after_stored(store, view):  # rows of stored groups (or new groups between
            cluster_sales(store)  # them) came last: put every group back together
        store.execute(
            f"INSERT INTO {SALES_KEYS} SELECT DISTINCT item_id, market FROM {view} "
            f"ANTI JOIN {SALES_KEYS} USING (item_id, market) ORDER BY item_id, market"
        )


def _after_stored(store: Store, view: str) -> bool:
    """True when every key of ``view`` sorts after every stored key (DuckDB's order), as
    new items with higher ids do: appended after the stored rows, sales stay in key
    order."""
    last = store.execute(
        f"SELECT item_id, market FROM {SALES_KEYS} ORDER BY item_id DESC, market DESC LIMIT 1"
    )
    if not last:
        return True
    item, market = last[0]
    before = store.execute(
        f"SELECT count(*) FROM {view} WHERE item_id < ? OR (item_id = ? AND market <= ?)",
        [item, item, market],
    )[0][0]
    return not before


def runs_in_key_order(frame: pl.DataFrame) -> pl.DataFrame | None:
    """``frame`` in key order (:data:`SALES_ORDER`) when it is made of runs of whole
    groups, each in date order (a file written group by group, e.g. by item then market
    in another order): the runs are put in key order, no row sort needed. None when a
    group is in two runs or its dates are out of order (DuckDB sorts it then).
    """
    rows = run_order(frame)
    if rows is None:
        return None
    return frame[rows] if rows.size else frame


def run_order(frame: pl.DataFrame) -> np.ndarray | None:
    """The row indices that put the runs of :func:`runs_in_key_order` in key order; an
    empty array when ``frame`` is in key order already, None when it is not made of such
    runs."""
    none = np.empty(0, dtype=np.int64)
    if frame.height < 2:
        return none
    item, market, date = (pl.col(c) for c in SALES_ORDER)
    start = ((item != item.shift(1)) | (market != market.shift(1))).fill_null(True)
    flags = frame.select(start.alias("start"), ((date > date.shift(1)) | start).all().alias("ok"))
    if not flags["ok"][0]:
        return None
    starts = np.flatnonzero(flags["start"].to_numpy())
    runs = frame[starts].select("item_id", "market").with_row_index("run")
    runs = runs.sort("item_id", "market")
    if not strictly_ordered(runs, ["item_id", "market"]):
        return None  # a group in two runs
    order = runs["run"].to_numpy()
    if (np.diff(order) == 1).all():
        return none  # in key order already
    lengths = np.diff(np.r_[starts, frame.height])[order]
    first = starts[order]
    offset = np.repeat(first - np.r_[0, np.cumsum(lengths)[:-1]], lengths)
    return offset + np.arange(frame.height)


def take_rows(box: list[pl.DataFrame], rows: np.ndarray) -> pl.DataFrame:
    """The one frame in ``box``, taken out of it, at ``rows``, a column at a time: each
    column of the frame is freed once gathered when ``box`` held the only reference (at
    15.6M rows ``pricelab ingest`` peaked at 2.37 GB with the whole frame gathered at once,
    1.99 GB so)."""
    frame = box.pop()
    columns = []
    for name in frame.columns:
        columns.append(frame.get_column(name).gather(rows))
        frame = frame.drop(name)
    return pl.DataFrame(columns)


def cluster_sales(store: Store) -> None:
    """Rewrite ``sales`` in key order (:data:`SALES_ORDER`): the same rows, columns, types
    and constraints, in the order a fresh load of them is stored in.

    DuckDB keeps a table's rows in insertion order, so the rows go to a new table with
    the same columns, which then takes the old one's name. Call inside a transaction: a
    failure or a crash later in it leaves the previous table.
    """
    cols = store.execute(
        "SELECT column_name, data_type, is_nullable FROM duckdb_columns() "
        "WHERE schema_name = 'main' AND table_name = 'sales' ORDER BY column_index"
    )
    spec = ", ".join(
        f"{_ident(name)} {dtype}{'' if nullable else ' NOT NULL'}" for name, dtype, nullable in cols
    )
    names = ", ".join(_ident(name) for name, _, _ in cols)
    order = ", ".join(SALES_ORDER)
    store.execute(f"CREATE TABLE {_CLUSTERED} ({spec})")
    store.execute(f"INSERT INTO {_CLUSTERED} SELECT {names} FROM sales ORDER BY {order}")
    store.execute("DROP TABLE sales")
    store.execute(f"ALTER TABLE {_CLUSTERED} RENAME TO sales")


__all__ = [
    "SALES_KEYS",
    "SALES_ORDER",
    "cluster_sales",
    "run_order",
    "runs_in_key_order",
    "take_rows",
    "update_sales_keys",
]
