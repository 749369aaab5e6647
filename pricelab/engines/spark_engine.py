"""The Spark engine object: estimates with :mod:`.spark`, baseline windows with :mod:`.history`.

Kept apart from both so neither imports the other's module (no import cycle).
"""

from __future__ import annotations

from typing import Any

from pricelab.elasticity import ElasticityResults

from .history import baseline_spark
from .spark import estimate_spark_results


class SparkEngine:
    """Engine running the estimators on Spark (see :func:`estimate_spark`)."""

    name = "spark"

    def __init__(self, spark: Any = None, partitions: int | None = None) -> None:
        self.spark = spark
        self.partitions = partitions

    def estimate(self, source: Any, **options: Any) -> ElasticityResults:
        """Estimate elasticities of ``source`` on Spark; see :func:`estimate_spark`."""
        options.setdefault("partitions", self.partitions)
        return estimate_spark_results(source, spark=self.spark, **options)

    def baseline(self, source: Any, weeks: int, **options: Any) -> Any:
        """The simulation baseline window of ``source`` aggregated on Spark; see
        :func:`pricelab.engines.history.baseline_spark`."""
        return baseline_spark(source, weeks, spark=self.spark, **options)
