"""Opening the DuckDB file, migrating its schema and moving frames in and out."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from pricelab import staged
from pricelab.errors import EmptyStoreError, StoreError, StoreLockedError, UsageError
from pricelab.store.schema import MIGRATIONS, SCHEMA_VERSION

DEFAULT_DB = "pricelab.duckdb"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# a URL, or one that pathlib collapsed (s3://b/k -> s3:/b/k); one letter is a drive (C:/)
_DB_URL = re.compile(r"^(?P<proto>[A-Za-z][A-Za-z0-9+.-]+):/(?P<rest>.*)$")
#: stores whose writes wait for :func:`held_commits` to end (``--output``: file first, then runs)
_HELD: ContextVar[list[Store] | None] = ContextVar("pricelab_held_commits", default=None)


@contextmanager
def held_commits() -> Iterator[list[Store]]:
    """Hold every write transaction opened inside until the block ends, then commit them.

    A command that writes ``--output`` runs inside this block: its file is staged beside
    its target (:mod:`pricelab.staged`), its runs and results are committed when the block
    ends, and the file is put in place only after that commit. When the block raises (the
    file could not be written, the input was bad) or a COMMIT fails (full disk), the runs
    are rolled back and the staged file removed: an earlier file at the target stays as it
    was. Stores whose transactions are held stay open until the block ends.

    Raises
    ------
    StoreError
        A COMMIT failed (nothing of the block was recorded, no file was put in place).
    """
    held: list[Store] = []
    with staged.deferred():
        token = _HELD.set(held)
        try:
            yield held
        except BaseException:
            _HELD.reset(token)
            _finish_held(held, commit=False)
            raise
        _HELD.reset(token)
        _finish_held(held, commit=True)


def _held_store(path: Path) -> Store | None:
    """The store of ``path`` whose writes are held, if any."""
    held = _HELD.get()
    for store in held or ():
        if store.path.resolve() == path.resolve():
            return store
    return None


def _finish_held(held: list[Store], *, commit: bool) -> None:
    """Commit (or roll back) and close every held store; after a failed COMMIT the stores
    not yet committed are rolled back."""
    failed: StoreError | None = None
    for store in held:
        try:
            if commit and failed is None:
                _commit(store, "; no --output file was put in place")
            else:
                store.con.execute("ROLLBACK").fetchall()
        except StoreError as exc:
            failed = exc
        finally:
            store._held = False
            store.con.close()
    if failed is not None:
        raise failed


def _commit(store: Store, note: str = "") -> None:
    """COMMIT the store's transaction; a failure (full disk, file too large) is a
    StoreError (``note`` added to its message), and DuckDB has rolled the transaction back."""
    try:
        store.con.execute("COMMIT").fetchall()
    except duckdb.Error as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        first = first.removeprefix("TransactionContext Error: ")
        raise StoreError(
            f"{store.path}: cannot commit, nothing was recorded{note}: {first}"
        ) from exc


#: every connection: never install or load an extension on its own (a SQLite file given as
#: --db made DuckDB try to download sqlite_scanner); pricelab needs none
CONNECT_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}


def _check_magic(path: Path) -> None:
    """Refuse a file that is not a DuckDB database before DuckDB reads it (CSV, SQLite...)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise StoreError(f"{path}: cannot read database file: {exc.strerror or exc}") from exc
    if not head:
        return  # an empty file: DuckDB creates the database in it
    if head[8:12] == b"DUCK":
        return
    kind = "a file"
    if head.startswith(b"SQLite format 3"):
        kind = "a SQLite database"
    elif head.startswith(b"PAR1"):
        kind = "a Parquet file"
    elif head[:2] == b"\x1f\x8b":
        kind = "a gzip file"
    elif all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        kind = "a text file (CSV?)"
    raise StoreError(
        f"{path}: is {kind}, not a DuckDB database; --db names the pricelab database "
        "(input files go to 'pricelab ingest --sales FILE')"
    )


def resolve_db_path(db: str | os.PathLike[str] | None) -> Path:
    """``--db`` if given, else ``$PRICELAB_DB``, else ``./pricelab.duckdb``."""
    if db is None or str(db) == "":
        db = os.environ.get("PRICELAB_DB") or DEFAULT_DB
    text = os.fspath(db)
    url = _DB_URL.match(text)
    if url and url["proto"].lower() == "file":
        return Path("/" + url["rest"].lstrip("/"))
    if url:
        shown = f"{url['proto']}://{url['rest'].lstrip('/')}"
        raise UsageError(
            f"--db {shown}: the database must be a local file (DuckDB locks it and writes it "
            "in place), not an object-storage URL; stage it: copy it to a local or mounted "
            f"path before the job and back afterwards (e.g. copy {shown} to "
            "/data/pricelab.duckdb with your storage CLI, then --db /data/pricelab.duckdb); "
            "input files and --output may stay URLs"
        )
    return Path(db)


