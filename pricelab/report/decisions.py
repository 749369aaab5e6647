"""Report sections on decisions: demand curves, the price plan and the scenarios.

Each takes :class:`ReportData` and returns (id, heading, HTML, shown), like
:mod:`pricelab.report.sections`.
"""

from __future__ import annotations

from typing import Any, cast

import polars as pl

from pricelab.optimize.plan import Plan, skipped_rows
from pricelab.report import plots
from pricelab.report.data import ReportData
from pricelab.report.explorer import plan_explorer
from pricelab.report.html import absent, cards, esc, image, table
from pricelab.report.sections import Section, _finite, _plausible


def _top_plan_rows(plan: pl.DataFrame, top: int) -> pl.DataFrame:
    need = ["current_price", "recommended_price", "baseline_quantity", "elasticity", "unit_cost"]
    rows = _finite(plan, need).filter(
        (pl.col("current_price") > 0) & (pl.col("baseline_quantity") > 0) & _plausible(plan)
    )
    return (
        rows.with_columns((pl.col("baseline_revenue") / pl.col("fx_rate")).alias("_rb"))
        .sort("_rb", descending=True)
        .head(top)
        .with_columns(
            pl.concat_str(
                [pl.col("item_id"), pl.col("market"), pl.col("category").fill_null("")],
                separator=" ",
            )
            .str.strip_chars()
            .alias("label")
        )
    )


def curves(d: ReportData, top: int = 6) -> Section:
    """Demand and profit curves with current and recommended price for the top plan rows."""
    head = "Demand and profit curves"
    if d.plan is None:
        return (
            "curves",
            head,
            absent(
                "No price plan: run <code>pricelab optimize</code>; the curves need each item's "
                "current price, baseline quantity, unit cost and elasticity."
            ),
            False,
        )
    if "elasticity" not in d.plan.columns:
        return (
            "curves",
            head,
            absent("The plan carries no elasticities and no estimate run is linked to it."),
            False,
        )
    rows = _top_plan_rows(d.plan, top)
    if rows.height == 0:
        return (
            "curves",
            head,
            absent("No plan row has finite prices, quantity, cost and elasticity."),
            False,
        )
    shown = rows.select(
        "item_id",
        "market",
        "current_price",
        "recommended_price",
        pl.col("price_change_pct").alias("change_%"),
        "elasticity",
        "unit_cost",
        "baseline_profit",
        "expected_profit",
    )
    html_ = image(
        plots.demand_profit_curves(rows, d.currency),
        "demand and profit curves",
        "Constant elasticity q = q0 (p / p0)^e over the plan horizon (band: 95% "
        "interval of e), profit (p − c) q; dashed: current price, red: recommended "
        "price. Top items by baseline revenue.",
    ) + table(shown, digits={"change_%": 1})
    return "curves", head, html_, True


def _stored_plan(table: pl.DataFrame, rec: dict[str, Any] | None) -> Plan:
    """A stored optimize run (``rec``, its plan ``table``) as a :class:`~pricelab.optimize.Plan`."""
    s = (rec or {}).get("summary") or {}

    def num(key: str) -> float:
        v = s.get(key)
        return float(v) if isinstance(v, int | float) else float("nan")

    return Plan(
        table=table,
        status=str(s.get("status", "stored")),
        formulation=str(s.get("formulation", "")),
        objective_name=str(s.get("objective_name", "")),
        objective=num("objective"),
        baseline_objective=num("baseline_objective"),
        gap=num("gap"),
        certificate=str(s.get("certificate", "")),
        skipped=skipped_rows(table, pl.DataFrame(s.get("skipped") or [])),
    )


