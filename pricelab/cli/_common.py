"""Options every command shares, printing, and the one place errors become exit codes.

Exit codes (contract): 0 success; 1 the job ran but a check failed; 2 bad usage or input;
3 an internal error (a bug: rerun with --debug and report it); 75 (``EX_TEMPFAIL``) storage
temporarily unavailable (object storage unreachable or timing out, database locked): nothing
changed, retry later.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import polars as pl
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pricelab.errors import CheckFailed, PricelabError, UnavailableError

if TYPE_CHECKING:
    from pricelab.filecheck import OutputFormats

F = TypeVar("F", bound=Callable[..., Any])

DbOpt = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="DuckDB file (default: $PRICELAB_DB, else ./pricelab.duckdb).",
        show_default=False,
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout instead of tables.")
]
OutputOpt = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="Write the main result as CSV, Parquet or JSON "
        "(by extension); a path or an az://, s3://, gs:// URL.",
        show_default=False,
    ),
]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")]
BaselineWeeksOpt = Annotated[int, typer.Option(help="Weeks of history defining base units.")]

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

EXIT_INTERNAL = 3
#: set when a command printed its JSON document (a check that fails after it adds none)
_JSON_PRINTED: list[bool] = []
#: where a ``--json`` command's document goes while file descriptor 1 points at stderr
_JSON_OUT: list[Any] = []


def guarded(
    fn: F | None = None, *, output_formats: OutputFormats | None = None, hold: bool = True
) -> Any:
    """Run a command body; turn pricelab errors into one line on stderr and an exit code.

    A command given ``--output`` has it checked before any work (extension in
    ``output_formats``, default CSV/Parquet/JSON, refused with its hint; folder exists and takes a file), and its
    database writes are held until the body returns: the file is written first, and a
    failure with exit 2 or 3 rolls back the runs and results (exit 2: database unchanged).
    ``hold=False`` (the pipeline, whose steps are separate runs kept as they finish) only
    checks the destination first.
    """
    if fn is None:
        return functools.partial(guarded, output_formats=output_formats, hold=hold)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = bool(kwargs.get("debug", False))
        _JSON_PRINTED.clear()
        with json_stdout(bool(kwargs.get("json"))):
            return _guarded_body(fn, output_formats, hold, debug, args, kwargs)

    return wrapper  # type: ignore[return-value]


def _guarded_body(
    fn: Callable[..., Any],
    output_formats: OutputFormats | None,
    hold: bool,
    debug: bool,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """:func:`guarded`'s body: the command, its errors as one line and an exit code."""
    try:
        return _run_holding_output(fn, output_formats, hold, *args, **kwargs)
    except typer.Exit:
        raise
    except PricelabError as exc:
        if debug:
            raise
        _fail(exc, bool(kwargs.get("json")))
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(130) from None
    except Exception as exc:  # noqa: BLE001 - last line of defence, no traceback for users
        if debug:
            raise
        damaged = _damaged_database(exc, kwargs.get("db"))
        if damaged is not None:
            _fail(damaged, bool(kwargs.get("json")))
        first = (str(exc).splitlines() or [""])[0]
        if kwargs.get("json") and not _JSON_PRINTED:
            print_json({"error": f"internal error: {type(exc).__name__}: {first}", "exit_code": 3})
        err_console.print(
            f"[bold red]internal error:[/] {type(exc).__name__}: {escape(first)} "
            "(rerun with --debug for the traceback and report it)",
            highlight=False,
        )
        raise typer.Exit(EXIT_INTERNAL) from None


def _fail(exc: PricelabError, json: bool) -> NoReturn:
    """One error line on stderr (and the JSON document with --json), then the exit code."""
    lines = str(exc).splitlines() or [type(exc).__name__]
    if json and not _JSON_PRINTED:  # one document: the result or this
        doc: dict[str, Any] = {"error": str(exc), "exit_code": exc.exit_code}
        if isinstance(exc, UnavailableError):  # a scheduler retries these
            doc.update(status="unavailable", retry=True)
        print_json(doc)
    err_console.print(f"[bold red]error:[/] {escape(lines[0])}", highlight=False)
    for line in lines[1:]:
        err_console.print(f"  {line}", highlight=False, markup=False)
    raise typer.Exit(exc.exit_code) from None


_DAMAGED = ("could not read enough bytes", "corrupt", "checksum", "invalid block")


def _damaged_database(exc: Exception, db: Any) -> PricelabError | None:
    """A DuckDB read failure from a truncated or damaged file, as a StoreError (exit 2)."""
    from pricelab.errors import StoreError

    text = str(exc)
    if "duckdb" not in type(exc).__module__ or not any(k in text.lower() for k in _DAMAGED):
        return None
    name = f"{db}: " if db is not None else ""
    return StoreError(
        f"{name}cannot read the database (truncated or damaged?): {text.splitlines()[0]}"
    )


def _run_holding_output(
    fn: Callable[..., Any], formats: OutputFormats | None, hold: bool, *args: Any, **kwargs: Any
) -> Any:
    """``fn(*args, **kwargs)``; with ``--output``: checked first, writes committed after it."""
    output = kwargs.get("output")
    if output is None:
        return fn(*args, **kwargs)
    from pricelab.filecheck import check_output
    from pricelab.store.db import held_commits

    check_output(output, formats=formats)
    if not hold:
        return fn(*args, **kwargs)
    outcome: list[BaseException] = []
    with held_commits():
        try:
            return fn(*args, **kwargs)
        except (CheckFailed, typer.Exit) as exc:  # the job ran (exit 1 / explicit exit): keep it
            outcome.append(exc)
    raise outcome[0]