def _ident(name: str) -> str:
    if not _IDENT.match(name):
        raise StoreError(f"invalid table or column name {name!r}")
    return f'"{name}"'


class Store:
    """A pricelab database: one DuckDB file with the input tables, results and runs.

    Use :meth:`open` (or the context manager form ``with Store.open(path) as store``).
    """

    def __init__(
        self, con: duckdb.DuckDBPyConnection, path: Path, read_only: bool, *, shared: bool = False
    ) -> None:
        self.con = con
        self.path = path
        self.read_only = read_only
        self._held = False  # a transaction held open by held_commits()
        self._shared = shared  # the connection belongs to a held store

    # -- opening -------------------------------------------------------------------------
    @classmethod
    def open(
        cls,
        db: str | os.PathLike[str] | None = None,
        *,
        read_only: bool = False,
        must_exist: bool = False,
    ) -> Store:
        """Open (and create or migrate) the database at ``db``.

        Raises
        ------
        StoreError
            The folder does not exist, the file is not a DuckDB database, another process
            holds the lock, or the database was written by a newer pricelab.
        """
        path = resolve_db_path(db)
        shared = _held_store(path)
        if shared is not None:  # later steps of a held command see its uncommitted writes
            return cls(shared.con, path, read_only, shared=True)
        if not path.parent.exists():
            raise StoreError(f"{path}: folder {path.parent} does not exist; create it first")
        if path.is_dir():
            raise StoreError(f"{path}: is a directory, expected a DuckDB database file")
        exists = path.exists()
        if must_exist and not exists:
            raise EmptyStoreError(
                f"{path}: no database here; load data first with 'pricelab ingest --db {path}'"
            )
        if read_only and not exists:
            read_only = False  # nothing to protect; we create an empty one
        if exists:
            _check_magic(path)
        try:
            con = duckdb.connect(str(path), read_only=read_only, config=dict(CONNECT_CONFIG))
        except duckdb.IOException as exc:
            msg = str(exc)
            if "lock" in msg.lower():
                pid = re.search(r"PID (\d+)", msg)
                who = f" (process {pid.group(1)})" if pid else ""
                raise StoreLockedError(
                    f"{path}: database is locked by another process{who}; "
                    "retry when that command has finished"
                ) from exc
            if "not a valid DuckDB database" in msg or "not a valid" in msg:
                raise StoreError(f"{path}: is not a DuckDB database file") from exc
            raise StoreError(f"{path}: cannot open database: {msg}") from exc
        except duckdb.Error as exc:
            raise StoreError(f"{path}: cannot open database: {exc}") from exc
        store = cls(con, path, read_only)
        try:
            store._migrate()
        except duckdb.Error as exc:  # a truncated or damaged file fails on its first read
            con.close()
            first = str(exc).splitlines()[0]
            raise StoreError(
                f"{path}: cannot read the database (truncated or damaged?): {first}"
            ) from exc
        except BaseException:
            con.close()
            raise
        return store

    def _migrate(self) -> None:
        current = 0
        try:  # not the catalog: listing thousands of result parts costs ~0.1 s per 1,000
            rows = self.execute("SELECT value FROM meta WHERE key = 'schema_version'")
        except duckdb.CatalogException:
            if self.table_names():
                raise StoreError(
                    f"{self.path}: is a DuckDB database but not a pricelab one (no meta table)"
                ) from None
        else:
            current = int(rows[0][0]) if rows else 0
        if current > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: database schema version {current} was written by a newer "
                f"pricelab (this one reads up to {SCHEMA_VERSION}); upgrade pricelab"
            )
        if current == SCHEMA_VERSION:
            return
        if self.read_only:
            raise StoreError(f"{self.path}: database needs a schema upgrade; open it writable")
        with self.transaction():
            for version in range(current, SCHEMA_VERSION):
                for stmt in MIGRATIONS[version]:
                    self.con.execute(stmt).fetchall()
            self.con.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)]
            ).fetchall()
            self.con.execute(
                "INSERT INTO meta SELECT 'base_currency', 'EUR' "
                "WHERE NOT EXISTS (SELECT 1 FROM meta WHERE key = 'base_currency')"
            ).fetchall()

    def close(self) -> None:
        """Close the connection (the file lock is released; held writes: when they commit)."""
        if not self._held and not self._shared:
            self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions --------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """All writes inside happen together or not at all; a file written inside through
        :mod:`pricelab.io` is put in place after the COMMIT (:mod:`pricelab.staged`).

        Inside :func:`held_commits` the commit waits for that block (nested blocks join
        the held transaction; a failure in one rolls all of it back).
        """
        held = _HELD.get()
        if held is not None and not self.read_only:
            yield from self._held_transaction(held)
            return
        with staged.deferred():  # a file written inside is put in place after the COMMIT
            self.con.execute("BEGIN TRANSACTION").fetchall()
            try:
                yield self
            except BaseException:
                self.con.execute("ROLLBACK").fetchall()
                raise
            _commit(self)

    def _held_transaction(self, held: list[Store]) -> Iterator[Store]:
        owner = next((h for h in held if h.con is self.con), None)
        if owner is None:
            self.con.execute("BEGIN TRANSACTION").fetchall()
            self._held = True
            held.append(self)
            owner = self
        try:
            yield self
        except BaseException:
            if owner in held:  # not yet rolled back by a nested failure
                self.con.execute("ROLLBACK").fetchall()
                owner._held = False
                held.remove(owner)
            raise

    # -- reading and writing -------------------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one statement with bound parameters and return all rows."""
        return self.con.execute(sql, params or []).fetchall()

    def query(self, sql: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
        """Run a query with bound parameters and return a polars frame."""
        return self.con.sql(sql, params=list(params or [])).pl()

    def table_names(self) -> list[str]:
        """Names of the tables in the main schema."""
        rows = self.con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' "
            "ORDER BY table_name"
        ).fetchall()
        return [r[0] for r in rows]

    def has_table(self, name: str) -> bool:
        """True when ``name`` exists."""
        return name in self.table_names()

    def table(self, name: str) -> pl.DataFrame:
        """The whole table ``name`` as a polars frame."""
        return self.query(f"SELECT * FROM {_ident(name)}")

    def count(self, name: str) -> int:
        """Number of rows of ``name`` (0 when it does not exist)."""
        if not self.has_table(name):
            return 0
        return int(self.execute(f"SELECT count(*) FROM {_ident(name)}")[0][0])

    def meta(self, key: str, default: str | None = None) -> str | None:
        """A value of the ``meta`` table (e.g. ``base_currency``)."""
        rows = self.execute("SELECT value FROM meta WHERE key = ?", [key])
        return rows[0][0] if rows else default

    @contextmanager
    def registered(self, name: str, df: pl.DataFrame) -> Iterator[str]:
        """Expose ``df`` to SQL as view ``name`` for the duration of the block."""
        # Arrow string views: DuckDB reads polars' strings without a conversion
        self.con.register(name, df.to_arrow(compat_level=pl.CompatLevel.newest()))
        try:
            yield name
        finally:
            self.con.unregister(name)

    def insert_frame(
        self, name: str, df: pl.DataFrame, order_by: Sequence[str] | None = None
    ) -> None:
        """Append ``df`` to table ``name`` by column name (Arrow, never row by row),
        in ``order_by`` order when given."""
        if df.height == 0:
            return
        cols = ", ".join(_ident(c) for c in df.columns)
        order = f" ORDER BY {', '.join(_ident(c) for c in order_by)}" if order_by else ""
        with self.registered("__pricelab_insert", df) as view:
            self.con.execute(
                f"INSERT INTO {_ident(name)} ({cols}) SELECT {cols} FROM {view}{order}"
            ).fetchall()

    def write_result(self, name: str, df: pl.DataFrame, run_id: str) -> None:
        """Store a result frame under ``run_id`` in table ``name`` (created on first use).

        New columns in later runs are added to the table; missing ones are NULL. A run of
        61,440 rows or more is stored in a table of its own behind the view ``name``
        (:mod:`pricelab.store.results`: no later run's checkpoint rewrites its rows).
        """
        frame = df.with_columns(pl.lit(run_id).alias("run_id")).select(
            ["run_id", *[c for c in df.columns if c != "run_id"]]
        )
        with self.registered("__pricelab_result", frame):
            self._write_result(name, frame)

    def _write_result(self, name: str, frame: pl.DataFrame) -> None:
        from pricelab.store import results

        run_id = str(frame["run_id"][0]) if frame.height else ""
        results.write(self, name, "__pricelab_result", frame.columns, frame.height, run_id)

    def read_result(self, name: str, run_id: str) -> pl.DataFrame:
        """The rows of result table ``name`` stored under ``run_id`` (without the run_id column).

        A run in a part table of its own, or in the base table of a result with parts, is
        read from there, not through the view over every part (:func:`results.read`)."""
        from pricelab.store import results

        direct = results.read(self, name, run_id)
        if direct is not None:
            return direct.drop("run_id")
        if not self.has_table(name):
            return pl.DataFrame()
        df = self.query(f"SELECT * FROM {_ident(name)} WHERE run_id = ?", [run_id])
        return df.drop("run_id")

    def require_sales(self) -> None:
        """Raise :class:`EmptyStoreError` when no sales are loaded."""
        if self.count("sales") == 0:
            raise EmptyStoreError(
                f"{self.path}: no sales loaded; run 'pricelab ingest --sales FILE --db {self.path}'"
            )

    def snapshot(self) -> dict[str, pl.DataFrame]:
        """Every table's full content, sorted (for before/after comparisons in tests)."""
        out: dict[str, pl.DataFrame] = {}
        for name in self.table_names():
            df = self.table(name)
            out[name] = df.sort(df.columns) if df.height else df
        return out
