"""Checks on files that users hand to pricelab or ask it to write: hostile-input guards.

Every check here runs before any work: an ``--output`` destination, a text file that is
compressed, UTF-16 or binary, header names that collide, columns that are not flat, and
text cells a spreadsheet would run as formulas.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pricelab.errors import InputFileError, UsageError
from pricelab.urls import display, normalize

#: formats ``--output`` may name (the extension decides)
WRITE_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".json": "json"}


@dataclass(frozen=True)
class OutputFormats:
    """The extensions one command's ``--output`` takes, and what to tell a user who gives
    another (empty: "expected one of" the extensions)."""

    extensions: Mapping[str, str]
    hint: str = ""


#: ``report``'s ``--output``: one HTML file
HTML_OUTPUT = OutputFormats(
    {".html": "html", ".htm": "html"}, hint="the report is HTML; use a .html file name"
)


def check_output(
    path: str | os.PathLike[str],
    *,
    formats: Mapping[str, str] | OutputFormats | None = None,
    option: str = "--output",
) -> None:
    """Refuse an output destination before any work is done.

    The extension must be one of ``formats`` (default: CSV, Parquet, JSON; an
    :class:`OutputFormats` says in its own words what to use instead); a local path
    must not be a folder and its folder must exist and take a new file (a probe file is
    created and removed, so a read-only or full file system is found here, not after the
    work). A URL is checked for its extension only (the upload reports its own failures).

    Raises
    ------
    UsageError
        The message names the option and the path.
    """
    if not isinstance(formats, OutputFormats):
        formats = OutputFormats(WRITE_FORMATS if formats is None else formats)
    norm = normalize(path)
    name = display(norm)
    suffix = Path(name.split("?", 1)[0]).suffix.lower()
    if suffix not in formats.extensions:
        if formats.hint:
            raise UsageError(f"{option} {name}: {formats.hint}")
        allowed = ", ".join(sorted(formats.extensions))
        raise UsageError(
            f"{option} {name}: unknown file extension '{suffix or '(none)'}'; "
            f"expected one of {allowed}"
        )
    if not isinstance(norm, Path):
        return
    if norm.is_dir():
        raise UsageError(f"{option} {name}: is a directory; give a file name")
    folder = norm.parent
    if not folder.exists():
        raise UsageError(f"{option} {name}: folder {folder} does not exist")
    if not folder.is_dir():
        raise UsageError(f"{option} {name}: {folder} is not a folder")
    if norm.exists() and not os.access(norm, os.W_OK):
        raise UsageError(f"{option} {name}: file is not writable")
    try:
        fd, probe = tempfile.mkstemp(prefix=".pricelab-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(
            f"{option} {name}: cannot write in folder {folder}: {exc.strerror or exc}"
        ) from exc


def sniff_text_file(p: Path, name: str) -> None:
    """Refuse what is not a plain UTF-8 text file, with the reason.

    One rule for every CSV: a gzip-compressed file is refused (whatever its name; decompress
    it first), and UTF-16 (with or without a byte-order mark: NUL bytes between the
    letters) is named as such.
    """
    with p.open("rb") as fh:
        head = fh.read(4096)
    if head[:2] == b"\x1f\x8b":
        raise InputFileError(
            f"{name}: is gzip-compressed; pricelab reads plain CSV text: decompress it first "
            "(e.g. gunzip -c file > file.csv)"
        )
    utf16 = head[:2] in (b"\xff\xfe", b"\xfe\xff") or (
        b"\x00" in head and head.count(b"\x00") * 4 >= len(head)
    )
    if utf16:
        raise InputFileError(
            f"{name}: looks like UTF-16 text (NUL bytes between the letters); save it as UTF-8"
        )
    if b"\x00" in head:
        line = head.count(b"\n", 0, head.index(b"\x00")) + 1
        raise InputFileError(f"{name}: holds a NUL byte (line {line}); is it a text file?")


def strip_header(df: pl.DataFrame, name: str) -> pl.DataFrame:
    """Column names without surrounding spaces; two that collide (after stripping, or in
    letter case: the database does not tell ``Category`` from ``category``) are an error."""
    seen: dict[str, str] = {}
    for col in df.columns:
        key = col.strip().lower()
        if key in seen:
            raise InputFileError(
                f"{name}: columns {seen[key]!r} and {col!r} are the same column name "
                "(names are compared without surrounding spaces and letter case); "
                "rename or drop one"
            )
        seen[key] = col
    return df.rename({c: c.strip() for c in df.columns})


def as_strings(df: pl.DataFrame, name: str) -> pl.DataFrame:
    """Every column as text; nested columns and bytes that are not UTF-8 are named errors."""
    out = []
    for col, dtype in df.schema.items():
        if dtype.is_nested() or dtype == pl.Object:
            raise InputFileError(
                f"{name}: column {col!r} is a {dtype} column; pricelab reads flat columns "
                "(text, numbers, dates): flatten or drop it"
            )
        try:
            out.append(df[col].cast(pl.String))
        except pl.exceptions.PolarsError as exc:
            row = next(
                (
                    i + 1
                    for i, v in enumerate(df[col].to_list())
                    if isinstance(v, bytes) and not _utf8(v)
                ),
                None,
            )
            where = f" (first at row {row})" if row else ""
            raise InputFileError(
                f"{name}: column {col!r} holds bytes that are not UTF-8 text{where}"
            ) from exc
    return pl.DataFrame(out)


def _utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


#: a text cell starting with one of these is a formula to a spreadsheet
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(df: pl.DataFrame) -> pl.DataFrame:
    """Text cells a spreadsheet would run as a formula (``=HYPERLINK(...)``, ``+1``, ``@x``),
    escaped with a leading apostrophe (OWASP's CSV-injection advice); numbers are untouched.

    Only CSV output is escaped: Parquet and JSON keep the exact text.
    """
    out = []
    for col, dtype in df.schema.items():
        if dtype != pl.String:
            continue
        c = pl.col(col)
        starts = pl.any_horizontal([c.str.starts_with(ch) for ch in FORMULA_START])
        out.append(pl.when(starts).then(pl.lit("'") + c).otherwise(c).alias(col))
    return df.with_columns(out) if out else df


def csv_row_lines(p: Path) -> list[int] | None:
    """The file line where each data row starts, when a quoted cell spans lines (else None:
    then row N is on line N + 1). Blank lines are not rows."""
    import csv

    starts: list[int] = []
    spans = False
    with p.open(newline="", encoding="utf-8-sig", errors="replace") as fh:
        reader = csv.reader(fh)
        prev = 0
        try:
            for rec in reader:
                start, prev = prev + 1, reader.line_num
                spans = spans or prev > start
                if any(cell.strip() for cell in rec):
                    starts.append(start)
        except csv.Error:
            return None
    return starts[1:] if spans else None