def print_json(doc: Any) -> None:
    """Print one JSON document on stdout (the real one while :func:`json_stdout` holds it)."""
    _JSON_PRINTED.append(True)
    out = _JSON_OUT[-1] if _JSON_OUT else sys.stdout
    out.write(json.dumps(doc, indent=2, default=str, sort_keys=False) + "\n")
    out.flush()


@contextmanager
def json_stdout(active: bool) -> Iterator[None]:
    """While a ``--json`` command runs, file descriptor 1 points at stderr and
    :func:`print_json` writes to the real stdout, saved here: stdout carries the one JSON
    document whatever a native library prints there (HiGHS 1.16 in scipy can print
    ``HighsMipSolverData::transformNewIntegerFeasibleSolution tmpSolver.run();``,
    ERGO-Code/HiGHS#2783). C's buffered stdout is flushed before file descriptor 1 is
    given back, so what a library printed goes to stderr. Where ``sys.stdout`` is not file
    descriptor 1 (a test runner capturing it) the document still goes to ``sys.stdout``.
    """
    if not active:
        yield
        return
    _flush_stdout()
    try:
        saved = os.dup(1)
        os.dup2(2, 1)
    except OSError:  # no file descriptor 1 or 2 to move: nothing can leak into it either
        yield
        return
    try:
        own = sys.stdout.fileno() == 1
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        own = False
    if own:
        enc, errors = sys.stdout.encoding, sys.stdout.errors
        _JSON_OUT.append(open(saved, "w", encoding=enc, errors=errors, closefd=False))  # noqa: SIM115
    try:
        yield
    finally:
        _flush_stdout()
        if own:
            _JSON_OUT.pop().close()
        os.dup2(saved, 1)
        os.close(saved)


def _flush_stdout() -> None:
    """Flush Python's and C's stdout buffers into file descriptor 1 as it is now."""
    with suppress(AttributeError, OSError, ValueError):
        sys.stdout.flush()
    if os.name == "posix":
        import ctypes

        with suppress(OSError, AttributeError):
            ctypes.CDLL(None).fflush(None)


def is_count(column: str) -> bool:
    """The column holds units (a count): ``expected_quantity``, ``units``, ``stock_left``..."""
    c = column.lower()
    return (
        ("quantity" in c or "units" in c or c.startswith("stock"))
        and "%" not in c
        and ("pct" not in c)
    )


def frame_table(
    df: pl.DataFrame, title: str | None = None, *, max_rows: int = 20, floats: int = 3
) -> Table:
    """A rich table of the first ``max_rows`` rows of ``df``; counts of units (columns named
    for quantities, units or stock) print without decimals."""
    table = Table(title=title, show_lines=False, header_style="bold")
    digits = [0 if is_count(col) else floats for col in df.columns]
    for col, dtype in df.schema.items():
        table.add_column(col, justify="right" if dtype.is_numeric() else "left")
    for row in df.head(max_rows).iter_rows():
        cells = []
        for v, d in zip(row, digits, strict=True):
            if isinstance(v, float):
                cells.append("nan" if v != v else f"{v:,.{d}f}")
            else:
                cells.append("" if v is None else str(v))
        table.add_row(*cells)
    if df.height > max_rows:
        table.caption = f"{max_rows} of {df.height} rows shown"
    return table


def write_output(df: pl.DataFrame, output: Path | None) -> None:
    """Write ``df`` to ``--output`` when given, and say so on stderr."""
    if output is None:
        return
    from pricelab.io import write_table

    write_table(df, output)
    said_written(df, output)


def said_written(df: pl.DataFrame, output: Path | None) -> None:
    """Say on stderr that ``df`` was written to ``--output`` (when given)."""
    if output is None:
        return
    from pricelab import staged
    from pricelab.urls import display

    line = f"wrote {df.height} rows to {display(output)}"
    # once the file is in place (after the run's commit)
    staged.then(lambda: err_console.print(line, highlight=False, markup=False))


def print_plan_run(
    run: Any,
    output: Path | None,
    json: bool,
    *,
    doc: dict[str, Any] | None = None,
    notes: Callable[[Any], None] | None = None,
) -> bool:
    """The plan commands' (``optimize``, ``markdown``) common output.

    Writes ``run.plan.table`` to ``--output``, calls ``notes(run)`` (stderr lines such as
    where the run was tracked), then prints either the ``--json`` document (``doc``,
    default ``run.to_dict()``; returns True: nothing more to print) or the plan's summary
    and the run it was stored as (returns False: the command adds its tables).
    """
    write_output(run.plan.table, output)
    if notes is not None:
        notes(run)
    if json:
        print_json(run.to_dict() if doc is None else doc)
        return True
    console.print(run.plan.summary, highlight=False)
    if run.run_id:
        console.print(
            f"stored as run {run.run_id}"
            + (f" (estimates {run.estimates})" if run.estimates else "")
        )
    return False
