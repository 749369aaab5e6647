"""Runs: every command that writes records what ran, on which data, with which version."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from pricelab.errors import EmptyStoreError, NotFoundError, UsageError
from pricelab.store.db import Store, _ident
from pricelab.store.schema import INPUT_TABLES

_HASH_COLUMNS: dict[str, str] = {
    "sales": "item_id, market, date, price, quantity, promo, unit_cost",
    "items": "item_id, category, brand, boutique_id",
    "costs": "item_id, market, unit_cost",
    "markets": "market, currency, fx_rate, vat_rate",
    "inventory": "item_id, market, stock",
}


def table_fingerprint(store: Store, name: str) -> dict[str, Any]:
    """Row count, date range (sales) and an order-independent content hash of one table."""
    t = _ident(name)
    n, h = store.execute(
        f"SELECT count(*), coalesce(bit_xor(hash({_HASH_COLUMNS[name]})), 0) FROM {t}"
    )[0]
    fp: dict[str, Any] = {"rows": int(n), "hash": f"{int(h):016x}"}
    if name == "sales":
        lo, hi = store.execute(f"SELECT min(date), max(date) FROM {t}")[0]
        fp["date_min"] = str(lo) if lo is not None else None
        fp["date_max"] = str(hi) if hi is not None else None
    return fp


def input_fingerprint(store: Store) -> dict[str, Any]:
    """Fingerprint of every input table; equal data gives an equal fingerprint."""
    return {name: table_fingerprint(store, name) for name in INPUT_TABLES}


class _Cursor:
    """What :func:`table_fingerprint` needs of a :class:`Store`, on a DuckDB cursor."""

    def __init__(self, con: Any) -> None:
        self.con = con

    def execute(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, params or []).fetchall()


class FingerprintAhead:
    """:func:`input_fingerprint` taken in a background thread on its own DuckDB cursor;
    calling it waits for the result (its error is raised there)."""

    def __init__(self, store: Store) -> None:
        self._cur = store.con.cursor()
        self._box: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._work, name="pricelab-fingerprint")
        self._thread.daemon = True
        self._thread.start()

    def _work(self) -> None:
        try:
            self._box["fp"] = input_fingerprint(_Cursor(self._cur))  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 - raised in the waiting thread
            self._box["error"] = exc
        finally:
            self._cur.close()

    def __call__(self) -> dict[str, Any]:
        self._thread.join()
        if "error" in self._box:
            raise self._box["error"]
        return dict(self._box["fp"])

    def settle(self) -> None:
        """Wait for the thread (its cursor closed) without raising: before the database is
        closed on an error, so nothing of it outlives the command."""
        self._thread.join()


def fingerprint_ahead(store: Store) -> FingerprintAhead:
    """Start taking :func:`input_fingerprint` now, in a background thread on its own
    DuckDB cursor; the returned object waits for it when called.

    For a command that reads its inputs and writes only results (``estimate``): the
    inputs do not change before its run is recorded (this process holds the database's
    write lock), so the fingerprint equals the one :meth:`Run.finish` would take, and
    its scans (0.3 CPU s at 15.6M sales rows) overlap the command's own work. Call
    :meth:`FingerprintAhead.settle` before closing the store when the command fails.
    """
    return FingerprintAhead(store)


@contextmanager
def settled(inputs: FingerprintAhead | None) -> Iterator[None]:
    """Wait for a background fingerprint (its cursor closed) when the block leaves, also
    on an error, so the store can be closed and the error reported as itself."""
    try:
        yield
    finally:
        if inputs is not None:
            inputs.settle()


def fingerprint_digest(fp: dict[str, Any]) -> str:
    """A short stable digest of a fingerprint dict."""
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=2,
            cwd=Path.cwd(),
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass
class Run:
    """A run being recorded; call :meth:`finish` inside the transaction that writes results."""

    store: Store
    command: str
    parameters: dict[str, Any]
    parents: list[str] = field(default_factory=list)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    started_at: dt.datetime = field(default_factory=_now)
    #: the input fingerprint taken ahead (:func:`fingerprint_ahead`), else taken at finish
    inputs: Callable[[], dict[str, Any]] | None = None

    def finish(self, summary: dict[str, Any] | None = None, status: str = "ok") -> None:
        """Write the run row (fingerprint taken now, after the command's own writes)."""
        from pricelab import __version__
        from pricelab.urls import redact

        fp = self.inputs() if self.inputs is not None else input_fingerprint(self.store)
        self.store.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                self.run_id,
                self.command,
                status,
                json.dumps(self.parameters, sort_keys=True, default=str),
                json.dumps(fp, sort_keys=True),
                fingerprint_digest(fp),
                json.dumps(self.parents),
                __version__,
                _git_commit(),
                json.dumps([redact(a) for a in sys.argv[1:]]),
                self.started_at,
                _now(),
                json.dumps(summary or {}, sort_keys=True, default=str),
            ],
        )


