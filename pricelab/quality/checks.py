"""Findings of data-quality checks: what is wrong, where, and how bad."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl


@dataclass(frozen=True)
class Issue:
    """One finding: an error stops ingest, a warning is reported and ingest goes on."""

    level: str  # "error" | "warning"
    source: str  # file name or table name
    column: str | None
    rule: str
    count: int = 0
    examples: tuple[str, ...] = ()
    unit: str = "row"  # what ``count`` counts: row, series, item, market

    def message(self) -> str:
        """One line naming the source, column, rule and the first offending rows."""
        where = f"{self.source}: column '{self.column}'" if self.column else self.source
        text = f"{where}: {self.rule}"
        if self.count:
            units = self.unit if self.count == 1 or self.unit == "series" else f"{self.unit}s"
            text += f" ({self.count} {units}"
            if self.examples:
                text += "; first: " + ", ".join(self.examples)
            text += ")"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "level": self.level,
            "source": self.source,
            "column": self.column,
            "rule": self.rule,
            "count": self.count,
            "unit": self.unit,
            "examples": list(self.examples),
            "message": self.message(),
        }


@dataclass
class QualityReport:
    """All findings of a validation."""

    issues: list[Issue] = field(default_factory=list)
    run_id: str | None = None  # the ``validate`` run that recorded it, if any

    @property
    def errors(self) -> list[Issue]:
        """Findings that stop an ingest."""
        return [i for i in self.issues if i.level == "error"]

    @property
    def warnings(self) -> list[Issue]:
        """Findings that are reported only."""
        return [i for i in self.issues if i.level == "warning"]

    @property
    def ok(self) -> bool:
        """True when there are no errors."""
        return not self.errors

    def extend(self, other: QualityReport) -> None:
        """Add another report's findings."""
        self.issues.extend(other.issues)

    def error_text(self) -> str:
        """The errors as one message: the first on the first line, the rest below."""
        return "\n".join(i.message() for i in self.errors)

    def to_polars(self) -> pl.DataFrame:
        """One row per finding: level, source, column, rule, count, examples."""
        rows = [i.to_dict() for i in self.issues]
        if not rows:
            return pl.DataFrame(
                schema={
                    "level": pl.String,
                    "source": pl.String,
                    "column": pl.String,
                    "rule": pl.String,
                    "count": pl.Int64,
                    "examples": pl.String,
                }
            )
        return (
            pl.DataFrame(rows)
            .with_columns(pl.col("examples").cast(pl.List(pl.String)).list.join("; "))
            .drop("message")
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "ok": self.ok,
            "errors": [i.to_dict() for i in self.errors],
            "warnings": [i.to_dict() for i in self.warnings],
        }


def row_examples(
    df: pl.DataFrame,
    mask: pl.Series,
    column: str | None,
    *,
    line_offset: int | Sequence[int] | None,
    limit: int = 3,
) -> tuple[int, tuple[str, ...]]:
    """Count rows where ``mask`` holds and describe the first few (row, file line, value).

    ``line_offset``: the file line of row 1 minus 1, or the file line of every row (a CSV
    whose quoted cells span lines).
    """
    idx = df.with_row_index("__row").filter(mask)
    n = idx.height
    out = []
    for rec in idx.head(limit).iter_rows(named=True):
        row = rec["__row"] + 1
        desc = f"row {row}"
        if isinstance(line_offset, int):
            desc += f" (line {row + line_offset})"
        elif line_offset is not None and row <= len(line_offset):  # quoted cells span lines
            desc += f" (line {line_offset[row - 1]})"
        if column is not None and column in rec:
            desc += f" value {rec[column]!r}"
        out.append(desc)
    return n, tuple(out)
