"""Scenario files: parsing and checking the YAML of ``pricelab simulate --scenario``.

A scenario file (contract, "Scenario file") names a baseline window, a horizon and one or
more scenarios; each scenario is an ordered list of price changes, each with a ``where``
filter and one action. Errors name the file, the key and the line.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from pricelab.configfile import MAX_WEEKS, parse_config, read_config
from pricelab.configfile import ConfigContext as _Ctx
from pricelab.configfile import check_keys as _keys
from pricelab.errors import ConfigError
from pricelab.urls import display

TOP_KEYS = ("baseline_weeks", "horizon_weeks", "baseline_price", "seasonality", "scenarios")
SEASONALITY = ("auto", "off")
BASELINE_PRICES = ("average", "current")
SCENARIO_KEYS = ("name", "description", "changes", "plan_run")
CHANGE_KEYS = ("where", "price_change_pct", "price", "plan_run")
ACTIONS = ("price_change_pct", "price", "plan_run")
FILTER_KEYS = ("market", "category", "brand", "boutique_id", "item_id")


@dataclass(frozen=True)
class Change:
    """One price change: rows matching every ``where`` entry get the action.

    Attributes
    ----------
    where : dict[str, tuple[str, ...]]
        Filter column -> accepted values (empty dict: every row).
    action : str
        ``price_change_pct`` (relative to the baseline price), ``price`` (a fixed price in
        the market's currency) or ``plan_run`` (the recommended prices of a stored
        optimize run: ``latest`` or a run id).
    value : float or str
        The percentage, the price or the run reference.
    line : int or None
        Line of the change in the scenario file (for messages).
    """

    where: dict[str, tuple[str, ...]]
    action: str
    value: float | str
    line: int | None = None

    def describe(self) -> str:
        """The filter as short text, e.g. ``market=US, category=shoes|bags``."""
        if not self.where:
            return "(all rows)"
        return ", ".join(f"{k}={'|'.join(v)}" for k, v in self.where.items())


@dataclass(frozen=True)
class Scenario:
    """A named list of changes; later changes override earlier ones for the same row."""

    name: str
    changes: tuple[Change, ...]
    description: str = ""


@dataclass(frozen=True)
class ScenarioFile:
    """A parsed scenario file."""

    scenarios: tuple[Scenario, ...]
    baseline_weeks: int = 8
    horizon_weeks: int = 4
    baseline_price: str = "average"
    source: str = "<dict>"
    plan_refs: tuple[str, ...] = field(default=())
    seasonality: str = "auto"

    def to_dict(self) -> dict[str, Any]:
        """The file as plain data (for run parameters and ``--json``)."""
        return {
            "baseline_weeks": self.baseline_weeks,
            "horizon_weeks": self.horizon_weeks,
            "baseline_price": self.baseline_price,
            "seasonality": self.seasonality,
            "scenarios": [
                {
                    "name": s.name,
                    "changes": [
                        {"where": {k: list(v) for k, v in c.where.items()}, c.action: c.value}
                        for c in s.changes
                    ],
                }
                for s in self.scenarios
            ],
        }


def _weeks(ctx: _Ctx, path: tuple, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_WEEKS:
        raise ctx.fail(path, f"expected a whole number of weeks from 1 to {MAX_WEEKS}, got {v!r}")
    return int(v)


def _number(ctx: _Ctx, path: tuple, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ctx.fail(path, f"expected a number, got {v!r}")
    return float(v)


def _scalar_text(ctx: _Ctx, path: tuple, v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, str | int) or (isinstance(v, str) and not v):
        raise ctx.fail(path, f"expected a non-empty text value, got {v!r}")
    return str(v)


def _where(ctx: _Ctx, path: tuple, d: Any) -> dict[str, tuple[str, ...]]:
    if d is None:
        return {}
    _keys(ctx, path, d, FILTER_KEYS)
    out: dict[str, tuple[str, ...]] = {}
    for k, v in d.items():
        vals = v if isinstance(v, list) else [v]
        if not vals:
            raise ctx.fail(path + (k,), "empty list: give at least one value")
        out[k] = tuple(
            _scalar_text(ctx, path + (k, i) if isinstance(v, list) else path + (k,), x)
            for i, x in enumerate(vals)
        )
    return out


def _change(ctx: _Ctx, path: tuple, d: Any) -> Change:
    _keys(ctx, path, d, CHANGE_KEYS)
    acts = [a for a in ACTIONS if a in d]
    if len(acts) != 1:
        got = ", ".join(acts) if acts else "none"
        raise ctx.fail(path, f"each change needs exactly one of {', '.join(ACTIONS)} (got {got})")
    act = acts[0]
    p = path + (act,)
    value: float | str
    if act == "price_change_pct":
        value = _number(ctx, p, d[act])
        if value <= -100:
            raise ctx.fail(p, f"must be > -100 (a price stays positive), got {value:g}")
    elif act == "price":
        value = _number(ctx, p, d[act])
        if value <= 0:
            raise ctx.fail(p, f"must be > 0, got {value:g}")
    else:
        value = _scalar_text(ctx, p, d[act])
    return Change(_where(ctx, path + ("where",), d.get("where")), act, value, ctx.line(path))


def _from_dict(data: Any, ctx: _Ctx) -> ScenarioFile:
    d = _keys(ctx, (), data, TOP_KEYS)
    if "scenarios" not in d:
        raise ctx.fail(("scenarios",), "missing: list at least one scenario")
    bw = _weeks(ctx, ("baseline_weeks",), d.get("baseline_weeks", 8))
    hw = _weeks(ctx, ("horizon_weeks",), d.get("horizon_weeks", 4))
    bp = d.get("baseline_price", "average")
    if bp not in BASELINE_PRICES:
        raise ctx.fail(
            ("baseline_price",), f"expected one of {', '.join(BASELINE_PRICES)}, got {bp!r}"
        )
    sa = d.get("seasonality", "auto")
    sa = "off" if sa is False else sa  # YAML 1.1 reads a bare `off` as false
    if sa not in SEASONALITY:
        raise ctx.fail(("seasonality",), f"expected one of {', '.join(SEASONALITY)}, got {sa!r}")
    raw = d["scenarios"]
    if not isinstance(raw, list) or not raw:
        raise ctx.fail(("scenarios",), f"expected a non-empty list of scenarios, got {raw!r}")
    scenarios: list[Scenario] = []
    seen: set[str] = set()
    refs: list[str] = []
    for i, s in enumerate(raw):
        path = ("scenarios", i)
        _keys(ctx, path, s, SCENARIO_KEYS)
        if "name" not in s:
            raise ctx.fail(path, "missing key 'name'")
        name = _scalar_text(ctx, path + ("name",), s["name"])
        if name in seen:
            raise ctx.fail(path + ("name",), f"duplicate scenario name '{name}'")
        seen.add(name)
        changes: list[Change] = []
        if "plan_run" in s:  # contract shorthand: apply a whole plan
            ref = _scalar_text(ctx, path + ("plan_run",), s["plan_run"])
            changes.append(Change({}, "plan_run", ref, ctx.line(path + ("plan_run",))))
        raw_changes = s.get("changes", [])
        if not isinstance(raw_changes, list):
            raise ctx.fail(path + ("changes",), f"expected a list of changes, got {raw_changes!r}")
        for j, c in enumerate(raw_changes):
            changes.append(_change(ctx, path + ("changes", j), c))
        if not changes:
            raise ctx.fail(path, "a scenario needs 'changes' or 'plan_run'")
        refs += [str(c.value) for c in changes if c.action == "plan_run"]
        desc = s.get("description", "")
        if not isinstance(desc, str):
            raise ctx.fail(path + ("description",), f"expected text, got {desc!r}")
        scenarios.append(Scenario(name, tuple(changes), desc))
    return ScenarioFile(
        tuple(scenarios),
        bw,
        hw,
        bp,
        ctx.source,
        plan_refs=tuple(dict.fromkeys(refs)),
        seasonality=sa,
    )


def loads_scenario(text: str, *, source: str = "<string>") -> ScenarioFile:
    """Parse a scenario file from YAML text (``source`` names it in error messages)."""
    data, ctx = parse_config(text, source)
    if data is None:
        raise ConfigError(f"{source}: scenario file is empty; it needs a 'scenarios' list")
    return _from_dict(data, ctx)


def load_scenario(
    path_or_dict: str | os.PathLike[str] | dict[str, Any] | ScenarioFile,
) -> ScenarioFile:
    """Parse a scenario file, or a dict of the same shape, into a :class:`ScenarioFile`.

    Parameters
    ----------
    path_or_dict : str, PathLike, dict or ScenarioFile
        A path or fsspec URL (``az://``, ``s3://``, ``memory://``...) of a YAML file, or
        the parsed content (``baseline_weeks``, ``horizon_weeks``, ``scenarios``).

    Returns
    -------
    ScenarioFile

    Raises
    ------
    ConfigError
        Missing or unreadable file, YAML syntax error, unknown key (the closest valid key
        is suggested), a missing action or a value of the wrong type; the message names
        the file, the key and the line.
    UsageError
        A URL whose storage extra is not installed, or an unknown protocol.
    """
    if isinstance(path_or_dict, ScenarioFile):
        return path_or_dict
    if isinstance(path_or_dict, dict):
        return _from_dict(path_or_dict, _Ctx("<dict>", {}))
    text = read_config(path_or_dict, what="scenario file")
    return loads_scenario(text, source=display(path_or_dict))
