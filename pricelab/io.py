"""Reading and writing tables as files (CSV, Parquet, JSON) by extension.

Every file a user hands to pricelab goes through :func:`read_table`, so every
command gives the same clear error for a missing, empty, non-UTF-8 or unknown file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from pricelab.errors import InputFileError, UsageError

READ_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
WRITE_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".json": "json"}


def table_format(path: str | Path, *, writing: bool = False) -> str:
    """Return ``csv``/``parquet``/``json`` for ``path`` or raise a clear error."""
    suffix = Path(str(path)).suffix.lower()
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


def read_table(path: str | Path, *, all_strings: bool = False) -> pl.DataFrame:
    """Read a CSV or Parquet file into a polars frame.

    Parameters
    ----------
    path:
        File path; the format comes from its extension.
    all_strings:
        Read every CSV column as text (validation then casts and reports bad cells).

    Raises
    ------
    InputFileError
        The file does not exist, has an unknown extension, is not UTF-8, is empty
        or cannot be parsed.
    """
    p = Path(str(path))
    fmt = table_format(p)
    if not p.exists():
        raise InputFileError(f"{p}: file not found")
    if p.is_dir():
        raise InputFileError(f"{p}: is a directory, expected a {fmt.upper()} file")
    if p.stat().st_size == 0:
        raise InputFileError(f"{p}: file is empty (expected a header row and data)")
    if fmt == "csv":
        bad = _first_bad_utf8_line(p)
        if bad is not None:
            raise InputFileError(
                f"{p}: not UTF-8 text (first invalid byte at offset {bad[1]}, line {bad[0]}); "
                "save it as UTF-8"
            )
        try:
            if all_strings:
                df = pl.read_csv(p, infer_schema=False, null_values=[""])
            else:
                df = pl.read_csv(p, infer_schema_length=10000, null_values=[""])
        except pl.exceptions.NoDataError as exc:
            raise InputFileError(f"{p}: file is empty (expected a header row and data)") from exc
        except (pl.exceptions.ComputeError, pl.exceptions.PolarsError) as exc:
            raise InputFileError(f"{p}: cannot parse CSV: {str(exc).splitlines()[0]}") from exc
        df = df.rename({c: c.strip() for c in df.columns})
    else:
        try:
            df = pl.read_parquet(p)
        except Exception as exc:  # noqa: BLE001 - any parquet failure is a bad input file
            raise InputFileError(f"{p}: cannot read Parquet: {str(exc).splitlines()[0]}") from exc
        if all_strings:
            df = df.with_columns(pl.all().cast(pl.String))
    if df.height == 0:
        raise InputFileError(f"{p}: has a header but no data rows")
    return df


def _jsonable(df: pl.DataFrame) -> list[dict[str, Any]]:
    return json.loads(df.write_json())


def write_table(df: pl.DataFrame, path: str | Path) -> Path:
    """Write ``df`` as CSV, Parquet or JSON (a list of records) by the extension of ``path``."""
    p = Path(str(path))
    try:
        fmt = table_format(p, writing=True)
    except InputFileError as exc:
        raise UsageError(str(exc)) from exc
    if not p.parent.exists():
        raise UsageError(f"{p}: folder {p.parent} does not exist")
    if fmt == "csv":
        # nested columns (lists) cannot go to CSV: join them as text
        flat = df.with_columns(
            [pl.col(c).cast(pl.List(pl.String)).list.join(";") for c, t in df.schema.items()
             if isinstance(t, pl.List)]
        )
        flat.write_csv(p)
    elif fmt == "parquet":
        df.write_parquet(p)
    else:
        p.write_text(json.dumps(_jsonable(df), indent=1, default=str) + "\n", encoding="utf-8")
    return p
