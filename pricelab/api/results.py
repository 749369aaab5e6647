"""Result objects of the API's commands that other API modules build on."""

from __future__ import annotations

from typing import Any

import polars as pl


class EstimateRun:
    """An estimate stored as a run: ``run_id`` and the :class:`ElasticityResults`."""

    def __init__(self, run_id: str | None, results: Any, table: pl.DataFrame | None = None) -> None:
        self.run_id = run_id
        self.results = results
        self._table = table if table is not None else results.elasticities
        self.mlflow: Any = None  # TrackingOutcome when logged to MLflow
        self._made: dict[str, Any] = {}  # summaries computed once (:meth:`summarize`)

    def summarize(self) -> None:
        """Compute :meth:`to_dict`, :meth:`distribution` and :meth:`flagged` now (each is
        computed once and kept: the run's tables do not change)."""
        self.to_dict()
        self.distribution()
        self.flagged()

    @property
    def elasticities(self) -> pl.DataFrame:
        """Contract columns and diagnostics per group (with ``category`` when items are loaded)."""
        return self._table

    def flagged(self) -> pl.DataFrame:
        """Groups with a flag in :data:`~pricelab.elasticity.results.DISPLAY_FLAGS`.

        Those ask for an analyst's attention; ``shrunk`` and ``separated`` are informational.
        """
        if "flagged" not in self._made:
            from pricelab.elasticity.results import DISPLAY_FLAGS, has_any_flag

            t = self._table
            self._made["flagged"] = t.filter(has_any_flag(DISPLAY_FLAGS)).sort(
                [c for c in ("item_id", "market") if c in t.columns]
            )
        return self._made["flagged"]

    def distribution(self) -> pl.DataFrame:
        """Elasticity quantiles and share flagged by category and market (when present).

        ``share_flagged`` counts :data:`~pricelab.elasticity.results.DISPLAY_FLAGS`.
        """
        if "distribution" not in self._made:
            self._made["distribution"] = self._distribution()
        return self._made["distribution"]

    def _distribution(self) -> pl.DataFrame:
        from pricelab.elasticity.results import DISPLAY_FLAGS, has_any_flag

        t = self._table
        group = [c for c in ("category", "market") if c in t.columns]
        if not group:
            return pl.DataFrame()
        warned = has_any_flag(DISPLAY_FLAGS)
        return (
            t.filter(pl.col("elasticity").is_not_nan())
            .group_by(group)
            .agg(
                pl.len().alias("groups"),
                pl.col("elasticity").median().alias("median"),
                pl.col("elasticity").quantile(0.1).alias("p10"),
                pl.col("elasticity").quantile(0.9).alias("p90"),
                pl.col("std_error").median().alias("median_se"),
                warned.mean().alias("share_flagged"),
            )
            .sort(group)
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary for schedulers (a new dict at each call)."""
        if "doc" not in self._made:
            self._made["doc"] = self._doc()
        return dict(self._made["doc"])

    def _doc(self) -> dict[str, Any]:
        t = self.results.elasticities
        flags = (
            t.select(pl.col("flags").str.split(","))
            .explode("flags")
            .filter(pl.col("flags").is_not_null() & (pl.col("flags") != ""))
            .group_by("flags")
            .len()
            .sort("flags")
        )
        valid = t.filter(pl.col("elasticity").is_not_nan())
        return {
            "run_id": self.run_id,
            "model": self.results.model,
            "groups": t.height,
            "estimated": valid.height,
            "median_elasticity": float(valid["elasticity"].median()) if valid.height else None,
            "flags": dict(flags.iter_rows()),
            "parameters": {
                k: v
                for k, v in self.results.parameters.items()
                if isinstance(v, str | int | float | bool | list | type(None))
            },
        }
