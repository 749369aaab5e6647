"""The constraints file (contract "Constraints file"), parsed into small objects.

``load_constraints`` accepts a YAML path, YAML text or an already-parsed dict and
returns a frozen :class:`Constraints`. Syntax errors, unknown keys (with the closest
valid key suggested) and wrong types raise :class:`pricelab.errors.ConfigError`
naming the file, key and line.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from typing import Any

from pricelab.configfile import MAX_WEEKS, parse_config, read_config
from pricelab.configfile import ConfigContext as _Ctx
from pricelab.configfile import check_keys as _check_keys
from pricelab.urls import display

TOP_KEYS = (
    "objective",
    "horizon_weeks",
    "bounds",
    "min_margin_pct",
    "parity",
    "ladder",
    "inventory",
    "min_volume_pct",
    "max_avg_change_pct",
    "max_extrapolation_pct",
    "frozen",
    "overrides",
    "ordering",
)
OVERRIDE_KEYS = (
    "where",
    "bounds",
    "min_margin_pct",
    "parity",
    "ladder",
    "inventory",
    "min_volume_pct",
    "max_avg_change_pct",
    "frozen",
)
WHERE_KEYS = ("category", "market", "item_id")
BOUND_KEYS = ("max_increase_pct", "max_decrease_pct")
#: default margin around each row's observed price range (``max_extrapolation_pct``)
DEFAULT_EXTRAPOLATION_PCT = 20.0


@dataclass(frozen=True)
class Bounds:
    """Price bounds relative to the current price, in percent (None = no bound)."""

    max_increase_pct: float | None = None
    max_decrease_pct: float | None = None


@dataclass(frozen=True)
class Ladder:
    """Allowed price points: multiples of ``step``, optionally ending in ``ending``."""

    step: float | None = None
    ending: float | None = None

    @property
    def spacing(self) -> float:
        """Distance between consecutive price points."""
        if self.step is not None:
            return float(self.step)
        assert self.ending is not None
        return float(10.0 ** math.ceil(math.log10(self.ending + 1e-9)))

    @property
    def offset(self) -> float:
        """Price points are ``k * spacing + offset`` for integer k >= 0."""
        return float(self.ending or 0.0)


@dataclass(frozen=True)
class Ordering:
    """Good-better-best: within each market, prices rise along ``items`` by >= min_step_pct."""

    items: tuple[str, ...]
    min_step_pct: float = 0.0
    line: int | None = None

    @property
    def name(self) -> str:
        """``ordering A < B < C (min_step_pct 5)`` for messages."""
        return f"ordering {' < '.join(self.items)} (min_step_pct {self.min_step_pct:g})"


@dataclass(frozen=True)
class Rules:
    """Row-level rules after overrides: what one item x market must satisfy."""

    bounds: Bounds = field(default_factory=Bounds)
    min_margin_pct: float | None = None
    parity_gap_pct: float | None = None
    ladder: Ladder | None = None
    inventory: bool = False
    frozen: bool = False


@dataclass(frozen=True)
class Override:
    """Settings applied to the rows matching ``where`` (later overrides win)."""

    where: dict[str, tuple[str, ...]]
    settings: dict[str, Any]
    line: int | None = None

    def mask(self, columns: dict[str, list[str]]) -> list[bool]:
        """Which rows (given their item_id/market/category values) this override matches."""
        n = len(next(iter(columns.values())))
        out = [True] * n
        for key, values in self.where.items():
            col = columns.get(key)
            vals = set(values)
            out = [o and col is not None and col[i] in vals for i, o in enumerate(out)]
        return out


@dataclass(frozen=True)
class Constraints:
    """A parsed constraints file; see the contract for each key's meaning."""

    objective: str = "profit"
    horizon_weeks: float = 1.0
    rules: Rules = field(default_factory=Rules)
    min_volume_pct: float | None = None
    max_avg_change_pct: float | None = None
    #: prices stay within the observed range widened by this percent (None: no cap)
    max_extrapolation_pct: float | None = DEFAULT_EXTRAPOLATION_PCT
    frozen_items: tuple[str, ...] = ()
    overrides: tuple[Override, ...] = ()
    ordering: tuple[Ordering, ...] = ()
    source: str = "<dict>"

    def rules_for(self, active: dict[str, Any]) -> Rules:
        """Apply one override's settings on top of the global rules."""
        r = self.rules
        if "bounds" in active:
            b = active["bounds"]
            r = replace(
                r,
                bounds=Bounds(
                    b.get("max_increase_pct", r.bounds.max_increase_pct),
                    b.get("max_decrease_pct", r.bounds.max_decrease_pct),
                ),
            )
        if "min_margin_pct" in active:
            r = replace(r, min_margin_pct=active["min_margin_pct"])
        if "parity" in active:
            r = replace(r, parity_gap_pct=active["parity"])
        if "ladder" in active:
            r = replace(r, ladder=active["ladder"])
        if "inventory" in active:
            r = replace(r, inventory=active["inventory"])
        if "frozen" in active:
            r = replace(r, frozen=active["frozen"])
        return r


