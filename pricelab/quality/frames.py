"""Rules for one input file: columns, types, values and duplicate keys.

Frames arrive with every column as text, so a bad cell is found and named instead of
breaking the parser. The typed, cleaned frame comes back with the report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import polars as pl

from pricelab.quality.checks import Issue, QualityReport, row_examples

REQUIRED: dict[str, tuple[str, ...]] = {
    "sales": ("item_id", "market", "date", "price", "quantity"),
    "items": ("item_id",),
    "costs": ("item_id", "unit_cost"),
    "markets": ("market", "fx_rate"),
    "inventory": ("item_id", "stock"),
}
OPTIONAL: dict[str, tuple[str, ...]] = {
    "sales": ("promo", "unit_cost"),
    "items": ("category", "brand", "boutique_id"),
    "costs": ("market",),
    "markets": ("currency", "vat_rate"),
    "inventory": ("market",),
}
KEYS: dict[str, tuple[str, ...]] = {
    "sales": ("item_id", "market", "date"),
    "items": ("item_id",),
    "costs": ("item_id", "market"),
    "markets": ("market",),
    "inventory": ("item_id", "market"),
}


#: largest magnitude any number in an input file may have (prices, quantities, costs, stock):
#: weekly sums of daily quantities stay far inside 64-bit integers and every product is finite
MAX_VALUE = 1e12
#: smallest price or exchange rate accepted (smaller ones make every ratio overflow)
MIN_POSITIVE = 1e-6
#: plausible dates: anything outside is a typo (9999-12-27) that breaks date arithmetic later
MIN_DATE, MAX_DATE = dt.date(1900, 1, 1), dt.date(2200, 12, 31)


def _all_valid(
    num: pl.Series,
    required: bool,
    positive: bool,
    fraction: bool,
    nonneg: bool,
    integer: bool,
    binary: bool,
) -> bool:
    """True when no rule of :meth:`_Checker.number` flags a value of ``num``."""
    x = pl.col(num.name)
    good = x.is_finite() & (x.abs() <= MAX_VALUE)
    if positive:
        good &= x >= MIN_POSITIVE
    if nonneg:
        good &= x >= 0
    if fraction:
        good &= (x >= 0) & (x < 1)
    if integer:
        good &= x == x.round(0)
    if binary:
        good &= x.is_in([0.0, 1.0])
    good = good.fill_null(False) if required else good | x.is_null()
    return bool(num.to_frame().select(good.all()).item())


class _Checker:
    def __init__(
        self, kind: str, df: pl.DataFrame, source: str, line_offset: int | Sequence[int] | None
    ):
        self.kind, self.df, self.source, self.offset = kind, df, source, line_offset
        self.report = QualityReport()
        self.out: dict[str, pl.Series] = {}

    def flag(self, column: str | None, rule: str, mask: pl.Series, level: str = "error") -> None:
        mask = mask.fill_null(False)
        if mask.any():
            n, ex = row_examples(self.df, mask, column, line_offset=self.offset)
            self.report.issues.append(Issue(level, self.source, column, rule, n, ex))

    def text(self, col: str, required: bool) -> None:
        s = self.df[col].cast(pl.String).str.strip_chars()
        if required:
            self.flag(col, "must not be empty", s.is_null() | (s == ""))
        self.out[col] = s.replace("", None) if not required else s

    def number(
        self,
        col: str,
        *,
        positive: bool = False,
        fraction: bool = False,
        nonneg: bool = False,
        integer: bool = False,
        binary: bool = False,
        required: bool = True,
    ) -> None:
        series = self.df[col]
        if series.dtype.is_numeric():  # typed fast path: the reader already parsed it
            num = series.cast(pl.Float64)
            rules = (required, positive, fraction, nonneg, integer, binary)
            if _all_valid(num, *rules):  # one pass; the rules below name what is wrong
                self.out[col] = num
                return
            present = num.is_not_null()
        else:
            raw = series.cast(pl.String).str.strip_chars()
            num = raw.cast(pl.Float64, strict=False)
            present = raw.is_not_null() & (raw != "")
        if required:
            self.flag(col, "missing value", ~present)
        bad = present & num.is_null()
        if bad.any() and not series.dtype.is_numeric():
            comma = raw.str.replace(",", ".", literal=True).cast(pl.Float64, strict=False)
            decimal_comma = bad & comma.is_not_null()
            self.flag(
                col,
                "not a number: decimal comma? write numbers with '.' as the decimal point",
                decimal_comma,
            )
            bad = bad & ~decimal_comma
        self.flag(col, "not a number", bad)
        finite = num.is_finite()
        self.flag(col, "must be finite (NaN or infinite found)", num.is_not_null() & ~finite)
        ok = num.is_not_null() & finite
        self.flag(col, f"must be at most {MAX_VALUE:g} in magnitude", ok & (num.abs() > MAX_VALUE))
        if positive:
            self.flag(col, "must be > 0", ok & (num <= 0))
            self.flag(
                col, f"must be at least {MIN_POSITIVE:g}", ok & (num > 0) & (num < MIN_POSITIVE)
            )
        if nonneg:
            self.flag(col, "must be >= 0", ok & (num < 0))
        if fraction:
            self.flag(
                col,
                "must be a fraction in [0, 1) (0.20 for 20%; a percentage was given?)",
                ok & ((num < 0) | (num >= 1)),
            )
        if integer:
            self.flag(col, "must be a whole number", ok & (num != num.round(0)))
        if binary:
            self.flag(col, "must be 0 or 1", ok & ~num.is_in([0.0, 1.0]))
        self.out[col] = num

    def date(self, col: str) -> None:
        if self.df[col].dtype == pl.Date:  # typed fast path (a Parquet date column)
            typed = self.df[col]
            self.flag(col, "missing value", typed.is_null())
            self._date_range(col, typed)
            self.out[col] = typed
            return
        series = self.df[col].cast(pl.String)
        # fast path: every present cell is exactly ISO YYYY-MM-DD
        quick = series.str.to_date("%Y-%m-%d", strict=False, exact=True)
        if quick.null_count() == series.null_count():
            self.flag(col, "missing value", series.is_null())
            self._date_range(col, quick)
            self.out[col] = quick
            return
        raw = series.str.strip_chars()
        parsed = raw.str.slice(0, 10).str.to_date("%Y-%m-%d", strict=False)
        bad_len = raw.str.len_chars() > 10
        tail_ok = raw.str.slice(10).str.contains(r"^([ T]00:00(:00(\.0+)?)?)?$")
        parsed = pl.select(pl.when(bad_len & ~tail_ok).then(None).otherwise(parsed)).to_series()
        self.flag(col, "missing value", raw.is_null() | (raw == ""))
        self.flag(
            col,
            "unparseable date (expected ISO YYYY-MM-DD)",
            raw.is_not_null() & (raw != "") & parsed.is_null(),
        )
        self._date_range(col, parsed)
        self.out[col] = parsed

    def _date_range(self, col: str, dates: pl.Series) -> None:
        self.flag(
            col,
            f"date out of the plausible range {MIN_DATE} .. {MAX_DATE}",
            (dates < MIN_DATE) | (dates > MAX_DATE),
        )


def _unused_columns(
    kind: str, df: pl.DataFrame, source: str, report: QualityReport, kept: Iterable[str] = ()
) -> None:
    """Warn about columns pricelab does not load (items keeps every attribute column; sales
    keeps the numeric ``kept`` ones)."""
    if kind == "items":
        return
    known = set(REQUIRED[kind]) | set(OPTIONAL[kind]) | set(kept)
    extra = [c for c in df.columns if c not in known]
    if extra:
        names = ", ".join(repr(c) for c in extra)
        expected = ", ".join(REQUIRED[kind] + OPTIONAL[kind])
        report.issues.append(
            Issue(
                "warning",
                source,
                None,
                f"column(s) {names} not used and not loaded (a {kind} file has: {expected})",
            )
        )


def _extra_sales(df: pl.DataFrame, out: dict[str, pl.Series]) -> None:
    """Numeric sales columns beyond the contract go to ``out`` (stored, usable as estimate
    controls, e.g. ``--controls promo,deal``); :func:`_unused_columns` names the others."""
    known = set(REQUIRED["sales"]) | set(OPTIONAL["sales"])
    for col in [c for c in df.columns if c not in known]:
        v = df[col]
        if v.dtype == pl.String:
            text = v.str.strip_chars()
            num = text.cast(pl.Float64, strict=False)
            bad = (num.is_null() & text.is_not_null() & (text != "")).any()
        elif v.dtype.is_numeric() or v.dtype == pl.Boolean:
            num, bad = v.cast(pl.Float64), False
        else:
            num, bad = v, True
        if not bad and num.is_finite().fill_null(True).all():
            out[col] = num.alias(col)


def strictly_ordered(df: pl.DataFrame, keys: Sequence[str]) -> bool:
    """True when the ``keys`` of every row sort strictly after the previous row's (so the
    frame is in key order with no duplicate keys); False when a key cell is null."""
    if any(df[k].null_count() for k in keys):
        return False
    if df.height < 2:
        return True
    *head, last = (pl.col(k) for k in keys)
    later = last >= last.shift(-1)  # this row's keys do not sort before the next row's
    for k in reversed(head):
        later = (k > k.shift(-1)) | ((k == k.shift(-1)) & later)
    later = later.fill_null(False).any()
    # most files out of order are so in their first rows: look there first
    return not df.head(4096).select(later).item() and not df.select(later).item()


def unique_in_runs(df: pl.DataFrame, keys: Sequence[str]) -> bool:
    """True when the rows are runs of equal ``keys[:-1]``, each run with strictly
    increasing ``keys[-1]`` and no two runs with the same ``keys[:-1]`` (a file written
    group by group, in date order): then no two rows share their ``keys``. False when
    that does not hold (duplicates are then looked for the long way) or a key is null."""
    *head, last = keys
    if not head or any(df[k].null_count() for k in keys):
        return strictly_ordered(df, keys)
    if df.height < 2:
        return True
    start = pl.any_horizontal([pl.col(k) != pl.col(k).shift(1) for k in head]).fill_null(True)
    later = (pl.col(last) > pl.col(last).shift(1)) | start
    flags = df.select(start.alias("start"), later.fill_null(False).all().alias("ok"))
    if not flags["ok"][0]:
        return False
    runs = df.filter(flags["start"]).select(head).sort(head)
    return strictly_ordered(runs, head)


def validate_frame(
    kind: str, df: pl.DataFrame, source: str, *, line_offset: int | Sequence[int] | None = 1
) -> tuple[pl.DataFrame, QualityReport]:
    """Check one input table given as text columns; return the typed frame and findings.

    Parameters
    ----------
    kind:
        ``sales``, ``items``, ``costs``, ``markets`` or ``inventory``.
    df:
        The file's content with every column as text.
    source:
        Name used in messages (the file name).
    line_offset:
        File line of data row 1 minus 1 (1 for a CSV with a header; None for Parquet).
    """
    report = QualityReport()
    missing = [c for c in REQUIRED[kind] if c not in df.columns]
    if len(missing) == 1:
        report.issues.append(
            Issue(
                "error",
                source,
                missing[0],
                f"missing required column (found: {', '.join(df.columns)})",
            )
        )
        return df, report
    if missing:
        report.issues.append(
            Issue(
                "error",
                source,
                None,
                f"missing required columns {', '.join(repr(c) for c in missing)} "
                f"(found: {', '.join(df.columns)})",
            )
        )
        return df, report
    c = _Checker(kind, df, source, line_offset)
    if kind == "sales":
        c.text("item_id", True)
        c.text("market", True)
        c.date("date")
        c.number("price", positive=True)
        c.number("quantity", nonneg=True, integer=True)
        if "promo" in df.columns:
            c.number("promo", binary=True, required=False)
        if "unit_cost" in df.columns:
            c.number("unit_cost", nonneg=True, required=False)
        _extra_sales(df, c.out)
    elif kind == "items":
        c.text("item_id", True)
        for col in df.columns:
            if col != "item_id":
                c.text(col, False)
    elif kind == "costs":
        c.text("item_id", True)
        c.number("unit_cost", nonneg=True)
        c.text("market", False) if "market" in df.columns else None
    elif kind == "markets":
        c.text("market", True)
        c.number("fx_rate", positive=True)
        if "currency" in df.columns:
            c.text("currency", False)
        if "vat_rate" in df.columns:
            c.number("vat_rate", fraction=True, required=False)
    elif kind == "inventory":
        c.text("item_id", True)
        c.number("stock", nonneg=True)
        c.text("market", False) if "market" in df.columns else None
    _unused_columns(kind, df, source, report, kept=c.out)
    report.extend(c.report)
    typed = pl.DataFrame(c.out)
    if kind == "sales":
        typed = typed.with_columns(pl.col("quantity").cast(pl.Int64, strict=False))
        if "promo" in typed.columns:
            typed = typed.with_columns(pl.col("promo").cast(pl.Int8, strict=False))
    for col in KEYS[kind]:
        if col not in typed.columns:
            typed = typed.with_columns(pl.lit(None, dtype=pl.String).alias(col))
    keys = list(KEYS[kind])
    if report.ok and not unique_in_runs(typed, keys):  # e.g. in key order: no duplicates
        # a 64-bit row hash finds duplicates cheaply; the exact check runs only on a hit
        hashed = typed.select(pl.struct(keys).hash(seed=0)).to_series()
        if hashed.n_unique() < typed.height and typed.select(keys).is_duplicated().any():
            dup = typed.select(keys).is_duplicated()
            n, ex = row_examples(typed, dup, None, line_offset=line_offset)
            sample = typed.filter(dup).row(0, named=True)
            key_txt = ", ".join(f"{k}={sample[k]}" for k in keys)
            report.issues.append(
                Issue(
                    "error",
                    source,
                    None,
                    f"duplicate ({', '.join(keys)}) rows, e.g. {key_txt}; rows are not summed",
                    n,
                    ex,
                )
            )
    return typed, report
