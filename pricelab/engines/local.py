"""The local engine: the batched estimators in this process, on a polars frame."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import polars as pl

from pricelab.elasticity import ElasticityResults
from pricelab.elasticity import estimate as _estimate
from pricelab.errors import EmptyStoreError, UsageError
from pricelab.io import read_table


def read_sales(
    source: pl.DataFrame | str | os.PathLike[str], before: str | None = None
) -> pl.DataFrame:
    """Sales as a polars frame from a frame or a CSV/Parquet file, optionally before a date.

    Raises
    ------
    InputFileError
        The file is missing, unreadable or of an unknown type.
    UsageError
        ``before`` is not an ISO date.
    """
    df = source if isinstance(source, pl.DataFrame) else read_table(source)
    if "date" in df.columns and df.schema["date"] != pl.Date:
        col = pl.col("date")
        df = df.with_columns(
            col.str.to_date() if df.schema["date"] == pl.String else col.cast(pl.Date)
        )
    if before is not None:
        df = df.filter(pl.col("date") < _iso_date(before))
        if df.height == 0:
            raise EmptyStoreError(f"no sales rows before {before}")
    return df


def _iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise UsageError(f"--before must be an ISO date (YYYY-MM-DD), got '{text}'") from exc


class LocalEngine:
    """Run :func:`pricelab.elasticity.estimate` on the whole frame in this process."""

    name = "local"

    def estimate(
        self,
        source: pl.DataFrame | str | os.PathLike[str],
        *,
        before: str | None = None,
        **options: Any,
    ) -> ElasticityResults:
        """Estimate elasticities per group.

        Parameters
        ----------
        source:
            Sales as a polars frame or a CSV/Parquet path.
        before:
            Use only weeks before this ISO date.
        **options:
            Keyword arguments of :func:`pricelab.elasticity.estimate` (``model``, ``by``,
            ``instrument``, ``items``, ...).

        Returns
        -------
        ElasticityResults
        """
        return _estimate(read_sales(source, before), **options)

    def baseline(self, source: Any, weeks: int, **options: Any) -> Any:
        """Not offered: the local engine's baseline is the database's own query.

        Raises
        ------
        UsageError
            Always; ``simulate`` aggregates the database's sales with DuckDB, and a
            history read from ``--source`` needs ``--engine spark``.
        """
        raise UsageError(
            "the local engine simulates from the database's own sales; "
            "--source needs --engine spark (or ingest the file into --db)"
        )