def _number(
    ctx: _Ctx,
    path: tuple,
    v: Any,
    *,
    lo: float | None = 0.0,
    hi: float | None = None,
    strict_lo: bool = False,
) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ctx.fail(path, f"expected a number, got {v!r}")
    v = float(v)
    if lo is not None and (v < lo or (strict_lo and v == lo)):
        raise ctx.fail(path, f"must be {'>' if strict_lo else '>='} {lo:g}, got {v:g}")
    if hi is not None and v >= hi:
        raise ctx.fail(path, f"must be < {hi:g}, got {v:g}")
    return v


def _parse_settings(ctx: _Ctx, path: tuple, d: dict) -> dict[str, Any]:
    """Parse the keys shared by the top level and overrides."""
    out: dict[str, Any] = {}
    if "bounds" in d:
        b = _check_keys(ctx, path + ("bounds",), d["bounds"], BOUND_KEYS)
        bd = {}
        for k in BOUND_KEYS:
            if k in b and b[k] is not None:
                hi = 100.0 if k == "max_decrease_pct" else None
                bd[k] = _number(ctx, path + ("bounds", k), b[k], hi=hi)
        out["bounds"] = bd
    if "min_margin_pct" in d:
        out["min_margin_pct"] = _number(
            ctx, path + ("min_margin_pct",), d["min_margin_pct"], lo=None, hi=100.0
        )
    if "parity" in d:
        p = _check_keys(ctx, path + ("parity",), d["parity"], ("max_gap_pct",))
        if "max_gap_pct" not in p:
            raise ctx.fail(path + ("parity",), "missing key 'max_gap_pct'")
        out["parity"] = _number(ctx, path + ("parity", "max_gap_pct"), p["max_gap_pct"])
    if "ladder" in d:
        lad = _check_keys(ctx, path + ("ladder",), d["ladder"], ("step", "ending"))
        step = lad.get("step")
        ending = lad.get("ending")
        if step is None and ending is None:
            raise ctx.fail(path + ("ladder",), "give 'step' and/or 'ending'")
        if step is not None:
            step = _number(ctx, path + ("ladder", "step"), step, strict_lo=True)
        if ending is not None:
            ending = _number(ctx, path + ("ladder", "ending"), ending)
        if step is not None and ending is not None and ending >= step:
            raise ctx.fail(
                path + ("ladder", "ending"), f"ending {ending:g} must be smaller than step {step:g}"
            )
        out["ladder"] = Ladder(step, ending)
    if "inventory" in d:
        if not isinstance(d["inventory"], bool):
            raise ctx.fail(path + ("inventory",), f"expected true or false, got {d['inventory']!r}")
        out["inventory"] = d["inventory"]
    if "min_volume_pct" in d:
        out["min_volume_pct"] = _number(ctx, path + ("min_volume_pct",), d["min_volume_pct"])
    if "max_avg_change_pct" in d:
        out["max_avg_change_pct"] = _number(
            ctx, path + ("max_avg_change_pct",), d["max_avg_change_pct"]
        )
    return out


def _strings(ctx: _Ctx, path: tuple, v: Any) -> tuple[str, ...]:
    vals = v if isinstance(v, list) else [v]
    for i, x in enumerate(vals):
        if isinstance(x, bool) or not isinstance(x, str | int | float):
            raise ctx.fail(
                path + ((i,) if isinstance(v, list) else ()),
                f"expected a value or a list of values, got {x!r}",
            )
    return tuple(str(x) for x in vals)


