"""What ``pipeline run`` writes outside the database every run: the production plan
(``optimize.output``) and its HTML report (``report.output``), each a path or a URL.

Both are written whether the plan is new or reused, so the files always match production;
the report is built around the plan run the pipeline used (not an analyst's newer ad-hoc
plan). A write that fails stops the optimize step with the write's exit code (75 when the
object store is unreachable).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def export_outputs(db: Path, cfg: dict[str, Any], step: Any, table: Any) -> Any:
    """``step`` (the optimize step) after writing the plan ``table`` and the report."""
    from pricelab.urls import display

    target = cfg["optimize"]["output"]
    if target is not None:
        from pricelab.io import write_table

        cols = [c for c in table.columns if c != "run_id"]
        write_table(table.select(cols), target)
        step.details = {**step.details, "output": display(target), "exported_rows": table.height}
        step.message += f"; plan written to {display(target)}"
    report = cfg["report"]["output"]
    if report is not None and step.run_id is not None:
        from pricelab.api.ops import report as write_report

        rep = write_report(db, output=report, run=step.run_id)
        step.details = {
            **step.details,
            "report": display(report),
            "report_runs": rep.runs,
            "report_sections": [k for k, shown in rep.sections.items() if shown],
        }
        step.message += f"; report written to {display(report)}"
    return step
