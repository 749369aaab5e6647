"""Reading and writing tables as files (CSV, Parquet, JSON) by extension.

Every file a user hands to pricelab goes through :func:`read_table`, so every
command gives the same clear error for a missing, empty, non-UTF-8 or unknown file.
Every path may also be an fsspec URL (``az://``, ``abfs://``, ``s3://``, ``gs://``,
``memory://``, ``file://``): see :mod:`pricelab.urls`.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl

from pricelab import staged, transient
from pricelab.errors import InputFileError, PricelabError, UsageError
from pricelab.filecheck import (
    WRITE_FORMATS,
    as_strings,
    csv_safe,
    sniff_text_file,
    strip_header,
)
from pricelab.urls import display, failure, is_url, local_copy, local_target, normalize

READ_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
DELTA_PREFIX = "delta:"


def is_delta(path: str | os.PathLike[str]) -> bool:
    """``delta:LOCATION``, or a local folder holding a ``_delta_log`` folder."""
    text = str(path)
    if text.startswith(DELTA_PREFIX):
        return True
    return not is_url(text) and Path(text).is_dir() and (Path(text) / "_delta_log").is_dir()


@contextmanager
def delta_copy(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A Delta table's current version as a temporary Parquet file (ingest reads files)."""
    import pyarrow.parquet as pq

    table = read_delta(path)
    with tempfile.TemporaryDirectory(prefix="pricelab-delta-") as tmp:
        target = Path(tmp) / "delta.parquet"
        pq.write_table(table, target)
        yield target


def read_delta(path: str | os.PathLike[str]) -> Any:
    """A Delta table (``delta:LOCATION`` or a Delta folder) as a pyarrow Table, no JVM.

    Read with the ``deltalake`` package (extra ``pricelab[delta]``); on object storage it
    takes credentials from its usual environment variables; reads are retried like every
    object-storage read (:mod:`pricelab.transient`).

    Raises
    ------
    UsageError
        ``deltalake`` is not installed.
    InputFileError
        No Delta table there, or it cannot be read (message without secrets).
    UnavailableError
        The object store stays unreachable.
    """
    text = str(path)
    loc = text[len(DELTA_PREFIX) :] if text.startswith(DELTA_PREFIX) else text
    name = display(loc)
    try:
        from deltalake import DeltaTable
    except ImportError:
        raise UsageError(
            f"{name}: Delta tables need the 'deltalake' package: pip install 'pricelab[delta]'"
        ) from None
    if not is_url(loc) and not (Path(loc) / "_delta_log").is_dir():
        raise InputFileError(f"{name}: not a Delta table (no _delta_log folder there)")
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
    opts = {"AWS_ALLOW_HTTP": "true"} if endpoint.startswith("http://") else {}
    try:
        return transient.call(lambda: DeltaTable(loc, storage_options=opts).to_pyarrow_table())
    except PricelabError:
        raise
    except Exception as exc:  # noqa: BLE001 - delta-rs and object stores raise many kinds
        raise failure(loc, exc, writing=False, what="Delta table") from None


def table_format(path: str | Path, *, writing: bool = False) -> str:
    """Return ``csv``/``parquet``/``json`` (``delta`` when reading a Delta table: read as
    Parquet through :func:`delta_copy`) for ``path`` or raise a clear error."""
    if not writing and is_delta(path):
        return "delta"
    suffix = Path(str(path).split("?", 1)[0]).suffix.lower()
    formats = WRITE_FORMATS if writing else READ_FORMATS
    if suffix not in formats:
        allowed = ", ".join(sorted(formats))
        raise InputFileError(
            f"{path}: unknown file extension '{suffix or '(none)'}'; expected one of {allowed}"
        )
    return formats[suffix]


def _first_bad_utf8_line(path: Path) -> tuple[int, int] | None:
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return line, exc.start
    return None


def _separator_hint(p: Path, name: str) -> None:
    """Raise a clear error for a semicolon- or tab-separated file (a spreadsheet habit)."""
    with p.open("rb") as fh:
        head = fh.read(1 << 16).decode("utf-8", errors="replace").lstrip("\ufeff")
    lines = [ln for ln in head.splitlines() if ln.strip()]
    if not lines:
        return
    header = lines[0]
    for sep, label in ((";", "semicolon"), ("\t", "tab")):
        if sep in header and header.count(sep) > header.count(","):
            decimal = ""
            if sep == ";" and any(re.search(r"\d,\d", ln) for ln in lines[1:20]):
                decimal = " and decimal commas (1,5)"
            raise InputFileError(
                f"{name}: looks {label}-separated ({sep!r} between columns{decimal}); "
                "pricelab reads comma-separated CSV with '.' as the decimal point: "
                "save or export it as CSV (comma delimited)"
            )


