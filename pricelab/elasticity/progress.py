"""A rich progress bar for long estimates: ``with rich_progress() as cb: estimate(..., progress=cb)``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console


@contextmanager
def rich_progress(
    description: str = "estimating",
    *,
    console: Console | None = None,
    transient: bool = True,
    disable: bool | None = None,
) -> Iterator[Callable[[int, int], None]]:
    """Yield a ``progress(done, total)`` callback that drives a rich progress bar.

    Parameters
    ----------
    description:
        Text left of the bar.
    console:
        Where to draw (default: a console on stderr, so ``--json`` stdout stays clean).
    transient:
        Remove the bar when the block exits.
    disable:
        Draw nothing (default: when the console is not a terminal, e.g. in CI logs).

    Yields
    ------
    callable
        Pass it as ``estimate(..., progress=...)``; groups done out of total.
    """
    console = console or Console(stderr=True)
    if (not console.is_terminal) if disable is None else disable:
        # nothing is drawn (CI logs, pipes, cron): rich.progress is not even imported
        yield _ignore
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("groups"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=transient,
    )
    with bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _ignore(done: int, total: int) -> None:
    """The callback when no bar is drawn."""
