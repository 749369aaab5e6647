"""Where grouped work runs: the one place an engine is chosen.

An engine applies the estimators' batched code to partitions of whole groups. The
estimators (:mod:`pricelab.elasticity`) never know which engine runs them:

* ``local`` (:mod:`.local`): one process, :func:`pricelab.elasticity.estimate` on the
  whole frame (numpy kernels over all groups at once);
* ``spark`` (:mod:`.spark`, extra ``pricelab[spark]``): sales read by Spark (Parquet, a
  table or a Delta path), repartitioned so each partition holds whole groups, and
  :func:`pricelab.elasticity.fit_groups` applied to every partition with
  ``mapInArrow`` (``hierarchical``: :func:`pricelab.elasticity.group_stats` per
  partition, :func:`pricelab.elasticity.shrink_groups` on the driver).

Engines use only the public partition API of :mod:`pricelab.elasticity` (its
``__all__``, defined in :mod:`pricelab.elasticity.batched`), never the estimators'
internal modules.

Both return an :class:`~pricelab.elasticity.ElasticityResults` from ``estimate``. For
``simulate`` on a history too large for one machine, ``spark``'s ``baseline``
(:mod:`.history`) aggregates the baseline window; the projection then runs locally.
"""

from __future__ import annotations

from typing import Any, Protocol

from pricelab.errors import UsageError

ENGINES = ("local", "spark")


class Engine(Protocol):
    """What every engine offers."""

    name: str

    def estimate(self, source: Any, **options: Any) -> Any:
        """Elasticities per group of ``source`` (see the engine's own docstring)."""
        ...

    def baseline(self, source: Any, weeks: int, **options: Any) -> Any:
        """The simulation baseline window of ``source`` (a
        :class:`~pricelab.engines.history.HistoryWindow`)."""
        ...


def get_engine(name: str = "local", **options: Any) -> Engine:
    """Return the engine called ``name`` (``local`` or ``spark``).

    Parameters
    ----------
    name:
        ``local`` (default) or ``spark``.
    **options:
        Passed to the engine's constructor (``spark``: ``spark=`` a session,
        ``partitions=``).

    Raises
    ------
    UsageError
        Unknown engine, or ``spark`` without PySpark installed.
    """
    if name == "local":
        from .local import LocalEngine

        return LocalEngine(**options)
    if name == "spark":
        from .spark_engine import SparkEngine

        return SparkEngine(**options)
    raise UsageError(f"unknown engine '{name}'; choose one of {', '.join(ENGINES)}")


__all__ = ["ENGINES", "Engine", "get_engine"]