def plan_by_market(stored: Plan) -> pl.DataFrame:
    """Per market: price moves and profit uplift of a plan (the report's plan table).

    Columns ``market, items, raised, lowered, median_change_%`` (from the plan's own
    ``price_change_pct``), ``fx`` and ``baseline_profit, expected_profit, uplift`` in the
    market's currency (:meth:`Plan.uplift_by`, base currency, times the market's
    ``fx_rate``) and ``uplift_%``: the uplift over ``|baseline profit|``, so a market that
    loses less than before shows a positive uplift.
    """
    eps = 1e-9
    moves = stored.table.group_by("market").agg(
        (pl.col("price_change_pct") > eps).sum().alias("raised"),
        (pl.col("price_change_pct") < -eps).sum().alias("lowered"),
        pl.col("price_change_pct").median().alias("median_change_%"),
        pl.col("fx_rate").first().alias("fx"),
    )
    money = ("baseline_profit", "expected_profit", "uplift")
    return (
        stored.uplift_by("market")
        .join(moves, on="market", how="left")
        .with_columns((pl.col("expected_profit") - pl.col("baseline_profit")).alias("uplift"))
        .with_columns(
            (pl.col("uplift") / pl.col("baseline_profit").abs() * 100).alias("uplift_%"),
            *[(pl.col(c) * pl.col("fx")).alias(c) for c in money],
        )
        .select(
            "market",
            pl.col("rows").alias("items"),
            "raised",
            "lowered",
            "median_change_%",
            "fx",
            *money,
            "uplift_%",
        )
        .sort("market")
    )


def plan(d: ReportData) -> Section:
    """Price changes and expected profit uplift by market (:func:`plan_by_market`)."""
    head = "Price plan"
    if d.plan is None:
        return "plan", head, absent("No optimize run: run <code>pricelab optimize</code>."), False
    stored = _stored_plan(d.plan, d.runs["optimize"])
    by = plan_by_market(stored)
    base_b = float((by["baseline_profit"] / by["fx"]).sum())
    base_e = float((by["expected_profit"] / by["fx"]).sum())
    shown = by.with_columns(
        pl.col("market")
        .replace_strict(d.currency, default="", return_dtype=pl.String)
        .alias("currency")
    ).select(
        "market",
        "currency",
        "items",
        "raised",
        "lowered",
        "median_change_%",
        "baseline_profit",
        "expected_profit",
        "uplift",
        "uplift_%",
    )
    p = stored.table
    median_change = float(cast(float, p["price_change_pct"].median()))  # numeric column
    total = [
        "total",
        d.base_currency,
        int(by["items"].sum()),
        int(by["raised"].sum()),
        int(by["lowered"].sum()),
        median_change,
        base_b,
        base_e,
        base_e - base_b,
        (base_e - base_b) / abs(base_b) * 100 if base_b else float("nan"),
    ]
    run = d.runs["optimize"]["run_id"] if d.runs["optimize"] else "?"
    parts = [
        cards(
            [
                ("expected profit uplift", f"{base_e - base_b:+,.0f} {d.base_currency}"),
                ("uplift vs baseline", f"{total[-1]:+.1f}%"),
                ("prices raised / lowered", f"{total[3]:,} / {total[4]:,}"),
            ]
        ),
        image(
            plots.plan_changes(
                p.select("market", pl.col("price_change_pct").alias("change_pct")),
                by.select("market", pl.col("uplift_%").alias("uplift_pct")),
            ),
            "price changes and profit uplift by market",
        ),
        table(
            shown,
            digits={
                "median_change_%": 1,
                "uplift_%": 1,
                "baseline_profit": 0,
                "expected_profit": 0,
                "uplift": 0,
            },
            total=total,
        ),
        f'<p class="note">Run <code>{esc(run)}</code>. Money over the plan horizon in each '
        f"market's currency; the total row is in {esc(d.base_currency)} (divided by each "
        "market's fx_rate).</p>",
    ]
    if "binding" in p.columns:
        binding = (
            p.select(pl.col("binding").fill_null("").str.split(","))
            .explode("binding")
            .filter(pl.col("binding").str.strip_chars() != "")
            .group_by("binding")
            .len()
            .sort("len", descending=True)
            .rename({"binding": "binding constraint", "len": "rows"})
        )
        if binding.height:
            parts.append("<h3>Binding constraints</h3>" + table(binding))
    parts.append(
        "<h3>Plan explorer</h3>"
        + plan_explorer(p, d.currency, stored.skipped if stored.skipped.height else None)
    )
    return "plan", head, "".join(parts), True


