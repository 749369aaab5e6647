"""``sales_keys``: the distinct ``item_id, market`` keys of the sales, kept by ingest.

``estimate`` finds the groups of the stored sales in its one scan of them (runs of equal
key hashes, :mod:`pricelab.engines.keyruns`) and looks their keys up here instead of
aggregating the whole table first (at 300k item-markets × 52 weeks that aggregate cost
about as much CPU as the scan). It is an index, not an input: not in the run
fingerprints, not in the contract. ``ingest`` creates it when it loads sales into an
empty table, adds the new keys when later sales bring only new groups, and drops it when
later sales add rows to groups already stored (their rows are then no longer together,
and ``estimate`` reads the groups with one aggregate instead). The scan checks every
group against it, so a table edited behind ingest's back is never misread.
"""

from __future__ import annotations

import polars as pl

from pricelab.store.db import Store

SALES_KEYS = "sales_keys"


def update_sales_keys(store: Store, frame: pl.DataFrame, stored_before: int) -> None:
    """Keep ``sales_keys`` in step after ``frame`` was appended to sales (inside ingest's
    transaction); ``stored_before``: sales rows in the table before the append."""
    keys = frame.select("item_id", "market").unique(maintain_order=True)
    if stored_before == 0:
        store.execute(f"DROP TABLE IF EXISTS {SALES_KEYS}")
        store.execute(f"CREATE TABLE {SALES_KEYS} (item_id VARCHAR, market VARCHAR)")
    elif not store.has_table(SALES_KEYS):
        return  # loaded before the index existed: estimate aggregates the groups
    else:
        with store.registered("__pricelab_new_keys", keys) as view:
            shared = store.execute(
                f"SELECT count(*) FROM {view} n SEMI JOIN {SALES_KEYS} k USING (item_id, market)"
            )[0][0]
        if shared:  # rows added to stored groups: they are no longer together
            store.execute(f"DROP TABLE {SALES_KEYS}")
            return
    store.insert_frame(SALES_KEYS, keys)


__all__ = ["SALES_KEYS", "update_sales_keys"]