def drop_blank_rows(df: pl.DataFrame) -> pl.DataFrame:
    """Drop trailing rows whose every cell is empty or spaces (a trailing blank line).

    Only trailing rows go, so the line numbers in messages about other rows stay exact.
    """
    if df.height == 0 or df.width == 0:
        return df
    blank = pl.all_horizontal(
        [
            pl.col(c).is_null() | (pl.col(c).cast(pl.String).str.strip_chars() == "")
            for c in df.columns
        ]
    ).fill_null(False)
    if not df.tail(1).select(blank).item():  # the usual case: only the last row is looked at
        return df
    flags = df.select(blank).to_series()
    keep = df.height
    while keep and flags[keep - 1]:
        keep -= 1
    return df.head(keep)


def read_table(path: str | os.PathLike[str], *, all_strings: bool = False) -> pl.DataFrame:
    """Read a CSV or Parquet file into a polars frame.

    Parameters
    ----------
    path:
        File path or fsspec URL; the format comes from its extension. ``delta:LOCATION``
        or a local Delta folder reads a Delta table (:func:`read_delta`).
    all_strings:
        Read every CSV column as text (validation then casts and reports bad cells).

    Raises
    ------
    InputFileError
        The file does not exist, has an unknown extension, is not UTF-8, is empty
        or cannot be parsed.
    UsageError
        A URL whose storage extra (e.g. ``pricelab[azure]``) is not installed.
    """
    if is_delta(path):
        df = strip_header(pl.from_arrow(read_delta(path)), display(str(path)))  # type: ignore[arg-type]
        if df.height == 0:
            raise InputFileError(f"{display(str(path))}: Delta table has no rows")
        return as_strings(df, display(str(path))) if all_strings else df
    norm = normalize(path)
    if isinstance(norm, Path):
        return read_local_table(norm, all_strings=all_strings)
    name = display(norm)
    table_format(name)  # before any download
    with local_copy(norm) as local:
        return read_local_table(local, all_strings=all_strings, name=name)


def read_local_table(
    p: Path, *, all_strings: bool = False, name: str | None = None
) -> pl.DataFrame:
    """:func:`read_table` on a local file; messages call it ``name`` (default: the path)."""
    name = str(p) if name is None else name
    fmt = table_format(name)
    if not p.exists():
        raise InputFileError(f"{name}: file not found")
    if p.is_dir():
        raise InputFileError(f"{name}: is a directory, expected a {fmt.upper()} file")
    if p.stat().st_size == 0:
        raise InputFileError(f"{name}: file is empty (expected a header row and data)")
    if fmt == "csv":
        sniff_text_file(p, name)
        bad = _first_bad_utf8_line(p)
        if bad is not None:
            raise InputFileError(
                f"{name}: not UTF-8 text (first invalid byte at offset {bad[1]}, line {bad[0]}); "
                "save it as UTF-8"
            )
        _separator_hint(p, name)
        try:
            if all_strings:
                df = pl.read_csv(p, infer_schema=False, null_values=[""])
            else:
                df = pl.read_csv(p, infer_schema_length=10000, null_values=[""])
        except pl.exceptions.NoDataError as exc:
            raise InputFileError(f"{name}: file is empty (expected a header row and data)") from exc
        except (pl.exceptions.ComputeError, pl.exceptions.PolarsError) as exc:
            raise InputFileError(f"{name}: cannot parse CSV: {str(exc).splitlines()[0]}") from exc
        df = drop_blank_rows(strip_header(df, name))
    else:
        try:
            df = pl.read_parquet(p)
        except Exception as exc:  # noqa: BLE001 - any parquet failure is a bad input file
            raise InputFileError(
                f"{name}: cannot read Parquet: {str(exc).splitlines()[0]}"
            ) from exc
        df = strip_header(df, name)
        if all_strings:
            df = as_strings(df, name)
    if df.height == 0:
        raise InputFileError(f"{name}: has a header but no data rows")
    return df


def _jsonable(df: pl.DataFrame) -> list[dict[str, Any]]:
    return json.loads(df.write_json())


def write_table(df: pl.DataFrame, path: str | os.PathLike[str]) -> Path | str:
    """Write ``df`` as CSV, Parquet or JSON (a list of records) by the extension of ``path``.

    ``path`` may be an fsspec URL; the file is written locally, then uploaded. Returns the
    local path, or the URL.

    Raises
    ------
    UsageError
        Unknown extension, missing folder/container/bucket, access denied, or a missing
        storage extra.
    """
    norm = normalize(path)
    try:
        fmt = table_format(display(norm), writing=True)
    except InputFileError as exc:
        raise UsageError(str(exc)) from exc
    with local_target(norm) as p:
        _atomic(p, lambda tmp: _write_local(df, tmp, fmt), final=isinstance(norm, Path))
    return norm


