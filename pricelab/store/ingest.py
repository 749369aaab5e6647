"""Ingest: validate input files, then load them into DuckDB in one transaction."""

from __future__ import annotations

import hashlib
import os
import re
import signal
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from pricelab.errors import DataError
from pricelab.io import delta_copy, is_delta
from pricelab.quality.checks import QualityReport
from pricelab.quality.frames import KEYS, OPTIONAL, REQUIRED
from pricelab.quality.tables import check_loaded
from pricelab.store.db import _IDENT, Store, _ident
from pricelab.store.ingest_read import read_validated
from pricelab.store.runs import record_run
from pricelab.store.sales_keys import run_order, take_rows, update_sales_keys
from pricelab.urls import display, is_url, local_copy

_IDENT_FIX = re.compile(r"[^A-Za-z0-9_]+")
KINDS = ("sales", "items", "costs", "markets", "inventory")


@dataclass
class IngestResult:
    """What an ingest loaded, replaced and warned about."""

    run_id: str
    loaded: dict[str, int] = field(default_factory=dict)
    replaced: dict[str, int] = field(default_factory=dict)
    aggregated_rows: int = 0
    report: QualityReport = field(default_factory=QualityReport)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        return {
            "run_id": self.run_id,
            "loaded": self.loaded,
            "replaced": self.replaced,
            "daily_rows_summed_to_weeks": self.aggregated_rows,
            "warnings": [i.to_dict() for i in self.report.warnings],
        }


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def to_weeks(sales: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Sum finer-than-weekly rows to weeks starting on Monday.

    Quantity is summed, price is revenue-weighted (plain mean when no unit sold), promo is
    1 if any day had it, unit_cost is the quantity-weighted mean, numeric extra columns
    are averaged. Returns the frame and how
    many input rows were merged into others.
    """
    wk = sales.with_columns(pl.col("date").dt.truncate("1w").alias("date"))
    aggs = [
        pl.col("quantity").sum().alias("quantity"),
        pl.when(pl.col("quantity").sum() > 0)
        .then((pl.col("price") * pl.col("quantity")).sum() / pl.col("quantity").sum())
        .otherwise(pl.col("price").mean())
        .alias("price"),
        pl.len().alias("__n"),
    ]
    if "promo" in wk.columns:
        aggs.append(pl.col("promo").max().alias("promo"))
    if "unit_cost" in wk.columns:
        aggs.append(
            pl.when(pl.col("quantity").filter(pl.col("unit_cost").is_not_null()).sum() > 0)
            .then(
                (pl.col("unit_cost") * pl.col("quantity")).sum()
                / pl.col("quantity").filter(pl.col("unit_cost").is_not_null()).sum()
            )
            .otherwise(pl.col("unit_cost").mean())
            .alias("unit_cost")
        )
    numeric, _ = extra_sales_columns(wk)
    aggs += [pl.col(c).cast(pl.Float64).mean().alias(c) for c in numeric]  # weekly mean
    keys = ["item_id", "market", "date"]
    if sales["date"].dt.weekday().eq(1).all():  # already Monday weeks; keys checked unique
        return sales, 0
    if wk.group_by(keys).len().height == wk.height:
        return wk, 0
    out = wk.group_by(keys, maintain_order=True).agg(aggs)
    merged = int(out["__n"].sum() - out.height)
    return out.drop("__n"), merged


def _existing_keys(store: Store, kind: str, frame: pl.DataFrame) -> pl.DataFrame:
    keys = list(KEYS[kind])
    if store.count(kind) == 0:
        return frame.select(keys).head(0)
    if kind == "sales":  # keys are never null: a plain semi join
        with store.registered("__pricelab_new", frame.select(keys)) as view:
            return store.query(
                f"SELECT n.* FROM {view} n SEMI JOIN sales t USING (item_id, market, date) "
                "ORDER BY item_id, market, date"
            )
    cond = " AND ".join(f"t.{_ident(k)} IS NOT DISTINCT FROM n.{_ident(k)}" for k in keys)
    cols = ", ".join(f"n.{_ident(k)}" for k in keys)
    with store.registered("__pricelab_new", frame.select(keys).unique().sort(keys)) as view:
        return store.query(
            f"SELECT {cols} FROM {view} n "
            f"WHERE EXISTS (SELECT 1 FROM {_ident(kind)} t WHERE {cond}) ORDER BY {cols}"
        )


def _delete_keys(store: Store, kind: str, keys_df: pl.DataFrame) -> int:
    keys = list(KEYS[kind])
    cond = " AND ".join(f"t.{_ident(c)} IS NOT DISTINCT FROM k.{_ident(c)}" for c in keys)
    before = store.count(kind)
    with store.registered("__pricelab_keys", keys_df) as view:
        store.execute(
            f"DELETE FROM {_ident(kind)} t WHERE EXISTS (SELECT 1 FROM {view} k WHERE {cond})"
        )
    return before - store.count(kind)


def extra_sales_columns(frame: pl.DataFrame) -> tuple[list[str], list[str]]:
    """Sales columns beyond the contract's: ``(numeric ones kept, others dropped)``.

    Numeric extra columns (e.g. ``deal``, ``feature``, ``temperature``) are stored as DOUBLE
    and can be used as estimation controls (``estimate --controls promo,deal``).
    """
    known = set(REQUIRED["sales"]) | set(OPTIONAL["sales"])
    extra = [c for c in frame.columns if c not in known and not c.startswith("__")]
    numeric = [c for c in extra if frame.schema[c].is_numeric() or frame.schema[c] == pl.Boolean]
    return numeric, [c for c in extra if c not in numeric]


def _conform(store: Store, kind: str, frame: pl.DataFrame, name: str) -> pl.DataFrame:
    """Add further attribute columns (items; numeric sales columns) to the table.

    ``name`` is the file, for messages: an attribute column needs a plain name.
    """
    cols = store.query(f"SELECT * FROM {_ident(kind)} LIMIT 0").columns
    # the database does not tell 'Colour' from 'colour': use the stored spelling
    stored = {c.lower(): c for c in cols}
    frame = frame.rename(
        {c: stored[c.lower()] for c in frame.columns if c.lower() in stored and c not in cols}
    )
    if kind == "items":
        bad = [c for c in frame.columns if c not in cols and not _IDENT.match(c)]
        if bad:
            raise DataError(
                f"{name}: column name {bad[0]!r} cannot be an items attribute: use letters, "
                "digits and underscores, starting with a letter (e.g. "
                f"{_IDENT_FIX.sub('_', bad[0]).strip('_') or 'attribute'!r})"
            )
        for extra in [c for c in frame.columns if c not in cols]:
            store.execute(f"ALTER TABLE items ADD COLUMN {_ident(extra)} VARCHAR")
            cols.append(extra)
    known = set(REQUIRED[kind]) | set(OPTIONAL[kind])
    if kind == "sales":
        numeric, _ = extra_sales_columns(frame)
        for extra in [c for c in numeric if c not in cols]:
            store.execute(f"ALTER TABLE sales ADD COLUMN {_ident(extra)} DOUBLE")
            cols.append(extra)
        known |= set(numeric)
        frame = frame.with_columns(pl.col(numeric).cast(pl.Float64))
    keep = [c for c in frame.columns if c in cols and (kind == "items" or c in known)]
    return frame.select(keep)


def _fault(point: str) -> None:
    """Test hook: PRICELAB_FAULT=<point> kills this process there (crash-safety tests)."""
    if os.environ.get("PRICELAB_FAULT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


def ingest(
    store: Store, files: Mapping[str, str | os.PathLike[str] | None], *, replace: bool = False
) -> IngestResult:
    """Validate every given file, then load them all in one transaction.

    Parameters
    ----------
    store:
        An open, writable :class:`~pricelab.store.db.Store`.
    files:
        Paths or fsspec URLs (``az://``, ``s3://``, ...; downloaded to a temporary folder
        first) by table kind (``sales``, ``items``, ``costs``, ``markets``, ``inventory``).
    replace:
        Replace rows whose keys already exist instead of failing.

    Raises
    ------
    InputFileError, DataError
        A file is unreadable or breaks a rule; nothing has been written.
    """
    given = {k: v for k, v in files.items() if v is not None}
    unknown = set(given) - set(KINDS)
    if unknown:
        raise DataError(f"unknown table kind(s): {', '.join(sorted(unknown))}")
    if not given:
        raise DataError(
            "nothing to ingest: give at least one of --sales, --items, --costs, "
            "--markets, --inventory"
        )
    names = {k: _delta_name(v) if is_delta(v) else display(v) for k, v in given.items()}
    with ExitStack() as stack:
        local = {
            k: stack.enter_context(delta_copy(v) if is_delta(v) else local_copy(v))
            for k, v in given.items()
        }
        return _ingest(store, local, names, replace=replace)


def _delta_name(path: Any) -> str:
    """``delta:LOCATION`` with a local location made absolute (lineage, messages)."""
    loc = str(path).removeprefix("delta:")
    return "delta:" + (display(loc) if is_url(loc) else str(Path(loc).resolve()))


def _ingest(
    store: Store, given: dict[str, Path], names: dict[str, str], *, replace: bool
) -> IngestResult:
    """:func:`ingest` on local files; ``names`` are the paths or URLs the user gave. The
    files' SHA-256 (lineage) are taken in a thread while they are read and checked."""
    with ThreadPoolExecutor(1, thread_name_prefix="pricelab-sha256") as pool:
        digests = {k: pool.submit(_sha256, p) for k, p in given.items()}
        try:
            return _load(store, given, names, digests, replace=replace)
        finally:
            pool.shutdown(cancel_futures=True)


def _load(
    store: Store,
    given: dict[str, Path],
    names: dict[str, str],
    digests: dict[str, Future[str]],
    *,
    replace: bool,
) -> IngestResult:
    report = QualityReport()
    frames: dict[str, pl.DataFrame] = {}
    for kind in KINDS:
        if kind in given:
            frame, rep = read_validated(kind, given[kind], names[kind])
            report.extend(rep)
            frames[kind] = frame
    if not report.ok:
        raise DataError(report.error_text())
    aggregated = 0
    if "sales" in frames:
        frames["sales"], aggregated = to_weeks(frames["sales"])
    result = IngestResult(run_id="")
    params: dict[str, Any] = {
        "files": {
            k: {
                "path": names[k] if is_url(names[k]) or is_delta(names[k]) else str(p.resolve()),
                "sha256": digests[k].result(),
            }
            for k, p in given.items()
        },
        "replace": replace,
    }
    run = record_run(store, "ingest", params)
    result.run_id = run.run_id
    with store.transaction():
        for kind in KINDS:
            if kind not in frames:
                continue
            frame = _conform(store, kind, frames.pop(kind), names[kind])
            existing = _existing_keys(store, kind, frame)
            if existing.height:
                if not replace:
                    first = ", ".join(f"{k}={v}" for k, v in existing.row(0, named=True).items())
                    raise DataError(
                        f"{names[kind]}: {existing.height} {kind} key(s) already loaded, "
                        f"e.g. {first}; use --replace to replace them"
                    )
                result.replaced[kind] = _delete_keys(store, kind, existing)
            # sales in key order: estimate then reads them back with a plain scan, no sort
            # (DuckDB sorts them unless the file holds whole groups in date order)
            rows = run_order(frame) if kind == "sales" else None
            if rows is not None and rows.size:
                box = [frame]
                del frame  # the box holds the only reference: columns freed as gathered
                frame = take_rows(box, rows)
            stored = store.count(kind) if kind == "sales" else 0
            sort = KEYS[kind] if kind == "sales" and rows is None else None
            store.insert_frame(kind, frame, order_by=sort)
            if kind == "sales":
                update_sales_keys(store, frame, stored)
            result.loaded[kind] = frame.height
            _fault(f"ingest:after-{kind}")
        cross = check_loaded(store)
        report.extend(cross)
        if not cross.ok:
            raise DataError(cross.error_text())
        result.report = report
        result.aggregated_rows = aggregated
        run.finish(result.to_dict())
    return result
