"""Operations: monitoring checks and the HTML report."""

from __future__ import annotations

import os
from pathlib import Path, PurePath
from typing import Any

from pricelab.store import Store

PathLike = str | os.PathLike[str]


def monitor(
    db: PathLike | None = None,
    *,
    as_of: Any = None,
    config: PathLike | None = None,
    record: bool = True,
) -> Any:
    """Run the monitoring checks: a :class:`pricelab.monitor.MonitorResult`.

    Parameters
    ----------
    as_of:
        ``datetime.date`` or ISO date string the checks are judged at (default today, UTC).
    config:
        YAML file with a ``monitor:`` section of thresholds (defaults: ``pricelab.monitor.DEFAULTS``).

    record:
        Record a ``monitor`` run (status ``ok`` or ``alert``; ``result.run_id``), as the
        pipeline's monitor step does (skipped when the file cannot be written now).

    The caller decides what an alert means; the CLI exits 1 when ``result.ok`` is False.
    """
    import datetime as _dt

    from pricelab.errors import UsageError
    from pricelab.monitor import load_config, record_monitor_run, run_checks

    if isinstance(as_of, str):
        try:
            as_of = _dt.date.fromisoformat(as_of)
        except ValueError:
            raise UsageError(f"--as-of: {as_of!r} is not an ISO date (YYYY-MM-DD)") from None
    cfg = load_config(config)
    with Store.open(db, must_exist=True, read_only=True) as store:
        result = run_checks(store, as_of=as_of, config=cfg)
    if record:  # as validate: unrecorded when the file cannot be written now
        from pricelab.errors import StoreError, UnavailableError

        try:
            with Store.open(db, must_exist=True) as store:
                record_monitor_run(store, result, cfg)
        except (StoreError, UnavailableError):
            pass
    return result


def report(
    db: PathLike | None = None, *, output: PathLike, run: str | None = None, top: int = 6
) -> Any:
    """Write the self-contained HTML report to ``output``: a :class:`pricelab.report.Report`.

    Parameters
    ----------
    output:
        The ``.html`` file to write: a path or an fsspec URL (``az://``, ``s3://``...).
    run:
        Build around this estimate, optimize or simulate run (default: the latest runs).
    top:
        Number of items whose demand and profit curves are drawn.

    Raises
    ------
    UsageError
        ``output`` does not end in .html/.htm, its folder is missing, or ``top`` < 1.
    NotFoundError
        ``run`` does not exist.
    """
    from pricelab.errors import UsageError
    from pricelab.filecheck import HTML_OUTPUT
    from pricelab.report import build_report, write_report
    from pricelab.urls import display, normalize

    out = normalize(output)
    name = display(out)
    if PurePath(name).suffix.lower() not in HTML_OUTPUT.extensions:
        raise UsageError(f"--output {name}: {HTML_OUTPUT.hint}")
    if isinstance(out, Path) and not out.parent.exists():
        raise UsageError(f"--output {out}: folder {out.parent} does not exist")
    if top < 1:
        raise UsageError(f"--top must be at least 1, got {top}")
    with Store.open(db, must_exist=True, read_only=True) as store:
        rep = build_report(store, run_id=run, top=top)
    write_report(rep, out)
    return rep
