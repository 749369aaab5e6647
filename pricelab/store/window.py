"""The baseline window's spec, shared by the DuckDB baseline and the Spark engine.

The window is the last ``weeks`` weeks of the sales history (it ends at the newest sales
date); it is aggregated per item × market in one of :data:`MODES` into
:data:`AGG_COLUMNS`. :mod:`pricelab.demand.baseline` runs it in DuckDB,
:mod:`pricelab.engines.history` on Spark; both take the spec from here, so the engines
do not import the demand layer.
"""

from __future__ import annotations

#: the window as a SQL predicate on ``sales`` (one bound parameter: weeks)
WINDOW_PREDICATE = (
    "date > CAST((SELECT max(date) FROM sales) - to_days(CAST(? AS INTEGER) * 7) AS DATE)"
)
#: ``average``: mean weekly units and price; ``current``: today's price, units moved to it
MODES = ("average", "current")
#: columns of an aggregated window
AGG_COLUMNS = ["item_id", "market", "baseline_units", "baseline_price", "sales_cost", "n_weeks"]
