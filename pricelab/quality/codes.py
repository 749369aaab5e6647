"""Checks on codes and rates across tables: case-only mismatches and implausible fx rates."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pricelab.quality.checks import Issue, QualityReport

if TYPE_CHECKING:
    from pricelab.store.db import Store

#: a market whose prices in base currency sit this far (ratio) from the same items elsewhere
FX_RATIO_LIMIT = 1.3

_REFERENCES = (
    # (table, column, referenced set as SQL)
    ("costs", "item_id", "SELECT item_id FROM sales UNION SELECT item_id FROM items"),
    ("inventory", "item_id", "SELECT item_id FROM sales UNION SELECT item_id FROM items"),
    ("costs", "market", "SELECT market FROM sales UNION SELECT market FROM markets"),
    ("inventory", "market", "SELECT market FROM sales UNION SELECT market FROM markets"),
    ("markets", "market", "SELECT market FROM sales"),
)


def case_hints(store: Store, report: QualityReport) -> None:
    """Codes that match another table's codes only when case is ignored (``gb`` vs ``GB``).

    Codes are case-sensitive; the hint is attached to the error the reference rule gives.
    """
    for table, col, ref in _REFERENCES:
        if store.count(table) == 0:
            continue
        if table == "markets":  # sales markets missing from markets, differing by case
            sql = (
                "SELECT DISTINCT s.market, m.market FROM sales s JOIN markets m "
                "ON lower(s.market) = lower(m.market) AND s.market <> m.market "
                "WHERE s.market NOT IN (SELECT market FROM markets) ORDER BY 1, 2 LIMIT 3"
            )
        else:
            sql = (
                f"WITH r AS ({ref}) SELECT DISTINCT t.{col}, r.{col} FROM {table} t "
                f"JOIN r ON lower(t.{col}) = lower(r.{col}) AND t.{col} <> r.{col} "
                f"WHERE t.{col} NOT IN (SELECT {col} FROM r) ORDER BY 1, 2 LIMIT 3"
            )
        rows = store.execute(sql)
        if rows:
            pairs = ", ".join(f"{a!r} vs {b!r}" for a, b in rows)
            report.issues.append(
                Issue(
                    "error",
                    table,
                    col,
                    f"differs only in upper/lower case from the codes used elsewhere ({pairs}): "
                    "codes are case-sensitive, write them the same way in every file",
                )
            )
    rows = store.execute(
        "SELECT lower(market), string_agg(market, ', ' ORDER BY market) FROM "
        "(SELECT DISTINCT market FROM sales) GROUP BY 1 HAVING count(*) > 1 ORDER BY 1 LIMIT 3"
    )
    if rows:
        report.issues.append(
            Issue(
                "warning",
                "sales",
                "market",
                "market codes that differ only in case are different markets: "
                + "; ".join(str(r[1]) for r in rows),
            )
        )


def fx_sanity(store: Store, report: QualityReport) -> None:
    """Warn when a market's ``fx_rate`` looks inverted against its sales history.

    The same item sold in several markets has similar prices in base currency. For each
    market the median ratio (over its items) of its base-currency price to the item's
    median in the other markets is computed with the given ``fx_rate`` and with its
    reciprocal; a ratio beyond :data:`FX_RATIO_LIMIT` that the reciprocal fixes is a
    swapped rate (``fx_rate`` is market currency per 1 base unit).
    """
    if store.count("markets") < 2 or store.count("sales") == 0:
        return
    rows = store.execute(
        "WITH p AS (SELECT s.item_id, s.market, ln(median(s.price)) AS lp, any_value(m.fx_rate) "
        "  AS fx FROM sales s JOIN markets m USING (market) WHERE s.price > 0 "
        "  AND m.fx_rate > 0 AND m.fx_rate <> 1 GROUP BY 1, 2), "
        "b AS (SELECT s.item_id, s.market, ln(median(s.price / coalesce(m.fx_rate, 1))) AS lb "
        "  FROM sales s LEFT JOIN markets m USING (market) WHERE s.price > 0 GROUP BY 1, 2), "
        "x AS (SELECT p.market, p.fx, p.lp - ln(p.fx) AS lb, median(b.lb) AS ref FROM p "
        "  JOIN b ON b.item_id = p.item_id AND b.market <> p.market "
        "  GROUP BY p.item_id, p.market, p.fx, p.lp) "
        "SELECT market, any_value(fx), median(lb - ref), count(*) FROM x GROUP BY 1 ORDER BY 1"
    )
    limit = math.log(FX_RATIO_LIMIT)
    for market, fx, off, n in rows:
        swapped = off + 2 * math.log(fx)  # dividing by 1/fx instead of fx
        if abs(off) > limit and abs(swapped) < abs(off) / 2:
            report.issues.append(
                Issue(
                    "warning",
                    "markets",
                    "fx_rate",
                    f"fx_rate {fx:g} for {market} looks inverted: with it, {market}'s prices "
                    f"in base currency are {math.exp(off):.2f}x the same items' prices in "
                    f"other markets ({n} items); with 1/{fx:g} = {1 / fx:.4g} they would be "
                    f"{math.exp(swapped):.2f}x. fx_rate is units of market currency per 1 "
                    "unit of base currency",
                )
            )