def _scenario_table(totals: pl.DataFrame, currency: str) -> str:
    """Scenario totals; one baseline row when every scenario shares the same baseline."""
    metrics = ("quantity", "revenue", "profit")
    names = {
        "quantity": "units",
        "revenue": f"revenue ({currency})",
        "profit": f"profit ({currency})",
    }
    digits = {names[m]: 0 for m in metrics} | {f"Δ {m} %": 1 for m in metrics}

    def constant(col: pl.Series) -> bool:
        hi, lo = cast(float, col.max()), cast(float, col.min())  # numeric, non-empty
        return float(hi - lo) <= 1e-9 * max(1.0, abs(float(hi)))

    same = all(constant(totals[f"baseline_{m}"]) for m in metrics)
    if not same:
        return table(totals, digits={c: (1 if c.endswith("pct") else 0) for c in totals.columns})
    cols: list[pl.Expr] = [pl.col("scenario")]
    for m in metrics:
        cols += [
            pl.col(f"scenario_{m}").alias(names[m]),
            pl.col(f"{m}_change_pct").alias(f"Δ {m} %"),
        ]
    shown = totals.select(cols)
    base = pl.DataFrame(
        [
            {
                "scenario": "baseline",
                **{names[m]: float(totals[f"baseline_{m}"][0]) for m in metrics},
                **{f"Δ {m} %": 0.0 for m in metrics},
            }
        ]
    ).select(shown.columns)
    return table(pl.concat([base, shown], how="vertical_relaxed"), digits=digits)


def scenarios(d: ReportData) -> Section:
    """Scenario totals against the baseline (base currency) and by market."""
    head = "Scenarios"
    if d.scenarios is None:
        return (
            "scenarios",
            head,
            absent("No simulate run: run <code>pricelab simulate --scenario FILE</code>."),
            False,
        )
    s = d.scenarios
    agg = []
    for m in ("quantity", "revenue", "profit"):
        scale = pl.lit(1.0) if m == "quantity" else pl.col("fx_rate")
        agg += [
            (pl.col(f"baseline_{m}") / scale).sum().alias(f"baseline_{m}"),
            (pl.col(f"scenario_{m}") / scale).sum().alias(f"scenario_{m}"),
        ]

    def changes(df: pl.DataFrame) -> pl.DataFrame:
        return df.with_columns(
            [
                ((pl.col(f"scenario_{m}") / pl.col(f"baseline_{m}") - 1) * 100).alias(
                    f"{m}_change_pct"
                )
                for m in ("quantity", "revenue", "profit")
            ]
        )

    totals = changes(s.group_by("scenario", maintain_order=True).agg(pl.len().alias("rows"), *agg))
    by_market = changes(s.group_by("scenario", "market").agg(*agg)).sort("scenario", "market")
    pct = {f"{m}_change_pct": 1 for m in ("quantity", "revenue", "profit")}
    run = d.runs["simulate"]["run_id"] if d.runs["simulate"] else "?"
    parts = [
        image(
            plots.scenario_bars(totals),
            "scenario comparison",
            "Change against the baseline over the horizon, all markets "
            f"(money in {d.base_currency}).",
        ),
        _scenario_table(totals, d.base_currency),
        "<h3>By market</h3>",
        table(by_market.select("scenario", "market", *pct), digits=pct, max_rows=100),
        f'<p class="note">Run <code>{esc(run)}</code>. Revenue and profit converted to '
        f"{esc(d.base_currency)} with each market's fx_rate.</p>",
    ]
    return "scenarios", head, "".join(parts), True


__all__ = ["curves", "plan", "plan_by_market", "scenarios"]
