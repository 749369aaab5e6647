"""Report sections: each takes :class:`ReportData` and returns (id, heading, HTML, shown).

``shown`` is False when the section's data is absent (the HTML then says so).
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from pricelab.elasticity.results import ABSURD_ELASTICITY, DISPLAY_FLAGS, has_any_flag
from pricelab.report import plots
from pricelab.report.data import ReportData
from pricelab.report.html import absent, cards, esc, image, table

Section = tuple[str, str, str, bool]


def _params(rec: dict[str, Any]) -> str:
    p = {
        k: v
        for k, v in (rec.get("parameters") or {}).items()
        if v is not None and not isinstance(v, dict)
    }
    return ", ".join(f"{k}={json.dumps(v) if isinstance(v, list) else v}" for k, v in p.items())


def overview(d: ReportData) -> Section:
    """Headline numbers and the runs the report is built from."""
    parts = []
    s = d.sales_summary
    if s:
        parts.append(
            cards(
                [
                    ("sales rows", f"{s['rows']:,}"),
                    ("items", f"{s['items']:,}"),
                    ("markets", f"{s['markets']:,}"),
                    ("weeks", f"{s['first_week']} to {s['last_week']}"),
                    ("units sold", f"{s['units']:,}"),
                ]
            )
        )
    rows = []
    for command, rec in d.runs.items():
        if rec:
            rows.append(
                {
                    "section": command,
                    "run_id": rec["run_id"],
                    "started": str(rec["started_at"])[:19],
                    "version": rec.get("version"),
                    "parameters": _params(rec),
                }
            )
        else:
            rows.append(
                {
                    "section": command,
                    "run_id": "none",
                    "started": "",
                    "version": "",
                    "parameters": "",
                }
            )
    parts.append("<h3>Runs shown</h3>" + table(pl.DataFrame(rows)))
    if d.anchor:
        parts.append(
            f'<p class="note">Built around run <code>{esc(d.anchor)}</code>: its '
            "parents and the runs derived from it.</p>"
        )
    else:
        parts.append('<p class="note">Latest successful run of each command.</p>')
    return "overview", "Overview", "".join(parts), True


def quality(d: ReportData) -> Section:
    """Data-quality findings on the loaded tables and the weekly volume per market."""
    if d.quality is None:
        return (
            "quality",
            "Data quality",
            absent("No sales loaded: run <code>pricelab ingest --sales FILE</code>."),
            False,
        )
    q = d.quality
    status = "error" if q.errors else "warning" if q.warnings else "ok"
    text = {
        "error": f"{len(q.errors)} error(s), {len(q.warnings)} warning(s)",
        "warning": f"no errors, {len(q.warnings)} warning(s)",
        "ok": "no problems found",
    }[status]
    parts = [f'<p><span class="badge {status}">{status}</span> {esc(text)}</p>']
    if q.issues:
        df = pl.DataFrame(
            [
                {
                    "level": i.level,
                    "table": i.source,
                    "column": i.column or "",
                    "rule": i.rule,
                    "count": i.count,
                    "examples": "; ".join(i.examples),
                }
                for i in q.issues
            ]
        )
        parts.append(table(df))
    if d.weekly is not None and d.weekly.height:
        parts.append(
            image(
                plots.weekly_units(d.weekly),
                "units per week by market",
                "Units sold per week by market (all items).",
            )
        )
    return "quality", "Data quality", "".join(parts), True


def _plausible(df: pl.DataFrame) -> pl.Expr:
    cols = [c for c in ("elasticity", "ci_low", "ci_high") if c in df.columns]
    return pl.all_horizontal(
        [
            pl.col(c).is_null() | pl.col(c).is_nan() | (pl.col(c).abs() <= ABSURD_ELASTICITY)
            for c in cols
        ]
    )


def _absurd_note(est: pl.DataFrame) -> str:
    """A warning naming the estimates not drawn: infinite or beyond ±ABSURD_ELASTICITY."""
    finite_e = pl.col("elasticity").is_not_nan() & pl.col("elasticity").is_not_null()
    bad = est.filter(finite_e & ~_plausible(est))
    if bad.height == 0:
        return ""
    keys = [c for c in ("item_id", "market", "category") if c in bad.columns]
    ex = ", ".join(
        " ".join(str(r[k]) for k in keys) + f" ({r['elasticity']:.3g})"
        for r in bad.head(5).iter_rows(named=True)
    )
    more = f" and {bad.height - 5} more" if bad.height > 5 else ""
    return (
        f'<p class="note warn">{bad.height:,} absurd estimate(s) (an elasticity or interval '
        f"bound infinite or beyond ±{ABSURD_ELASTICITY:g}; e.g. a weak instrument) are not "
        f"drawn: {esc(ex)}{more}.</p>"
    )


def _finite(df: pl.DataFrame, cols: list[str]) -> pl.DataFrame:
    return df.filter(
        pl.all_horizontal([pl.col(c).is_not_null() & pl.col(c).is_finite() for c in cols])
    )


def elasticities(d: ReportData, top: int = 20) -> Section:
    """Distribution by category and market, and the top items' intervals.

    ``flagged_%`` counts :data:`~pricelab.elasticity.results.DISPLAY_FLAGS`, as
    ``pricelab estimate`` does.
    """
    head = "Elasticities"
    if d.elasticities is None:
        return (
            "elasticities",
            head,
            absent("No estimate run: run <code>pricelab estimate</code> to see elasticities."),
            False,
        )
    est = d.elasticities
    for col in ("category", "market"):
        if col not in est.columns or est[col].null_count() == est.height:
            est = est.with_columns(pl.lit("all").alias(col))
    est = est.with_columns(
        pl.col("category").fill_null("(no category)"), pl.col("market").fill_null("all")
    )
    note = _absurd_note(est)
    valid = _finite(est, ["elasticity"]).filter(_plausible(est))
    if valid.height == 0:
        return (
            "elasticities",
            head,
            note + absent("The estimate run has no finite elasticities."),
            False,
        )
    flags = has_any_flag(DISPLAY_FLAGS) if "flags" in est.columns else pl.lit(False)
    width = (pl.col("ci_high") - pl.col("ci_low")) if "ci_low" in est.columns else pl.lit(None)
    summary = (
        valid.with_columns(flags.alias("_flag"), width.alias("_w"))
        .group_by("category", "market")
        .agg(
            pl.len().alias("groups"),
            pl.col("elasticity").median().alias("median"),
            pl.col("elasticity").quantile(0.25, "linear").alias("p25"),
            pl.col("elasticity").quantile(0.75, "linear").alias("p75"),
            pl.col("_w").median().alias("median_ci_width"),
            (pl.col("_flag").mean() * 100).alias("flagged_%"),
        )
        .sort("category", "market")
    )
    method = est["method"][0] if "method" in est.columns else "?"
    run = d.runs["estimate"]["run_id"] if d.runs["estimate"] else "?"
    parts = [
        f'<p class="note">Run <code>{esc(run)}</code>, method {esc(method)}; '
        f"{valid.height:,} of {est.height:,} groups with a finite estimate. Flagged: "
        f"{esc(', '.join(DISPLAY_FLAGS))}.</p>",
        note,
        image(
            plots.elasticity_distribution(valid),
            "elasticity distribution",
            "One point per item × market; black bar: interquartile range; white diamond: median.",
        ),
        table(summary, digits={"groups": 0, "flagged_%": 1}),
    ]
    if "ci_low" in est.columns:
        ranked = _finite(valid, ["ci_low", "ci_high"])
        if d.revenue is not None and "item_id" in ranked.columns and ranked.height:
            keys = [
                k
                for k in ("item_id", "market")
                if k in d.revenue.columns and ranked[k].dtype == d.revenue[k].dtype
            ]
            ranked = ranked.join(d.revenue, on=keys, how="left").sort(
                "revenue_base", descending=True, nulls_last=True
            )
        elif "n_obs" in ranked.columns:
            ranked = ranked.sort("n_obs", descending=True)
        rows = ranked.head(top)
        if rows.height:
            label = (
                pl.concat_str(
                    [
                        pl.col(c).cast(pl.String).fill_null("")
                        for c in ("item_id", "market", "category")
                        if c in rows.columns
                    ],
                    separator=" ",
                )
                if "item_id" in rows.columns
                else pl.col("category")
            )
            rows = rows.with_columns(label.alias("label"))
            parts.append(f"<h3>Top {rows.height} items by revenue (last 13 weeks)</h3>")
            parts.append(
                image(
                    plots.elasticity_intervals(rows),
                    "elasticity intervals",
                    "Estimate (dot) and 95% interval (line) per item × market.",
                )
            )
    from .cross import cross_part

    parts.append(cross_part(d.cross))
    return "elasticities", head, "".join(parts), True


__all__ = ["Section", "elasticities", "overview", "quality"]
