"""Work done on one partition of whole groups, and the global step of ``hierarchical``.

Nothing here imports Spark: the functions take and return polars / Arrow frames, so
the same code runs in the local dry run that fixes the output schema, inside Spark's
``mapInArrow`` and in tests. The statistics are the estimators' own, reached only
through the public partition API of :mod:`pricelab.elasticity` (:mod:`.batched`):

* Per-group models (``ols``, ``poisson``, ``iv``; ``panel`` on whole pooling levels):
  :func:`fit_frame` runs :func:`pricelab.elasticity.fit_groups` on the partition, the
  seasonal ``trend`` control measured from the first week of the whole data set.
* ``hierarchical``: stage 1 (:func:`poisson_stats`) runs the batched per-group Poisson
  fit and returns what the empirical-Bayes step needs per group
  (:func:`pricelab.elasticity.group_stats`); stage 2 (:func:`shrink_stats`, on the
  driver) pools the collected small table with the library's own shrinkage
  (:func:`pricelab.elasticity.shrink_groups`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import polars as pl
import pyarrow as pa

from pricelab.elasticity import (
    ElasticityResults,
    fit_groups,
    fits_table,
    group_stats,
    refit_groups,
    shrink_groups,
    with_params,
    wrap_results,
)


def fit_frame(df: pl.DataFrame, spec: dict[str, Any], origin: dt.date | None) -> pl.DataFrame:
    """Elasticities and ``b_*`` coefficients of the whole groups in ``df``.

    ``origin`` is the first week of the whole data set (the ``trend`` origin the local
    engine uses); the intercept is moved to it.
    """
    return fit_groups(df, spec, origin=origin)


def poisson_stats(df: pl.DataFrame, spec: dict[str, Any], origin: dt.date | None) -> pl.DataFrame:
    """Stage 1 of ``hierarchical``: per-group Poisson fit and what shrinkage needs.

    One row per group (see :func:`pricelab.elasticity.group_stats`).
    """
    return group_stats(df, spec, origin=origin)


def shrink_stats(stats: pl.DataFrame, spec: dict[str, Any]) -> tuple[pl.DataFrame, Any]:
    """Stage 2 of ``hierarchical``: empirical-Bayes shrinkage over all groups.

    ``stats`` is the concatenation of :func:`poisson_stats` over every partition.
    Returns the shrunk per-group table (for :func:`refit_frame` on every partition) and
    the shrunk fits with the pooling levels used (for :func:`finish_hierarchical`).
    """
    fits, used = shrink_groups(
        stats, by=list(spec["by"]), pool_by=spec.get("pool_by"), tau=spec.get("tau", "level")
    )
    return fits_table(fits), (fits, used)


def refit_frame(
    df: pl.DataFrame, spec: dict[str, Any], origin: dt.date | None, shrunk: pl.DataFrame
) -> pl.DataFrame:
    """Stage 3 of ``hierarchical``: intercepts and controls refitted given the shrunk slopes."""
    return refit_groups(df, shrunk, spec, origin=origin)


def finish_hierarchical(
    shrunk: Any, refitted: pl.DataFrame, spec: dict[str, Any], params: dict[str, Any]
) -> ElasticityResults:
    """The refitted coefficients put back; an :class:`ElasticityResults` like the local one."""
    fits, used = shrunk
    return wrap_results(
        with_params(fits, refitted),
        model="hierarchical",
        params={**params, "pool_by": used},
        alpha=spec["alpha"],
    )


class PartitionTask:
    """The function ``mapInArrow`` runs on each partition (picklable, no Spark import).

    Collects the partition's Arrow batches (a partition holds whole groups, which
    Arrow batching may split), runs :func:`fit_frame` or :func:`poisson_stats` once on
    all of them and yields the result cast to ``schema``.
    """

    def __init__(
        self,
        spec: dict[str, Any],
        origin: dt.date | None,
        stage: str,
        schema: pa.Schema | None = None,
        shrunk: pl.DataFrame | None = None,
    ) -> None:
        self.spec = spec
        self.origin = origin
        self.stage = stage
        self.schema = schema
        self.shrunk = shrunk

    def run(self, table: pa.Table) -> pa.Table:
        """Fit one partition given as an Arrow table; returns an Arrow table."""
        df = pl.from_arrow(table)
        assert isinstance(df, pl.DataFrame)
        if "date" in df.columns and df.schema["date"] != pl.Date:
            df = df.with_columns(pl.col("date").cast(pl.Date))
        if self.stage == "refit":
            assert self.shrunk is not None
            out = refit_frame(df, self.spec, self.origin, self.shrunk).to_arrow()
        else:
            fn = poisson_stats if self.stage == "poisson_stats" else fit_frame
            out = fn(df, self.spec, self.origin).to_arrow()
        if self.schema is not None:
            out = out.select(self.schema.names).cast(self.schema)
        return out

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        items = [b for b in batches if b.num_rows]
        if not items:
            return
        yield from self.run(pa.Table.from_batches(items)).to_batches()