def record_run(
    store: Store, command: str, parameters: dict[str, Any], parents: list[str] | None = None
) -> Run:
    """Record a run of ``command``: the one way every command (CLI or pipeline) records one.

    Returns the :class:`Run`; its ``run_id`` keys the command's result rows and
    :meth:`Run.finish` writes the run row (with the input fingerprint taken then), after the
    command has written its outputs, inside the same transaction when there is one.
    """
    return Run(store, command, dict(parameters), list(parents or []))


#: the former name, kept so code written against it keeps working; use :func:`record_run`
start_run = record_run


def list_runs(store: Store, command: str | None = None) -> pl.DataFrame:
    """All runs, newest first (optionally of one command)."""
    sql = (
        "SELECT run_id, command, status, started_at, ended_at, input_fingerprint, version, "
        "parents, parameters FROM runs"
    )
    params: list[Any] = []
    if command:
        sql += " WHERE command = ?"
        params.append(command)
    return store.query(sql + " ORDER BY started_at DESC, run_id DESC", params)


def latest_run(store: Store, command: str) -> str | None:
    """The id of the newest successful run of ``command``, or None."""
    rows = store.execute(
        "SELECT run_id FROM runs WHERE command = ? AND status = 'ok' "
        "ORDER BY started_at DESC, run_id DESC LIMIT 1",
        [command],
    )
    return rows[0][0] if rows else None


def get_run(store: Store, run_id: str) -> dict[str, Any]:
    """One run as a dict with parsed JSON fields; ``latest`` is not resolved here."""
    df = store.query("SELECT * FROM runs WHERE run_id = ?", [run_id])
    if df.height == 0:
        raise NotFoundError(f"run {run_id!r} not found; see 'pricelab runs list'")
    rec = df.row(0, named=True)
    for key in ("parameters", "inputs", "parents", "argv", "summary"):
        if rec.get(key):
            rec[key] = json.loads(rec[key])
    return rec


def resolve_estimates(
    store: Store, estimates: str | None, *, tables: Collection[str] | None = None
) -> str:
    """The estimate run to use: the given id, else the production one, else the latest
    (``tables``: the store's table names when the caller has them already)."""
    if estimates not in (None, "latest", "production"):
        rows = store.execute("SELECT command FROM runs WHERE run_id = ?", [estimates])
        if not rows:
            raise NotFoundError(f"estimate run {estimates!r} not found; see 'pricelab runs list'")
        if rows[0][0] != "estimate":
            raise UsageError(f"run {estimates!r} is a {rows[0][0]} run, not an estimate run")
        return str(estimates)
    names = store.table_names() if tables is None else tables
    if estimates != "latest" and "registry" in names:
        rows = store.execute(
            "SELECT run_id FROM registry WHERE stage = 'production' ORDER BY promoted_at DESC LIMIT 1"
        )
        if rows:
            return str(rows[0][0])
    run = latest_run(store, "estimate")
    if run is None:
        raise EmptyStoreError(
            f"{store.path}: no estimate run yet; run 'pricelab estimate --db {store.path}' first"
        )
    return run
