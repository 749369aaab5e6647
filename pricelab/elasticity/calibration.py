"""Split-half calibration of standard errors: estimate on odd and on even weeks, compare.

An economist's check of whether reported standard errors are honest on real data: the
odd weeks and the even weeks of each group are two samples of the same demand, so for
every group ``z = (e_odd - e_even) / sqrt(se_odd² + se_even²)`` is approximately standard
normal when the standard errors are right (and tighter, never wider, when estimates are
shrunk toward a common mean: shrinkage pulls both halves the same way). Reported: the
root mean square of ``z`` (≈ 1) and the share of groups with ``|z| > 1.96`` (≈ 5%), over
all groups and over the top quartile of groups by mean weekly volume (where too-small
sandwich variances of high-leverage promotion weeks show first).

    >>> from pricelab.elasticity.calibration import split_half, summarize
    >>> z = split_half(sales, model="poisson")          # doctest: +SKIP
    >>> summarize(z)                                    # doctest: +SKIP
    {'groups': 913, 'rms_z': 1.02, 'share_out': 0.05, 'top_groups': 229, ...}

Odd/even alternation keeps both halves spread over the whole period, so seasonality,
trends and promotion calendars are in both; weeks are counted from the first week in the
data (``date``).

One split is one draw. When groups share weekly shocks (45 avocado regions on one national
calendar) their z statistics are correlated, and the RMS over groups is then largely one
draw of the common shock: honest standard errors exceed an RMS of 1.2 on a sizeable share of
splits. :func:`split_draws` repeats the check over random splits of the same kind (within
each pair of weeks of the year one week goes to each half, drawn with ``seed``, the same
every year; odd/even is one of them) and reports every split's summary, so the calibration
can be judged on the distribution rather than on one draw.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from .model import estimate
from .robust import YEAR_WEEKS

Z95 = 1.959963984540054


def split_half(sales: pl.DataFrame, seed: int | None = None, **options: Any) -> pl.DataFrame:
    """Per-group split-half z statistics of :func:`~pricelab.elasticity.estimate`.

    Parameters
    ----------
    sales:
        Sales rows (``item_id, market, date, price, quantity`` + controls), as for
        :func:`~pricelab.elasticity.estimate`.
    seed:
        ``None``: odd weeks against even weeks (counted from the first week in the data).
        An integer: within each consecutive pair of weeks of the year (0-1, 2-3, ...,
        50-51, weeks counted modulo 52) the week that goes to the first ("odd") half is
        drawn at random with this seed, the same in every year. Both halves still
        alternate through the whole period, and, as with odd/even (52 is even), a week of
        the year stays in one half every year, so events that come back every year (a
        holiday) land in one half: the split shows whether their shared shocks are in the
        standard errors.
    **options:
        Keyword arguments of :func:`~pricelab.elasticity.estimate` (``model``, ``by``,
        ``items``, ``controls``, ...), used for both halves.

    Returns
    -------
    polars.DataFrame
        One row per group estimated in both halves: the group keys, ``e_odd, se_odd,
        e_even, se_even``, ``z`` and ``mean_quantity`` (mean weekly units over all weeks).
    """
    by = options.get("by", ("item_id", "market"))
    keys = [by] if isinstance(by, str) else list(by or [])
    week = ((sales["date"] - sales["date"].min()).dt.total_days() // 7).to_numpy()
    half = week % 2
    if seed is not None:
        flip = np.random.default_rng(seed).integers(0, 2, size=YEAR_WEEKS // 2)
        half = half ^ flip[(week % YEAR_WEEKS) // 2]
    halves = []
    for parity, name in ((1, "odd"), (0, "even")):
        res = estimate(sales.filter(pl.Series(half == parity)), **options).elasticities
        halves.append(
            res.select(
                *keys,
                pl.col("elasticity").alias(f"e_{name}"),
                pl.col("std_error").alias(f"se_{name}"),
            )
        )
    volume = sales.group_by(keys).agg(mean_quantity=pl.col("quantity").cast(pl.Float64).mean())
    both = halves[0].join(halves[1], on=keys, how="inner").join(volume, on=keys, how="left")
    z = (pl.col("e_odd") - pl.col("e_even")) / (
        pl.col("se_odd") ** 2 + pl.col("se_even") ** 2
    ).sqrt()
    out = both.with_columns(z=z).filter(pl.col("z").is_finite())
    return out.sort(keys) if keys else out


def summarize(z: pl.DataFrame) -> dict[str, float]:
    """RMS z and share beyond 1.96, over all groups and the top volume quartile.

    Parameters
    ----------
    z:
        A :func:`split_half` table.

    Returns
    -------
    dict
        ``groups, rms_z, share_out`` for all groups and ``top_groups, top_rms_z,
        top_share_out`` for groups at or above the 75th percentile of ``mean_quantity``.
    """
    v = z["z"].to_numpy()
    q = z["mean_quantity"].to_numpy()
    top = q >= np.quantile(q, 0.75) if q.size else np.zeros(0, dtype=bool)

    def stats(a: np.ndarray) -> tuple[float, float]:
        if a.size == 0:
            return float("nan"), float("nan")
        return float(np.sqrt(np.mean(a * a))), float(np.mean(np.abs(a) > Z95))

    rms, share = stats(v)
    trms, tshare = stats(v[top])
    return {
        "groups": int(v.size),
        "rms_z": rms,
        "share_out": share,
        "top_groups": int(top.sum()),
        "top_rms_z": trms,
        "top_share_out": tshare,
    }


def split_draws(sales: pl.DataFrame, seeds: Any, **options: Any) -> pl.DataFrame:
    """:func:`summarize` of :func:`split_half` for each seed: one row per split.

    Parameters
    ----------
    sales, **options:
        As for :func:`split_half`.
    seeds:
        Iterable of seeds (``None`` is the odd/even split).

    Returns
    -------
    polars.DataFrame
        ``seed`` and the :func:`summarize` keys, plus ``mean_z`` (the mean z over groups:
        the part of the split's RMS that groups share).
    """
    rows = []
    for seed in seeds:
        z = split_half(sales, seed=seed, **options)
        rows.append(
            {
                "seed": seed,
                **summarize(z),
                "mean_z": float(np.mean(z["z"].to_numpy())) if z.height else float("nan"),
            }
        )
    return pl.DataFrame(rows, schema_overrides={"seed": pl.Int64})


def pooled(draws: pl.DataFrame) -> dict[str, float]:
    """The bar's statistics over many splits: root of the mean RMS² (all groups and the top
    quartile), mean shares beyond 1.96, and the share of splits with RMS z above 1.2."""
    c = {k: draws[k].to_numpy() for k in ("rms_z", "share_out", "top_rms_z", "top_share_out")}
    return {
        "splits": draws.height,
        "rms_z": float(np.sqrt(np.mean(c["rms_z"] ** 2))),
        "share_out": float(np.mean(c["share_out"])),
        "top_rms_z": float(np.sqrt(np.mean(c["top_rms_z"] ** 2))),
        "top_share_out": float(np.mean(c["top_share_out"])),
        "splits_over_1_2": float(np.mean(c["rms_z"] > 1.2)),
    }
