"""Reports: a self-contained HTML file (inline CSS, base64 PNG plots) built from a store.

``build_report(store, run_id=None, top=6)`` returns a :class:`Report` with the HTML text and
which sections had data; :func:`write_report` writes it to a file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pricelab.io import write_text
from pricelab.report import decisions as D
from pricelab.report import evidence as E
from pricelab.report import sections as S
from pricelab.report.data import ReportData, load_report_data, resolve_runs
from pricelab.report.html import page
from pricelab.report.markdown import load_markdown, markdown_section
from pricelab.store.db import Store
from pricelab.urls import display, normalize

__all__ = [
    "Report",
    "ReportData",
    "build_report",
    "load_report_data",
    "resolve_runs",
    "write_report",
]


@dataclass
class Report:
    """A rendered report: the HTML and, per section, whether its data was present."""

    html: str
    sections: dict[str, bool]
    runs: dict[str, str | None]
    path: Path | str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (a URL without its query string or secrets)."""
        return {
            "output": display(self.path) if self.path else None,
            "bytes": len(self.html.encode()),
            "sections": self.sections,
            "runs": self.runs,
        }


def build_report(store: Store, *, run_id: str | None = None, top: int = 6) -> Report:
    """Render the report for ``store``.

    Parameters
    ----------
    store:
        An open store (read-only is enough).
    run_id:
        Build around this estimate, optimize or simulate run (default: latest runs).
    top:
        Number of items whose demand and profit curves are drawn.
    """
    from pricelab import __version__

    d: ReportData = load_report_data(store, run_id)
    parts = [
        S.overview(d),
        S.quality(d),
        S.elasticities(d),
        D.curves(d, top),
        D.plan(d),
        D.scenarios(d),
        E.backtest(E.load_backtest(store)),
        E.experiments(E.load_experiment(store)),
    ]
    md = load_markdown(store)
    if md is not None:  # a season clearance section only where a markdown run exists
        parts.append(markdown_section(md, d.base_currency))
    subtitle = (
        f"{Path(d.db).name} · generated {d.generated_at:%Y-%m-%d %H:%M} UTC · "
        f"base currency {d.base_currency}"
    )
    footer = (
        f"pricelab {__version__}. Self-contained file: every style and image is inline; "
        "it makes no network requests."
    )
    html = page("pricelab report", subtitle, [(sid, h, body) for sid, h, body, _ in parts], footer)
    return Report(
        html,
        {sid: shown for sid, _, _, shown in parts},
        {c: (r["run_id"] if r else None) for c, r in d.runs.items()},
    )


def write_report(report: Report, path: str | os.PathLike[str]) -> Path | str:
    """Write the HTML to ``path`` and return where it went (a local path or a URL).

    Written as every output file is (:func:`pricelab.io.write_text`): a local file atomically
    (a temporary file renamed into place, after the commit when a command holds one); an
    fsspec URL (``az://``, ``s3://``, ``memory://``...) is written locally and then uploaded.

    Raises
    ------
    UsageError
        The container, bucket or folder of a URL does not exist, access is denied, or the
        storage extra is not installed.
    """
    out = normalize(path)
    write_text(out, report.html)
    report.path = out
    return out
