"""Randomised, stratified assignment of units to price cells, balance and power."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl

from pricelab.configfile import MAX_WEEKS
from pricelab.errors import DataError, UsageError
from pricelab.experiment import power as pw
from pricelab.experiment._panel import KEYS, clean_sales, dense_panel, require_columns
from pricelab.experiment.balance import balance_table
from pricelab.experiment.results import ExperimentDesign

UNITS = ("item-market", "item")


def cell_label(pct: float) -> str:
    """Name of a cell: ``control`` for 0, else the signed percent (``+10%``, ``-2.5%``)."""
    return "control" if pct == 0 else f"{pct:+g}%"


def check_cells(cells) -> list[float]:
    """Validate price cells (percent changes): numbers, unique, > -100, with a 0 control."""
    try:
        out = [float(c) for c in cells]
    except (TypeError, ValueError) as exc:
        raise UsageError(f"cells must be numbers (percent price changes), got {cells!r}") from exc
    if 0.0 not in out:
        raise UsageError(f"cells {out} have no control: add a 0 cell (no price change)")
    if len(out) < 2:
        raise UsageError("cells need at least one treated cell besides the 0 control")
    if len(set(out)) != len(out):
        raise UsageError(f"cells {out} repeat a value")
    bad = [c for c in out if not math.isfinite(c) or c <= -100]
    if bad:
        raise UsageError(f"cells {bad}: a price change must be above -100%")
    return out


def _check_args(name, unit, weeks, seed, alpha, power, mde) -> None:
    if not isinstance(name, str) or not name.strip():
        raise UsageError("experiment name must be a non-empty string")
    if unit not in UNITS:
        raise UsageError(f"unit must be one of {', '.join(UNITS)}, got {unit!r}")
    if isinstance(weeks, bool) or not isinstance(weeks, int) or not 1 <= weeks <= MAX_WEEKS:
        raise UsageError(f"weeks must be a whole number from 1 to {MAX_WEEKS}, got {weeks!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise UsageError(f"seed must be a whole number from 0 to 2**63 - 1, got {seed!r}")
    if not 0 < alpha < 1:
        raise UsageError(f"alpha must be between 0 and 1, got {alpha}")
    if not 0 < power < 1:
        raise UsageError(f"power must be between 0 and 1, got {power}")
    if mde is not None and not 0 < mde < 100:
        raise UsageError(f"mde is a percent change in units between 0 and 100, got {mde}")


def unit_ids(frame: pl.DataFrame, unit: str) -> pl.Expr:
    """Expression for the randomisation-unit id of each item x market row."""
    if unit == "item":
        return pl.col("item_id").cast(pl.String).alias("unit_id")
    return pl.concat_str(
        [pl.col("item_id").cast(pl.String), pl.col("market").cast(pl.String)], separator="|"
    ).alias("unit_id")


def _strata(units: pl.DataFrame, stratify: list[str], unit: str) -> pl.DataFrame:
    """One row per randomisation unit with its stratum label."""
    if not stratify:
        return units.select("unit_id").unique().with_columns(pl.lit("all").alias("stratum"))
    labels = [
        pl.concat_str([pl.lit(f"{c}="), pl.col(c).cast(pl.String).fill_null("(missing)")])
        for c in stratify
    ]
    per_row = units.select("unit_id", pl.concat_str(labels, separator="|").alias("stratum"))
    if unit == "item":
        for c in stratify:
            varies = units.group_by("unit_id").agg(pl.col(c).n_unique().alias("k"))
            if (varies["k"] > 1).any():
                raise UsageError(
                    f"stratify column '{c}' varies across the markets of an item; with "
                    "unit=item stratify by item attributes only (or use unit=item-market)"
                )
    return per_row.unique(subset="unit_id", keep="first")


def randomise(strata: pl.DataFrame, cells: list[float], seed: int) -> pl.DataFrame:
    """Blocked randomisation: within each stratum cell counts differ by at most one.

    Units are sorted (stratum, unit_id) first, so the result depends only on the
    seed and the set of units, not on row order. Each stratum's remainder goes to
    the cells with the fewest units so far (ties broken at random), which keeps
    the overall counts within one as well.
    """
    s = strata.sort(["stratum", "unit_id"])
    rng = np.random.default_rng(seed)
    k = len(cells)
    totals = np.zeros(k, dtype=np.int64)
    codes = np.empty(s.height, dtype=np.int64)
    bounds = (
        s.with_row_index("_r")
        .group_by("stratum", maintain_order=True)
        .agg(pl.col("_r").min().alias("lo"), pl.len().alias("n"))
    )
    for lo, n in zip(bounds["lo"].to_list(), bounds["n"].to_list(), strict=True):
        q, rem = divmod(n, k)
        order = np.lexsort((rng.random(k), totals))
        labels = np.concatenate([np.repeat(np.arange(k), q), order[:rem]])
        codes[lo : lo + n] = rng.permutation(labels)
        totals += np.bincount(labels, minlength=k)
    pct = np.asarray(cells)[codes]
    return s.with_columns(
        pl.Series("price_change_pct", pct),
        pl.Series("cell", [cell_label(p) for p in pct], dtype=pl.String),
    )


def power_table(
    assignment: pl.DataFrame,
    history: pl.DataFrame,
    *,
    weeks: int,
    alpha: float,
    power: float,
    mde: float | None,
) -> tuple[pl.DataFrame, dict]:
    """Analytic MDE (units %), minimum detectable elasticity and weeks needed per treated cell."""
    per_unit = assignment.group_by("unit_id").agg(pl.col("price_change_pct").first())
    hist = history.join(assignment.select(*KEYS, "unit_id"), on=KEYS, how="inner")
    agg = hist.group_by("unit_id", "date").agg(
        pl.col("quantity").sum(), pl.col("revenue").sum(), pl.col("profit").sum()
    )
    agg = agg.with_columns(pl.col("unit_id").alias("item_id"), pl.lit("").alias("market"))
    ids = per_unit.select(pl.col("unit_id").alias("item_id"), pl.lit("").alias("market"))
    comp = pw.variance_components(dense_panel(agg, ids).quantity)
    k = pw._k(alpha, power)
    counts = per_unit.group_by("price_change_pct").len()
    n = dict(zip(counts["price_change_pct"].to_list(), counts["len"].to_list(), strict=True))
    rows = []
    for pct in sorted(p for p in n if p != 0):
        nt, nc = n[pct], n.get(0.0, 0)
        se0 = float(pw.effect_se(comp, weeks, nt, nc))
        se_raw = float(pw.effect_se(comp, weeks, nt, nc, cuped=False))
        dec, inc = pw.mde_pair(comp, weeks, nt, nc, alpha=alpha, power=power)
        x = np.r_[np.zeros(nc), np.full(nt, math.log1p(pct / 100))]
        e_se = float(pw.elasticity_se(comp, weeks, x))
        row = {
            "cell": cell_label(pct),
            "price_change_pct": pct,
            "n_treated": nt,
            "n_control": nc,
            "weeks": weeks,
            "se_pct": 100 * se0,
            "se_pct_no_cuped": 100 * se_raw,
            "mde_pct": 100 * float(max(dec, inc)),
            "mde_decrease_pct": 100 * float(dec),
            "mde_increase_pct": 100 * float(inc),
            "elasticity_se": e_se,
            "mde_elasticity": k * e_se,
        }
        if mde is not None:
            f = mde / 100
            row["power_at_mde"] = float(
                min(
                    pw.power_at(comp, -f, weeks, nt, nc, alpha=alpha),
                    pw.power_at(comp, f, weeks, nt, nc, alpha=alpha),
                )
            )
            row["weeks_needed"] = pw.weeks_needed(comp, nt, nc, f, alpha=alpha, power=power)
        rows.append(row)
    table = pl.DataFrame(rows)
    x_all = np.log1p(per_unit["price_change_pct"].to_numpy() / 100)
    pooled_se = float(pw.elasticity_se(comp, weeks, x_all))
    var_y = comp.residual_variance(weeks, cuped=False)
    details = {
        "components": comp.to_dict(),
        "cuped_variance_reduction": float(1 - comp.residual_variance(weeks) / var_y)
        if var_y > 0
        else 0.0,
        "pooled_elasticity_se": pooled_se,
        "pooled_mde_elasticity": k * pooled_se,
        "alpha": alpha,
        "power": power,
        "weeks": weeks,
        "mde_pct": mde,
    }
    if mde is not None:
        need = table["weeks_needed"].to_list()
        details["weeks_needed"] = None if any(w is None for w in need) else max(need)
    return table, details


def design_experiment(
    units: pl.DataFrame,
    history: pl.DataFrame,
    *,
    name: str,
    cells: list[float],
    unit: str = "item-market",
    stratify: list[str] | None = None,
    weeks: int,
    seed: int,
    start: dt.date | str | None = None,
    mde: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    pre_weeks: int | None = None,
) -> ExperimentDesign:
    """Design a randomised price test: stratified assignment, balance and power.

    Parameters
    ----------
    units : polars.DataFrame
        One row per item x market: ``item_id, market, current_price`` and any
        attribute columns used in ``stratify``.
    history : polars.DataFrame
        Weekly pre-period sales (``item_id, market, date, price, quantity``,
        optional ``unit_cost``); rows on or after ``start`` are ignored.
    name : str
        Experiment name.
    cells : list of float
        Percent price changes, one per cell; must include 0 (control).
    unit : {"item-market", "item"}
        Randomisation unit; with ``"item"`` every market of an item shares a cell.
    stratify : list of str, optional
        Columns of ``units`` whose combinations form the strata (blocks).
    weeks : int
        Length of the test in weeks.
    seed : int
        Random seed; the same seed and units give the same assignment.
    start : date or ISO string, optional
        First week of the test (a Monday); default the week after the last history week.
    mde : float, optional
        Target minimum detectable change in units, in percent: adds the weeks needed.
    alpha, power : float
        Two-sided significance level and target power.
    pre_weeks : int, optional
        Use only the last ``pre_weeks`` weeks before ``start`` as the pre-period
        (balance, variance components, CUPED); default all of ``history``.
        Pass the same value to :func:`analyze_experiment`.

    Returns
    -------
    ExperimentDesign

    Raises
    ------
    UsageError
        Bad cells (no 0 control, duplicates, <= -100), unknown strata columns,
        bad unit, weeks, seed, alpha, power or mde.
    DataError
        Duplicate units, non-positive current prices, or no usable history.
    """
    cells = check_cells(cells)
    _check_args(name, unit, weeks, seed, alpha, power, mde)
    stratify = list(stratify or [])
    require_columns(units, [*KEYS, "current_price"], "units")
    for c in stratify:
        if c not in units.columns:
            raise UsageError(
                f"unknown stratify column '{c}'; units have {', '.join(units.columns)}"
            )
    units = units.with_columns(
        pl.col("item_id").cast(pl.String),
        pl.col("market").cast(pl.String),
        pl.col("current_price").cast(pl.Float64),
    )
    if units.height == 0:
        raise DataError("units: no units to randomise")
    dup = units.group_by(KEYS).len().filter(pl.col("len") > 1)
    if dup.height:
        r = dup.row(0, named=True)
        raise DataError(f"units: duplicate item_id={r['item_id']}, market={r['market']}")
    if units["current_price"].null_count() or (units["current_price"] <= 0).any():
        raise DataError("units: current_price must be > 0 for every unit")
    units = units.with_columns(unit_ids(units, unit))
    hist = clean_sales(history, "history")
    if start is None:
        if hist.height == 0:
            raise DataError("history: no pre-period sales, so no start date or power; pass start")
        first: dt.date = hist["date"].max() + dt.timedelta(days=7)  # type: ignore[operator,assignment]
    else:
        first = _as_date(start)
    start = first
    hist = hist.filter(pl.col("date") < first)
    if pre_weeks is not None:
        if isinstance(pre_weeks, bool) or not isinstance(pre_weeks, int) or pre_weeks < 2:
            raise UsageError(f"pre_weeks must be a whole number >= 2, got {pre_weeks!r}")
        hist = hist.filter(pl.col("date") >= first - dt.timedelta(weeks=pre_weeks))
    assigned = randomise(_strata(units, stratify, unit), cells, seed)
    assignment = (
        units.join(assigned, on="unit_id", how="left")
        .with_columns(
            (pl.col("current_price") * (1 + pl.col("price_change_pct") / 100))
            .round(2)
            .alias("test_price")
        )
        .select(
            *KEYS, "cell", "price_change_pct", "stratum", "current_price", "test_price", "unit_id"
        )
        .sort("stratum", "unit_id", "market")
    )
    if hist.join(assignment.select(KEYS), on=KEYS, how="semi").height == 0:
        raise DataError(
            "history: no pre-period sales for any unit before "
            f"{first.isoformat()}; power needs history"
        )
    ptable, details = power_table(assignment, hist, weeks=weeks, alpha=alpha, power=power, mde=mde)
    return ExperimentDesign(
        name=name,
        cells=cells,
        unit=unit,
        stratify=stratify,
        weeks=weeks,
        seed=seed,
        start=first,
        alpha=alpha,
        target_power=power,
        mde=mde,
        assignment=assignment,
        balance=balance_table(
            assignment,
            hist,
            dict(zip(units["market"], units["currency"], strict=True))
            if "currency" in units.columns
            else None,
        ),
        power=ptable,
        power_details=details,
    )


def _as_date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError as exc:
            raise UsageError(f"start must be an ISO date (YYYY-MM-DD), got {value!r}") from exc
    if not isinstance(value, dt.date):
        raise UsageError(f"start must be a date, got {value!r}")
    if value.weekday() != 0:
        raise UsageError(f"start {value.isoformat()} is not a Monday (weeks start on Mondays)")
    return value