def _from_dict(d: Any, ctx: _Ctx) -> Constraints:
    if d is None:
        d = {}
    d = _check_keys(ctx, (), d, TOP_KEYS)
    obj = d.get("objective", "profit")
    if obj not in ("profit", "revenue"):
        raise ctx.fail(("objective",), f"expected 'profit' or 'revenue', got {obj!r}")
    horizon = _number(
        ctx, ("horizon_weeks",), d.get("horizon_weeks", 1), strict_lo=True, hi=MAX_WEEKS + 1
    )
    extrap = d.get("max_extrapolation_pct", DEFAULT_EXTRAPOLATION_PCT)
    if extrap is not None:  # null turns the cap off
        extrap = _number(ctx, ("max_extrapolation_pct",), extrap)
    s = _parse_settings(ctx, (), d)
    b = s.get("bounds", {})
    rules = Rules(
        bounds=Bounds(b.get("max_increase_pct"), b.get("max_decrease_pct")),
        min_margin_pct=s.get("min_margin_pct"),
        parity_gap_pct=s.get("parity"),
        ladder=s.get("ladder"),
        inventory=s.get("inventory", False),
    )
    frozen = d.get("frozen") or []
    frozen_items = _strings(ctx, ("frozen",), frozen)
    overrides = []
    ov = d.get("overrides") or []
    if not isinstance(ov, list):
        raise ctx.fail(("overrides",), f"expected a list of {{where: ..., <key>: ...}}, got {ov!r}")
    for i, o in enumerate(ov):
        path = ("overrides", i)
        o = _check_keys(ctx, path, o, OVERRIDE_KEYS)
        if "where" not in o:
            raise ctx.fail(path, "missing key 'where' (e.g. where: {category: bags})")
        w = _check_keys(ctx, path + ("where",), o["where"], WHERE_KEYS)
        if not w:
            raise ctx.fail(path + ("where",), f"give at least one of {', '.join(WHERE_KEYS)}")
        where = {k: _strings(ctx, path + ("where", k), v) for k, v in w.items()}
        settings = _parse_settings(ctx, path, o)
        if "frozen" in o:
            if not isinstance(o["frozen"], bool):
                raise ctx.fail(path + ("frozen",), f"expected true or false, got {o['frozen']!r}")
            settings["frozen"] = o["frozen"]
        if len(o) == 1:
            raise ctx.fail(path, "override sets nothing besides 'where'")
        overrides.append(Override(where, settings, ctx.lines.get(path)))
    return Constraints(
        objective=obj,
        horizon_weeks=horizon,
        rules=rules,
        min_volume_pct=s.get("min_volume_pct"),
        max_avg_change_pct=s.get("max_avg_change_pct"),
        max_extrapolation_pct=extrap,
        frozen_items=frozen_items,
        overrides=tuple(overrides),
        ordering=_orderings(ctx, d.get("ordering")),
        source=ctx.source,
    )


def _orderings(ctx: _Ctx, v: Any) -> tuple[Ordering, ...]:
    if v is None:
        return ()
    if not isinstance(v, list):
        raise ctx.fail(
            ("ordering",), f"expected a list of {{items: [A, B, ...], min_step_pct: N}}, got {v!r}"
        )
    out = []
    for i, o in enumerate(v):
        path = ("ordering", i)
        o = _check_keys(ctx, path, o, ("items", "min_step_pct"))
        items = o.get("items")
        if not isinstance(items, list) or len(items) < 2:
            raise ctx.fail(
                path + ("items",), f"expected a list of at least two item ids, got {items!r}"
            )
        ids = _strings(ctx, path + ("items",), items)
        if len(set(ids)) < len(ids):
            raise ctx.fail(path + ("items",), f"item listed twice in {list(ids)}")
        step = _number(ctx, path + ("min_step_pct",), o.get("min_step_pct", 0))
        out.append(Ordering(ids, step, ctx.lines.get(path)))
    return tuple(out)


def load_constraints(
    path_or_dict: str | os.PathLike[str] | dict[str, Any] | Constraints | None,
) -> Constraints:
    """Parse a constraints file, YAML text or dict into :class:`Constraints`.

    Parameters
    ----------
    path_or_dict : str, PathLike, dict, Constraints or None
        A path or fsspec URL (``az://``, ``s3://``, ``memory://``...) of a YAML file, a
        dict already parsed, or None (no constraints).

    Returns
    -------
    Constraints

    Raises
    ------
    ConfigError
        Missing or unreadable file, YAML syntax error, unknown key (closest valid key
        suggested) or a value of the wrong type; the message names file, key and line.
    UsageError
        A URL whose storage extra is not installed, or an unknown protocol.
    """
    if path_or_dict is None:
        return Constraints()
    if isinstance(path_or_dict, Constraints):
        return path_or_dict
    if isinstance(path_or_dict, dict):
        return _from_dict(path_or_dict, _Ctx("<dict>", {}))
    text = read_config(path_or_dict, what="constraints file")
    return loads_constraints(text, source=display(path_or_dict))


def loads_constraints(text: str, *, source: str = "<string>") -> Constraints:
    """Parse constraints from YAML text (``source`` names it in error messages)."""
    data, ctx = parse_config(text, source)
    return _from_dict(data, ctx)
