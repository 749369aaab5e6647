"""Design matrices from polars frames: validation, controls, group codes, chunks.

The estimators see a :class:`Design`: rows sorted by group, an integer group code per
row, a numeric regressor matrix whose first two columns are the intercept and
log price, and the group keys. Controls are named: ``promo``, ``fourier`` (one
sin/cos pair of the week of year), ``fourier2`` (two pairs), ``trend`` (years since
the first week in the data) or any numeric column of ``sales``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from pricelab.errors import DataError, EmptyStoreError, UsageError

from .padded_kernels import pad

DEFAULT_CONTROLS = ("promo", "fourier", "trend")
REQUIRED = ("item_id", "market", "price", "quantity")
YEAR_DAYS = 365.25


def normalize_by(by: str | Sequence[str] | None) -> list[str]:
    """The group columns of a ``by`` argument as a list.

    Parameters
    ----------
    by:
        ``None`` (no groups: every row is one group), a comma-separated string
        (``"item_id, market"``) or a sequence of column names.

    Returns
    -------
    list of str
        The column names in order; empty for ``None`` or a blank string.
    """
    if by is None:
        return []
    if isinstance(by, str):
        return [c.strip() for c in by.split(",") if c.strip()]
    return list(by)


#: ``se`` per model when none is given: ``cluster`` (leverage-corrected scores summed in
#: blocks of 13 weeks) where per-group robust variances under-cover on real scanner data
DEFAULT_SE = {"ols": "cluster", "poisson": "cluster", "hierarchical": "cluster"}


def resolve_se(model: str, se: str | None, fixed_effects: Sequence[str] | None = None) -> str:
    """The standard-error type used for ``model`` given an ``se`` argument.

    Parameters
    ----------
    model:
        Model name (``ols``, ``poisson``, ``panel``, ``hierarchical``, ``iv``).
    se:
        The requested type, or None for the model's default.
    fixed_effects:
        Absorbed fixed-effect columns (``ols`` with fixed effects defaults to ``HC1``).

    Returns
    -------
    str
        ``se`` when given; else ``cluster`` for ``ols``, ``poisson`` and ``hierarchical``
        and ``HC1`` for the others (``panel`` always clusters by item).
    """
    if se is not None:
        return se
    return "HC1" if fixed_effects else DEFAULT_SE.get(model, "HC1")


def resolve_controls(controls: str | Sequence[str] | None) -> list[str]:
    """The control names of a ``controls`` argument as a list.

    Parameters
    ----------
    controls:
        ``"default"`` (``promo, fourier, trend``), ``"none"`` or ``None`` (no
        controls), a comma-separated string or a sequence of names.

    Returns
    -------
    list of str
        Control names (``promo, fourier, fourier2, trend`` or numeric sales columns).
    """
    if controls is None:
        return []
    if isinstance(controls, str):
        if controls == "default":
            return list(DEFAULT_CONTROLS)
        if controls == "none":
            return []
        return [c.strip() for c in controls.split(",") if c.strip()]
    return list(controls)


def control_frame(
    df: pl.DataFrame, names: Sequence[str], origin: dt.date | None
) -> tuple[pl.DataFrame, list[str]]:
    """Add the numeric columns for ``names`` to ``df``; return it and the column names."""
    exprs: list[pl.Expr] = []
    cols: list[str] = []
    for name in names:
        if name == "promo":
            if "promo" in df.columns:
                exprs.append(pl.col("promo").fill_null(0).cast(pl.Float64).alias("_c_promo"))
                cols.append("_c_promo")
        elif name in ("fourier", "fourier2", "trend"):
            if "date" not in df.columns:
                raise UsageError(f"control '{name}' needs a 'date' column in sales")
            if name == "trend":
                exprs.append(
                    ((pl.col("date") - pl.lit(origin)).dt.total_days() / YEAR_DAYS)
                    .cast(pl.Float64)
                    .alias("_c_trend")
                )
                cols.append("_c_trend")
            else:
                angle = 2 * np.pi * pl.col("date").dt.ordinal_day().cast(pl.Float64) / YEAR_DAYS
                for h in range(1, 3 if name == "fourier2" else 2):
                    exprs += [
                        (h * angle).sin().alias(f"_c_sin{h}"),
                        (h * angle).cos().alias(f"_c_cos{h}"),
                    ]
                    cols += [f"_c_sin{h}", f"_c_cos{h}"]
        else:
            if name not in df.columns:
                raise UsageError(f"unknown control column '{name}' (not in sales)")
            if not df.schema[name].is_numeric():
                raise UsageError(f"control column '{name}' is not numeric")
            exprs.append(pl.col(name).cast(pl.Float64).alias(f"_c_{name}"))
            cols.append(f"_c_{name}")
    cols = list(dict.fromkeys(cols))
    return (df.with_columns(exprs) if exprs else df), cols


def control_label(col: str) -> str:
    """Public name of an internal control column (``_c_promo`` -> ``promo``)."""
    return col[3:]


@dataclass
class Design:
    """Rows of one estimation problem, sorted by group."""

    keys: pl.DataFrame  # one row per group, the ``by`` columns
    by: list[str]
    codes: np.ndarray  # (n,) group code per row, sorted
    X: np.ndarray  # (n, k) [1, log price, controls...]
    names: list[str]  # column names of X
    logq: np.ndarray  # (n,) log quantity (nan where q == 0)
    q: np.ndarray  # (n,)
    frame: pl.DataFrame  # the sorted rows (for instruments, FE, clusters)
    origin: dt.date | None
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_groups(self) -> int:
        return self.keys.height if self.by else 1


def check_sales(sales: pl.DataFrame, by: Sequence[str]) -> None:
    """Raise typed errors for an empty frame or missing columns."""
    if not isinstance(sales, pl.DataFrame):
        raise UsageError("sales must be a polars DataFrame")
    if sales.height == 0:
        raise EmptyStoreError("no sales rows to estimate from (the sales table is empty)")
    for col in REQUIRED:
        if col not in sales.columns:
            raise DataError(f"sales has no '{col}' column")
    for col in by:
        if col not in sales.columns:
            raise UsageError(f"unknown --by column '{col}' (not in sales or items)")
    bad, badq = sales.select(  # one pass, no filtered copies
        (~(pl.col("price") > 0) | pl.col("price").is_null()).sum(),
        ((pl.col("quantity") < 0) | pl.col("quantity").is_null()).sum(),
    ).row(0)
    if bad:
        raise DataError(f"sales: column 'price' must be > 0 ({bad} rows are not)")
    if badq:
        raise DataError(f"sales: column 'quantity' must be >= 0 ({badq} rows are not)")


def with_items(sales: pl.DataFrame, items: pl.DataFrame | None) -> pl.DataFrame:
    """Left-join the item attributes (category, brand, ...) onto the sales rows."""
    if items is None:
        return sales
    extra = [c for c in items.columns if c != "item_id" and c not in sales.columns]
    if not extra:
        return sales
    return sales.join(items.select(["item_id", *extra]).unique("item_id"), on="item_id", how="left")


def hausman_column(df: pl.DataFrame) -> pl.Series:
    """Mean log price of the same item in the *other* markets in the same week (null if none)."""
    if "date" not in df.columns:
        raise UsageError("instrument 'hausman' needs a 'date' column in sales")
    lp = pl.col("price").log()
    s = lp.sum().over(["item_id", "date"])
    c = lp.count().over(["item_id", "date"])
    return df.select(
        pl.when(c > 1).then((s - lp) / (c - 1)).otherwise(None).alias("_z_hausman")
    ).to_series()


def build(
    df: pl.DataFrame,
    by: Sequence[str] | None,
    controls: Sequence[str],
    origin: dt.date | None = None,
) -> Design:
    """Sort rows by group and build the regressor matrix.

    ``df`` must already be checked and carry any instrument / fixed-effect columns.
    """
    by = list(by or [])
    if origin is None and "date" in df.columns:
        first = df["date"].min()
        origin = first if isinstance(first, dt.date) else None
    # hash group-by (parallel) + gather is several times faster than a multi-key sort
    within = pl.col("_i").sort_by("date") if "date" in df.columns else pl.col("_i")
    if by:
        cols0 = [*by, "date"] if "date" in df.columns else by
        g = df.select(cols0).with_row_index("_i").group_by(by).agg(within).sort(by)
        counts = g["_i"].list.len().to_numpy()
        df = df[g["_i"].explode().to_numpy()]
        keys = g.select(by)
        codes = np.repeat(np.arange(keys.height, dtype=np.int64), counts)
    else:
        if "date" in df.columns:
            df = df.sort("date", maintain_order=True)
        codes = np.zeros(df.height, dtype=np.int64)
        keys = pl.DataFrame()
    df, cols = control_frame(df, controls, origin)
    q = df["quantity"].cast(pl.Float64).to_numpy()
    logp = np.log(df["price"].cast(pl.Float64).to_numpy())
    X = np.empty((df.height, 2 + len(cols)))
    X[:, 0] = 1.0
    X[:, 1] = logp
    for j, c in enumerate(cols):
        X[:, 2 + j] = df[c].fill_null(0.0).to_numpy()
    with np.errstate(divide="ignore"):
        logq = np.where(q > 0, np.log(np.where(q > 0, q, 1.0)), np.nan)
    return Design(
        keys=keys,
        by=by,
        codes=codes,
        X=X,
        names=["intercept", "log_price", *cols],
        logq=logq,
        q=q,
        frame=df,
        origin=origin,
    )


def group_means(values: np.ndarray, codes: np.ndarray, weights: np.ndarray, G: int) -> np.ndarray:
    """Weighted group means of the columns of ``values (n, k)`` -> ``(G, k)``."""
    wsum = np.bincount(codes, weights=weights, minlength=G)
    out = np.empty((G, values.shape[1]))
    for j in range(values.shape[1]):
        out[:, j] = np.bincount(codes, weights=values[:, j] * weights, minlength=G)
    with np.errstate(divide="ignore", invalid="ignore"):
        return out / wsum[:, None]


@dataclass
class Chunk:
    """A block of whole groups in padded layout."""

    groups: np.ndarray  # (Gc,) group ids
    rows: np.ndarray  # (nc,) row ids
    codes: np.ndarray  # (nc,) local group code
    pos: np.ndarray  # (nc,) position within group
    width: int

    def pad(self, values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        return pad(values[self.rows], self.codes, self.pos, self.groups.size, self.width, fill)


def chunks(codes: np.ndarray, G: int, k: int, max_cells: float = 4e6) -> Iterator[Chunk]:
    """Split groups into blocks of similar size so padded arrays stay under ``max_cells``."""
    counts = np.bincount(codes, minlength=G)
    starts = np.cumsum(counts) - counts
    order = np.argsort(counts, kind="stable")
    i = 0
    while i < G:
        width = max(int(counts[order[min(G - 1, i)]]), 1)
        j = i + 1
        while j < G:
            wj = max(int(counts[order[j]]), 1)
            if (j + 1 - i) * wj * k > max_cells:
                break
            width = wj
            j += 1
        gs = order[i:j]
        c = counts[gs]
        local = np.repeat(np.arange(gs.size), c)
        offs = np.cumsum(c) - c
        pos = np.arange(c.sum()) - np.repeat(offs, c)
        rows = np.repeat(starts[gs], c) + pos
        yield Chunk(groups=gs, rows=rows, codes=local, pos=pos, width=max(width, 1))
        i = j
