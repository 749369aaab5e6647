"""Cross-price effects in a what-if: siblings' price changes move an item's units.

With a cross estimate run (``estimate --model cross``) every projected row is scaled by
``exp(sum_{j != i} e_ij log(p1_j / p0_j))`` over the other items of its category in its
market (:class:`~pricelab.demand.curves.CrossElasticity`), so a scenario that cuts one
item's price shows its siblings losing units even though their own prices did not move.
``cannibalised_quantity`` (over the horizon) is that part of a row's change: negative when
siblings' cuts took units away, positive when their increases sent buyers over; zero
without a cross run. The 90% intervals keep covering the own-price elasticity only.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pricelab.demand.curves import CrossElasticity

#: projected columns that are linear in the row's units (scaled by the cross factor)
SCALED = (
    "scenario_quantity",
    "quantity_low",
    "quantity_high",
    "scenario_revenue",
    "revenue_low",
    "revenue_high",
    "scenario_profit",
    "profit_low",
    "profit_high",
)


def with_cross(proj: pl.DataFrame, cross: pl.DataFrame | None) -> pl.DataFrame:
    """``proj`` with the siblings' effect applied and ``cannibalised_quantity`` added."""
    if cross is None:
        return proj.with_columns(pl.lit(0.0).alias("cannibalised_quantity"))
    keys = proj.select(
        "item_id",
        "market",
        pl.lit(0.0).alias("elasticity"),  # the own effect is already in the projection
        pl.col("baseline_price").alias("base_price"),
        pl.lit(1.0).alias("base_quantity"),
    )
    curve = CrossElasticity.from_tables(keys, cross)
    price = proj["scenario_price"].to_numpy().astype(float)
    factor = curve.siblings_factor(price)
    ok = np.isfinite(factor)  # a row whose factor cannot be formed keeps its units
    own = proj["scenario_quantity"].to_numpy().astype(float)  # null: NaN, back to null below
    moved = np.where(ok, curve.cannibalised(price, own), own * 0.0)
    f = pl.Series("_f", np.where(ok, factor, 1.0))
    return proj.with_columns(
        pl.Series("cannibalised_quantity", moved).fill_nan(None),
        *[(pl.col(c) * f).alias(c) for c in SCALED],
    )
