"""Lineage: what changed between two runs (parameters, input data, elasticities)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl

from pricelab.store.db import Store
from pricelab.store.runs import get_run

FINGERPRINT_FIELDS = ("rows", "date_min", "date_max", "hash")
_KEYS = ("item_id", "market")
_MISSING = "<absent>"


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys (lists and scalars are leaves)."""
    if not isinstance(d, dict):
        return {prefix: d} if prefix else {}
    out: dict[str, Any] = {}
    for key in sorted(d):
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(d[key], dict) and d[key]:
            out.update(_flatten(d[key], name))
        else:
            out[name] = d[key]
    return out


def parameter_changes(a: dict[str, Any] | None, b: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Parameters that differ between two runs: ``{"parameter", "a", "b"}`` per dotted key.

    A key present in only one run shows ``"<absent>"`` on the other side.
    """
    fa, fb = _flatten(a or {}), _flatten(b or {})
    out = []
    for key in sorted(set(fa) | set(fb)):
        va, vb = fa.get(key, _MISSING), fb.get(key, _MISSING)
        if va != vb:
            out.append({"parameter": key, "a": va, "b": vb})
    return out


def input_changes(a: dict[str, Any] | None, b: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Input tables whose fingerprint differs: ``{"table", "field", "a", "b"}`` per field.

    Fields are the row count, the sales date range and the content hash.
    """
    a, b = a or {}, b or {}
    out = []
    for table in sorted(set(a) | set(b)):
        ta, tb = a.get(table) or {}, b.get(table) or {}
        for fld in FINGERPRINT_FIELDS:
            if fld not in ta and fld not in tb:
                continue
            va, vb = ta.get(fld, _MISSING), tb.get(fld, _MISSING)
            if va != vb:
                out.append({"table": table, "field": fld, "a": va, "b": vb})
    return out


def interval_shifts(a: pl.DataFrame, b: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Items whose elasticity interval in ``b`` no longer overlaps its interval in ``a``.

    Parameters
    ----------
    a, b:
        Elasticity tables (``item_id, market, elasticity, ci_low, ci_high``; ``market`` or
        ``item_id`` may be absent for pooled estimates). Rows are matched on the key
        columns both share; rows with a missing interval are not compared.

    Returns
    -------
    (frame, n_compared)
        One row per moved item: keys, ``elasticity_a, ci_low_a, ci_high_a`` and the same for
        ``b``, ``shift`` (b - a) and ``direction`` (``up``/``down``); and the number of
        items compared.
    """
    keys = [k for k in _KEYS if k in a.columns and k in b.columns]
    cols = ["elasticity", "ci_low", "ci_high"]
    empty = pl.DataFrame(
        schema={
            **{k: pl.String for k in keys},
            **{f"{c}_{s}": pl.Float64 for s in "ab" for c in cols},
            "shift": pl.Float64,
            "direction": pl.String,
        }
    )
    if a.height == 0 or b.height == 0 or not all(c in a.columns and c in b.columns for c in cols):
        return empty, 0
    sa = a.select([*keys, *cols]).rename({c: f"{c}_a" for c in cols})
    sb = b.select([*keys, *cols]).rename({c: f"{c}_b" for c in cols})
    joined = (
        sa.join(sb, on=keys, how="inner", nulls_equal=True)
        if keys
        else pl.concat([sa.head(1), sb.head(1)], how="horizontal")
    )
    finite = pl.all_horizontal(
        [
            pl.col(f"{c}_{s}").is_not_null() & pl.col(f"{c}_{s}").is_finite()
            for s in "ab"
            for c in ("ci_low", "ci_high")
        ]
    )
    joined = joined.filter(finite)
    moved = (
        joined.filter(
            (pl.col("ci_low_b") > pl.col("ci_high_a")) | (pl.col("ci_high_b") < pl.col("ci_low_a"))
        )
        .with_columns((pl.col("elasticity_b") - pl.col("elasticity_a")).alias("shift"))
        .with_columns(
            pl.when(pl.col("ci_low_b") > pl.col("ci_high_a"))
            .then(pl.lit("up"))
            .otherwise(pl.lit("down"))
            .alias("direction")
        )
    )
    moved = moved.sort([*keys] if keys else "shift")
    return moved.select(empty.columns).cast(empty.schema), joined.height


@dataclass
class RunDiff:
    """What changed from run ``a`` to run ``b``."""

    a: dict[str, Any]
    b: dict[str, Any]
    parameters: list[dict[str, Any]]
    inputs: list[dict[str, Any]]
    elasticity: pl.DataFrame | None = None
    n_compared: int = 0
    other: list[dict[str, Any]] = field(default_factory=list)

    @property
    def same_inputs(self) -> bool:
        """True when every input table has the same fingerprint in both runs."""
        return not self.inputs

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""

        def head(r: dict[str, Any]) -> dict[str, Any]:
            return {
                k: r.get(k)
                for k in (
                    "run_id",
                    "command",
                    "status",
                    "started_at",
                    "version",
                    "git_commit",
                    "input_fingerprint",
                )
            }

        doc: dict[str, Any] = {
            "a": head(self.a),
            "b": head(self.b),
            "same_inputs": self.same_inputs,
            "parameters": self.parameters,
            "inputs": self.inputs,
            "other": self.other,
        }
        if self.elasticity is not None:
            doc["elasticity"] = {
                "compared": self.n_compared,
                "moved": self.elasticity.height,
                "items": self.elasticity.to_dicts(),
            }
        return doc


def diff_runs(store: Store, run_a: str, run_b: str) -> RunDiff:
    """Compare two runs: parameters, input fingerprints, and elasticities of estimate runs.

    Raises
    ------
    NotFoundError
        Either run does not exist.
    """
    a, b = get_run(store, run_a), get_run(store, run_b)
    other = []
    for key in ("command", "status", "version", "git_commit", "parents"):
        if a.get(key) != b.get(key):
            other.append({"field": key, "a": a.get(key), "b": b.get(key)})
    diff = RunDiff(
        a,
        b,
        parameter_changes(a.get("parameters"), b.get("parameters")),
        input_changes(a.get("inputs"), b.get("inputs")),
        other=other,
    )
    if a["command"] == "estimate" and b["command"] == "estimate":
        ea = store.read_result("elasticities", run_a)
        eb = store.read_result("elasticities", run_b)
        diff.elasticity, diff.n_compared = interval_shifts(ea, eb)
    return diff