def _atomic(p: Path, write: Any, *, final: bool = True) -> None:
    """Call ``write(tmp)`` on a temporary file next to ``p``, then rename it to ``p``.

    A failed write (full disk, permission) leaves no partial file and is a UsageError. When
    ``p`` is the ``final`` target and a :func:`pricelab.staged.deferred` block is open (a
    command's ``--output``), the rename waits until the block ends: after the run's commit.
    """
    if p.is_dir():
        raise UsageError(f"{p}: is a directory; give a file name")
    tmp = p.with_name(staged.temp_name(p.name))
    waiting = False
    try:
        write(tmp)
        waiting = final and staged.later(
            str(p), lambda: _replace(tmp, p), lambda: tmp.unlink(missing_ok=True)
        )
        if not waiting:
            os.replace(tmp, p)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise UsageError(f"{p}: cannot write the file: {_why(exc)}") from exc
    finally:
        if not waiting:
            tmp.unlink(missing_ok=True)


def _why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc).splitlines()[0]


def _replace(tmp: Path, p: Path) -> None:
    """Rename the staged ``tmp`` to ``p`` (after the commit)."""
    try:
        os.replace(tmp, p)
    except OSError as exc:
        raise UsageError(f"{p}: cannot put the file in place: {_why(exc)}") from exc


def _write_local(df: pl.DataFrame, p: Path, fmt: str) -> None:
    if fmt == "csv":
        # nested columns (lists) cannot go to CSV: join them as text
        flat = df.with_columns(
            [
                pl.col(c).cast(pl.List(pl.String)).list.join(";")
                for c, t in df.schema.items()
                if isinstance(t, pl.List)
            ]
        )
        csv_safe(flat).write_csv(p)
    elif fmt == "parquet":
        df.write_parquet(p)
    else:
        p.write_text(json.dumps(_jsonable(df), indent=1, default=str) + "\n", encoding="utf-8")


def read_text(
    path: str | os.PathLike[str], *, what: str = "file", max_bytes: int | None = None
) -> str:
    """The UTF-8 text of a local file or URL (YAML configs, scenario and constraint files).

    Parameters
    ----------
    path:
        File path or fsspec URL.
    what:
        What the file is, for messages: ``what="scenario file"`` gives
        ``PATH: scenario file not found``.
    max_bytes:
        Refuse a larger file before reading it.

    Raises
    ------
    InputFileError
        Missing, a folder, unreadable or not UTF-8; the message names the file (a URL
        without its query string or secrets).
    UsageError
        A URL whose storage extra is not installed, or an unknown protocol.
    """
    norm = normalize(path)
    name = display(norm)
    with local_copy(norm, what=what) as p:
        if not p.exists():
            raise InputFileError(f"{name}: {what} not found")
        if p.is_dir():
            raise InputFileError(f"{name}: is a directory, expected a {what}")
        size = p.stat().st_size
        if max_bytes is not None and size > max_bytes:
            raise InputFileError(
                f"{name}: {size:,} bytes is too large for a {what} (limit {max_bytes:,})"
            )
        try:
            return p.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InputFileError(
                f"{name}: not UTF-8 text (first invalid byte at offset "
                f"{exc.start}); save it as UTF-8"
            ) from exc
        except OSError as exc:
            raise InputFileError(f"{name}: cannot read {what}: {exc.strerror or exc}") from exc


def write_text(path: str | os.PathLike[str], text: str) -> Path | str:
    """Write UTF-8 ``text`` (an HTML report, a JSON summary) to a local file or URL."""
    norm = normalize(path)
    with local_target(norm) as p:
        _atomic(p, lambda tmp: tmp.write_text(text, encoding="utf-8"), final=isinstance(norm, Path))
    return norm


def parse_yaml(text: str, source: str, *, with_node: bool = False) -> Any:
    """Parse YAML ``text`` within bounds (:mod:`pricelab.yamlsafe`: size, depth, aliases,
    duplicate keys); a syntax error is a :class:`ConfigError` naming ``source`` and line.

    With ``with_node`` returns ``(data, node)``: the composed node keeps line numbers for
    messages about keys.
    """
    from pricelab import yamlsafe

    data, node = yamlsafe.load(text, source)
    return (data, node) if with_node else data
