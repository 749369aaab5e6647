"""The result of an optimisation: the plan table plus status and certificates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from pricelab.optimize.uncertain import COLUMNS
from pricelab.optimize.uncertain import describe as describe_too_wide

PLAN_COLUMNS = (
    "item_id",
    "market",
    "current_price",
    "recommended_price",
    "expected_quantity",
    "expected_revenue",
    "expected_profit",
    "baseline_quantity",
    "baseline_revenue",
    "baseline_profit",
    "binding",
)


@dataclass(frozen=True)
class Plan:
    """A price plan.

    Attributes
    ----------
    table : polars.DataFrame
        Contract plan columns (money in market currency, over the horizon) plus
        ``category``, ``fx_rate``, ``price_change_pct``, ``inelastic`` and, with draws,
        ``profit_p5`` / ``profit_p95``.
    status : str
        ``optimal`` or ``time_limit`` (feasible, gap reported).
    formulation : str
        Which exact formulation produced the plan.
    objective, baseline_objective : float
        Total objective (profit or revenue, base currency) of the plan and of current prices.
    gap : float
        Proven relative distance to the optimum: (bound - objective) / |objective|.
    certificate : str
        How the bound was obtained.
    skipped : polars.DataFrame
        Rows not optimised, with ``reason``.
    """

    table: pl.DataFrame
    status: str
    formulation: str
    objective_name: str
    objective: float
    baseline_objective: float
    gap: float
    certificate: str
    skipped: pl.DataFrame
    multipliers: dict[str, float] = field(default_factory=dict)
    intervals: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_polars(self) -> pl.DataFrame:
        """The plan table."""
        return self.table

    def uplift_by(self, key: str) -> pl.DataFrame:
        """Baseline vs expected revenue and profit by ``key`` in base currency, with % changes.

        A change is relative to the absolute baseline (as :attr:`uplift_pct`), so cutting a
        loss of 100 to a loss of 50 is +50%, not -50%.
        """
        t = self.table
        fx = pl.col("fx_rate") if "fx_rate" in t.columns else pl.lit(1.0)
        money = ["baseline_revenue", "expected_revenue", "baseline_profit", "expected_profit"]
        return (
            t.with_columns([(pl.col(c) / fx).alias(c) for c in money])
            .group_by(key)
            .agg(pl.len().alias("rows"), *[pl.col(c).sum() for c in money])
            .with_columns(
                (
                    100
                    * (pl.col("expected_revenue") - pl.col("baseline_revenue"))
                    / pl.col("baseline_revenue").abs()
                ).alias("revenue_%"),
                (
                    100
                    * (pl.col("expected_profit") - pl.col("baseline_profit"))
                    / pl.col("baseline_profit").abs()
                ).alias("profit_%"),
            )
            .sort(key)
        )

    @property
    def uplift_pct(self) -> float:
        """Objective change against current prices, in percent."""
        b = self.baseline_objective
        return 100.0 * (self.objective - b) / abs(b) if b else float("nan")

    def binding_counts(self) -> dict[str, int]:
        """How many rows each constraint holds."""
        counts: dict[str, int] = {}
        for b in self.table["binding"].to_list():
            for name in filter(None, b.split(",")):
                counts[name] = counts.get(name, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: -kv[1]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (for ``--json``)."""
        t = self.table
        return {
            "status": self.status,
            "formulation": self.formulation,
            "objective_name": self.objective_name,
            "objective": self.objective,
            "baseline_objective": self.baseline_objective,
            "uplift_pct": self.uplift_pct,
            "gap": self.gap,
            "certificate": self.certificate,
            "rows": t.height,
            "skipped": skipped_rows(t, self.skipped).to_dicts(),
            "inelastic_rows": int(t["inelastic"].sum()),
            "too_wide_rows": [
                {k: r[k] for k in ("item_id", "market", "uplift_low_pct", "uplift_high_pct")}
                for r in (
                    t.filter(pl.col("too_wide")).to_dicts() if "too_wide" in t.columns else []
                )
            ],
            "binding_counts": self.binding_counts(),
            "multipliers": self.multipliers,
            "intervals": self.intervals,
            **self.extra,
        }

    @property
    def summary(self) -> str:
        """Readable text summary."""
        t = self.table
        lines = [
            f"Price plan: {t.height} item-markets, {self.formulation}, status {self.status}",
            f"{self.objective_name}: {self.objective:,.2f} vs baseline "
            f"{self.baseline_objective:,.2f} ({self.uplift_pct:+.2f}%), base currency",
            f"gap {self.gap:.2e} ({self.certificate})",
        ]
        if self.intervals:
            iv = self.intervals
            lines.append(
                f"profit P5-P95: plan {iv['plan_p5']:,.2f} to {iv['plan_p95']:,.2f}; "
                f"baseline {iv['baseline_p5']:,.2f} to {iv['baseline_p95']:,.2f} "
                f"({iv['draws']:.0f} elasticity draws)"
            )
        single = self.extra.get("single_item_objective")
        if single is not None:
            lines.append(
                f"cross-price demand: pricing each item on its own elasticity would earn "
                f"{single:,.2f} ({100 * single / self.objective:.1f}% of this joint plan): "
                "it misses the units its cuts take from siblings (cannibalised_quantity)"
                if self.objective
                else f"single-item plan under cross-price demand: {single:,.2f}"
            )
        bc = self.binding_counts()
        if bc:
            lines.append("binding: " + ", ".join(f"{k} {v}" for k, v in bc.items()))
        n_in = int(t["inelastic"].sum())
        if n_in:
            held: dict[str, int] = {}
            for b in t.filter(pl.col("inelastic"))["binding"].to_list():
                for name in filter(None, b.split(",")):
                    held[name] = held.get(name, 0) + 1
            lines.append(
                f"{n_in} inelastic row(s) (-1 <= e < 0) held by: "
                + (", ".join(f"{k} {v}" for k, v in held.items()) or "nothing")
                + " (profit rises with price up to a constraint); check these estimates"
            )
        if "too_wide" in t.columns and t["too_wide"].any():
            lines.append(describe_too_wide(t.filter(pl.col("too_wide")).to_dicts()))
        for key, what in (
            ("conflicts", "in conflict kept at current price"),
            ("unrounded", "not on their currency's minor unit"),
        ):
            rows = self.extra.get(key) or []
            if rows:
                lines.append(_named_rows(rows, what))
        if self.skipped.height:
            reasons = self.skipped.group_by("reason").len().sort("len", descending=True)
            lines.append(
                f"skipped {self.skipped.height} row(s): "
                + "; ".join(f"{r} ({n})" for r, n in reasons.iter_rows())
            )
        if t.height:
            by_m = (
                t.with_columns(
                    (pl.col("expected_profit") / pl.col("fx_rate")).alias("p"),
                    (pl.col("baseline_profit") / pl.col("fx_rate")).alias("b"),
                )
                .group_by("market")
                .agg(pl.col("p").sum(), pl.col("b").sum())
                .sort("market")
            )
            lines.append(
                "profit uplift by market: "
                + ", ".join(
                    f"{m} {100 * (p - b) / abs(b):+.1f}%" if b else f"{m} n/a"
                    for m, p, b in by_m.iter_rows()
                )
            )
            top = t.sort(pl.col("price_change_pct").abs(), descending=True).head(5)
            lines.append(
                "largest changes: "
                + ", ".join(
                    f"{r['item_id']}/{r['market']} {r['price_change_pct']:+.1f}%"
                    for r in top.iter_rows(named=True)
                )
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary


#: ``status`` of a row the optimizer could not price (``optimized`` / ``conflict``: conflicts.py)
SKIPPED = "skipped"


def _named_rows(rows: list[dict[str, Any]], what: str) -> str:
    """A summary line naming up to three rows (``item_id/market: reason``) of ``rows``."""
    named = "; ".join(f"{c['item_id']}/{c['market']}: {c['reason']}" for c in rows[:3])
    return f"{len(rows)} row(s) {what}: " + named + ("; ..." if len(rows) > 3 else "")


def with_skipped_rows(
    table: pl.DataFrame, demand: pl.DataFrame, skipped: pl.DataFrame, horizon: float
) -> pl.DataFrame:
    """The plan with every skipped row kept at its current price: ``status = skipped`` and
    the ``reason`` in plain words; expected = baseline (profit unknown without a cost)."""
    if skipped.height == 0:
        return table
    keys = ["item_id", "market"]
    num = ["base_price", "base_quantity", "unit_cost", "fx_rate", "elasticity"]
    d = demand.select(
        *[pl.col(k).cast(pl.String) for k in keys],
        *[
            (pl.col(c) if c in demand.columns else pl.lit(1.0 if c == "fx_rate" else None))
            .cast(pl.Float64, strict=False)
            .alias(c)
            for c in num
        ],
        (pl.col("category") if "category" in demand.columns else pl.lit(None))
        .cast(pl.String)
        .alias("category"),
    ).unique(keys, keep="first")
    s = skipped.with_columns(pl.col(k).cast(pl.String) for k in keys).join(d, on=keys, how="left")
    p0, q0 = pl.col("base_price"), horizon * pl.col("base_quantity")
    rows = s.select(
        *keys,
        "category",
        pl.col("fx_rate").fill_null(1.0),
        p0.alias("current_price"),
        p0.alias("recommended_price"),
        pl.lit(0.0).alias("price_change_pct"),
        q0.alias("expected_quantity"),
        (p0 * q0).alias("expected_revenue"),
        ((p0 - pl.col("unit_cost")) * q0).alias("expected_profit"),
        q0.alias("baseline_quantity"),
        (p0 * q0).alias("baseline_revenue"),
        ((p0 - pl.col("unit_cost")) * q0).alias("baseline_profit"),
        pl.lit("").alias("binding"),
        pl.lit(False).alias("inelastic"),
        "elasticity",
        pl.lit(False).alias("extrapolated"),
        *[pl.lit(v).alias(k) for k, v in COLUMNS.items()],
        pl.lit(SKIPPED).alias("status"),
        pl.col("reason").cast(pl.String),
    )
    # columns a route adds (the cross route's cannibalised_quantity) are empty on these rows
    rows = rows.with_columns(pl.lit(None).alias(c) for c in table.columns if c not in rows.columns)
    return pl.concat([table, rows.select(table.columns)], how="vertical_relaxed")


def skipped_rows(table: pl.DataFrame, fallback: pl.DataFrame) -> pl.DataFrame:
    """``item_id, market, reason`` of the plan's rows with ``status = skipped`` (the one
    place skipped rows are stored); a plan stored before the ``status`` column existed gives
    ``fallback`` (its run summary's ``skipped`` list)."""
    if "status" not in table.columns:
        return fallback
    return table.filter(pl.col("status") == SKIPPED).select(
        pl.col("item_id").cast(pl.String),
        pl.col("market").cast(pl.String),
        pl.col("reason").cast(pl.String),
    )


def nothing_to_optimise(skipped: pl.DataFrame) -> str:
    """The message when every row is skipped: what is missing, in plain words."""
    n = skipped.height
    reasons = skipped["reason"].to_list() if n else []
    no_cost = sum("unit_cost missing" in r for r in reasons)
    if n and no_cost == n:
        return (
            f"no unit costs: all {n} rows lack unit_cost, so profit cannot be optimised; load "
            "costs (pricelab ingest --costs F, or a unit_cost column in sales) or set "
            "'objective: revenue' in the constraints file, which needs no costs"
        )
    counts: dict[str, int] = {}
    for r in reasons:
        counts[r] = counts.get(r, 0) + 1
    top = "; ".join(f"{k} ({v})" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])[:3])
    return f"demand table: no row can be optimised ({n} skipped: {top})"
