"""The markdown constraints file (``markdown.yaml``): ladder, horizon, rules, salvage, targets.

::

    weeks: 12                      # horizon (or --season-end DATE in database mode)
    ladder: [0, 10, 20, 30, 40, 50] # percent off full price
    monotone: true                 # a price never goes back up (default)
    min_weeks_between_changes: 2   # a new price holds at least this many weeks
    max_discount_pct: 50
    salvage: {pct_of_cost: 30}     # leftover units are worth 30% of unit cost
    sell_through_min_pct: 60       # every category sells at least 60% of its stock
    overrides:
      category:
        bags: {max_discount_pct: 30, sell_through_min_pct: 40}
      market:                      # a market sells at least 70% of its stock (its own
        US: {sell_through_min_pct: 70}  # plus its full-price demand share of shared stock)
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from typing import Any

from pricelab.configfile import ConfigContext, check_keys, parse_config, read_config

KEYS = (
    "weeks",
    "season_end",
    "ladder",
    "monotone",
    "min_weeks_between_changes",
    "max_discount_pct",
    "salvage",
    "sell_through_min_pct",
    "overrides",
    "gap_tolerance",
    "milp_max_pools",
    "milp_nodes",
    "milp_seconds",
)
RULE_KEYS = ("max_discount_pct", "sell_through_min_pct")
DEFAULT_LADDER = (0.0, 10.0, 20.0, 30.0, 40.0, 50.0)


@dataclass(frozen=True)
class MarkdownConfig:
    """Everything the markdown solver reads from the constraints file."""

    weeks: int | None = None
    season_end: dt.date | None = None
    ladder: tuple[float, ...] = DEFAULT_LADDER
    monotone: bool = True
    min_weeks_between_changes: int = 1
    max_discount_pct: float | None = None
    salvage_pct_of_cost: float = 0.0
    sell_through_min_pct: float | None = None
    category_rules: dict[str, dict[str, float]] = field(default_factory=dict)
    market_rules: dict[str, dict[str, float]] = field(default_factory=dict)
    gap_tolerance: float = 1e-4
    milp_max_pools: int = 50
    milp_nodes: int = 100
    milp_seconds: float | None = None  # None: node limits (and a 900 s guard) only

    def max_discount_for(self, category: str | None) -> float:
        """The deepest discount allowed for ``category`` (the ladder's last step if none)."""
        rule = self.category_rules.get(category or "", {})
        cap = rule.get("max_discount_pct", self.max_discount_pct)
        return float(self.ladder[-1]) if cap is None else float(cap)

    def target_for(self, category: str | None) -> float | None:
        """The minimum sell-through (percent of stock) of ``category``, if any."""
        rule = self.category_rules.get(category or "", {})
        v = rule.get("sell_through_min_pct", self.sell_through_min_pct)
        return None if v is None else float(v)

    def market_target_for(self, market: str) -> float | None:
        """The minimum sell-through (percent of the market's stock) of ``market``, if any."""
        v = self.market_rules.get(market, {}).get("sell_through_min_pct")
        return None if v is None else float(v)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (for lineage)."""
        return {
            "weeks": self.weeks,
            "season_end": self.season_end.isoformat() if self.season_end else None,
            "ladder": list(self.ladder),
            "monotone": self.monotone,
            "min_weeks_between_changes": self.min_weeks_between_changes,
            "max_discount_pct": self.max_discount_pct,
            "salvage": {"pct_of_cost": self.salvage_pct_of_cost},
            "sell_through_min_pct": self.sell_through_min_pct,
            "overrides": {"category": self.category_rules, "market": self.market_rules},
            "gap_tolerance": self.gap_tolerance,
        }


def _number(ctx: ConfigContext, path: tuple, v: Any, lo: float, hi: float) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= float(v) <= hi:
        raise ctx.fail(path, f"expected a number in [{lo:g}, {hi:g}], got {v!r}")
    return float(v)


def _int(ctx: ConfigContext, path: tuple, v: Any, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ctx.fail(path, f"expected a whole number >= {lo}, got {v!r}")
    return int(v)


def _ladder(ctx: ConfigContext, v: Any) -> tuple[float, ...]:
    if not isinstance(v, list) or not v:
        raise ctx.fail(("ladder",), f"expected a list of percents off, e.g. [0, 10, 20], got {v!r}")
    steps = tuple(_number(ctx, ("ladder", i), x, 0.0, 99.0) for i, x in enumerate(v))
    if steps[0] != 0.0:
        raise ctx.fail(("ladder", 0), "the ladder starts at 0 (full price)")
    if any(b <= a for a, b in zip(steps, steps[1:], strict=False)):
        raise ctx.fail(("ladder",), f"steps must increase strictly, got {list(steps)}")
    return steps


def _overrides(ctx: ConfigContext, v: Any, kind: str) -> dict[str, dict[str, float]]:
    """``overrides.<kind>`` (category or market) as name -> rules."""
    v = check_keys(ctx, ("overrides",), v, ("category", "market"))
    cats = v.get(kind) or {}
    if not isinstance(cats, dict):
        raise ctx.fail(("overrides", kind), f"expected a mapping {kind} -> rules, got {cats!r}")
    keys = RULE_KEYS if kind == "category" else ("sell_through_min_pct",)
    out = {}
    for c, r in cats.items():
        r = check_keys(ctx, ("overrides", kind, c), r, keys)
        out[str(c)] = {
            k: _number(ctx, ("overrides", kind, c, k), x, 0.0, 100.0) for k, x in r.items()
        }
    return out


def parse_markdown_config(data: Any, ctx: ConfigContext) -> MarkdownConfig:
    """Check and convert parsed YAML; every error names the file, line and key."""
    if data is None:
        data = {}
    d = check_keys(ctx, (), data, KEYS)
    out: dict[str, Any] = {}
    if "weeks" in d:
        out["weeks"] = _int(ctx, ("weeks",), d["weeks"], 1)
    if "season_end" in d:
        v = d["season_end"]
        try:
            out["season_end"] = v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v))
        except ValueError:
            raise ctx.fail(("season_end",), f"expected a date YYYY-MM-DD, got {v!r}") from None
    if "ladder" in d:
        out["ladder"] = _ladder(ctx, d["ladder"])
    if "monotone" in d:
        if not isinstance(d["monotone"], bool):
            raise ctx.fail(("monotone",), f"expected true or false, got {d['monotone']!r}")
        out["monotone"] = d["monotone"]
    if "min_weeks_between_changes" in d:
        out["min_weeks_between_changes"] = _int(
            ctx, ("min_weeks_between_changes",), d["min_weeks_between_changes"], 1
        )
    for k in RULE_KEYS:
        if k in d and d[k] is not None:
            out[k] = _number(ctx, (k,), d[k], 0.0, 100.0)
    if "salvage" in d:
        s = check_keys(ctx, ("salvage",), d["salvage"], ("pct_of_cost",))
        if "pct_of_cost" in s:
            out["salvage_pct_of_cost"] = _number(
                ctx, ("salvage", "pct_of_cost"), s["pct_of_cost"], 0.0, 1000.0
            )
    if "overrides" in d:
        out["category_rules"] = _overrides(ctx, d["overrides"], "category")
        out["market_rules"] = _overrides(ctx, d["overrides"], "market")
    if "gap_tolerance" in d:
        out["gap_tolerance"] = _number(ctx, ("gap_tolerance",), d["gap_tolerance"], 0.0, 1.0)
    if "milp_max_pools" in d:
        out["milp_max_pools"] = _int(ctx, ("milp_max_pools",), d["milp_max_pools"], 0)
    if "milp_nodes" in d:
        out["milp_nodes"] = _int(ctx, ("milp_nodes",), d["milp_nodes"], 1)
    if "milp_seconds" in d:  # null (default): node limits only, the same plan on any machine
        v = d["milp_seconds"]
        out["milp_seconds"] = None if v is None else _number(ctx, ("milp_seconds",), v, 0.0, 1e6)
    return MarkdownConfig(**out)


def load_markdown_config(
    source: str | os.PathLike[str] | dict[str, Any] | None,
) -> MarkdownConfig:
    """A :class:`MarkdownConfig` from a YAML path/URL, a dict, or None (all defaults)."""
    if source is None:
        return MarkdownConfig()
    if isinstance(source, dict):
        return parse_markdown_config(source, ConfigContext("constraints", {}))
    text = read_config(source, "constraints file")
    data, ctx = parse_config(text, str(source))
    return parse_markdown_config(data, ctx)
