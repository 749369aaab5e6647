"""``estimate --model cross``: own- and cross-price elasticities stored as an estimate run.

The run holds three result tables: ``elasticities`` (the own-price rows, the shape every
other model stores, so optimize/simulate/monitor read it as usual), ``elasticity_params``
and ``cross_elasticities`` (one row per item × other item). ``optimize`` and ``simulate``
use the cross terms whenever the estimate run they use has that table.
"""

from __future__ import annotations

import os
from typing import Any

import polars as pl

from pricelab.api.results import EstimateRun
from pricelab.demand.from_store import CROSS_TABLE, cross_table
from pricelab.store import Store

PathLike = str | os.PathLike[str]
__all__ = ["CROSS_TABLE", "CrossEstimateRun", "cross_table", "estimate_cross_run"]


class CrossEstimateRun(EstimateRun):
    """An estimate run of model ``cross``: :attr:`cross` is the matrix in long form."""

    @property
    def cross(self) -> pl.DataFrame:
        """``item_id, market, other_item_id, elasticity, std_error, ci_low, ci_high, n_obs,
        method, category, n_dropped``."""
        return self.results.cross

    def to_dict(self) -> dict[str, Any]:
        """The estimate summary plus the cross-price pairs and dropped weeks."""
        d = super().to_dict()
        c = self.results.cross
        off = c.filter(pl.col("other_item_id") != pl.col("item_id"))
        valid = off.filter(pl.col("elasticity").is_not_nan())
        d["cross"] = {
            "mode": self.results.parameters.get("cross"),
            "pairs": off.height,
            "estimated_pairs": valid.height,
            "median_cross_elasticity": float(valid["elasticity"].median())
            if valid.height
            else None,
            "substitutes_significant": int((valid["ci_low"] > 0).sum()),
            "complements_significant": int((valid["ci_high"] < 0).sum()),
            "weeks_dropped_missing_sibling_price": self.results.parameters.get("n_dropped", 0),
        }
        return d


def estimate_cross_run(
    db: PathLike | None,
    *,
    cross: str = "full",
    by: str | None = None,
    before: str | None = None,
    controls: str | None = "default",
) -> CrossEstimateRun:
    """Estimate the cross-price matrix from the database and store it as an estimate run."""
    import json

    from pricelab.elasticity.cross import estimate_cross
    from pricelab.store.loaders import load_items, load_sales
    from pricelab.store.runs import record_run

    with Store.open(db, must_exist=True) as store:
        sales = load_sales(store, before=before)
        items = load_items(store)
        res = estimate_cross(sales, items=items, cross=cross, by=by, controls=controls)
        params = {
            "model": "cross",
            "cross": cross,
            "by": by,
            "before": before,
            "controls": controls,
            "fit": json.loads(json.dumps(res.parameters, default=str)),
        }
        run = record_run(store, "estimate", params)
        table = res.elasticities
        if items is not None and "category" in items.columns:
            table = table.join(
                items.select("item_id", "category"), on="item_id", how="left", maintain_order="left"
            )
        with store.transaction():
            store.write_result("elasticities", table, run.run_id)
            store.write_result("elasticity_params", res.params, run.run_id)
            store.write_result(CROSS_TABLE, res.cross, run.run_id)
            out = CrossEstimateRun(run.run_id, res, table)
            run.finish(out.to_dict())
        return out
