"""Monitoring thresholds: documented defaults, overridable from a YAML ``monitor:`` section.

Defaults (every key optional in the file)::

    monitor:
      freshness:
        enabled: true
        max_age_days: 14        # alert when as-of is more than 14 days after the latest week
      volume:
        enabled: true
        trailing_weeks: 26      # weeks before the last one that define "normal"
        min_weeks: 8            # fewer trailing weeks: the market is skipped
        max_robust_z: 4.0       # alert when |robust z| of the last week exceeds this
        seasonal: auto          # auto | true | false: compare year-over-year log ratios
      drift:
        enabled: true
        max_share: 0.10         # alert when more than 10% of items' intervals no longer overlap
      fit:
        enabled: true
        max_share: 0.20         # alert when more than 20% of groups are flagged or failed
        flags: [failed, no_sales, no_price_variation, few_obs, weak_instrument]
                                # (pricelab.elasticity.results.MONITOR_FIT_FLAGS)
      plan:
        enabled: true
        max_age_days: 14        # alert when the latest plan is older than this at as-of

The file may hold other sections; only ``monitor`` is read. A file without a ``monitor``
key is read as the section itself. Errors name the file, the line and the dotted key, with
the closest known key suggested, e.g.
``m.yaml, line 3: monitor.freshness.max_age: unknown key 'max_age'; did you mean 'max_age_days'?``
"""

from __future__ import annotations

import copy
import math
import os
from typing import Any

from pricelab.configfile import ConfigContext, check_keys, parse_config
from pricelab.elasticity.results import MONITOR_FIT_FLAGS
from pricelab.io import read_text
from pricelab.urls import display

DEFAULTS: dict[str, dict[str, Any]] = {
    "freshness": {"enabled": True, "max_age_days": 14},
    "volume": {
        "enabled": True,
        "trailing_weeks": 26,
        "min_weeks": 8,
        "max_robust_z": 4.0,
        "seasonal": "auto",
    },
    "drift": {"enabled": True, "max_share": 0.10},
    "fit": {"enabled": True, "max_share": 0.20, "flags": list(MONITOR_FIT_FLAGS)},
    "plan": {"enabled": True, "max_age_days": 14},
}

_INT_KEYS = {"max_age_days", "trailing_weeks", "min_weeks"}
_SHARE_KEYS = {"max_share"}


def _flags(ctx: ConfigContext, path: tuple, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ctx.fail(path, f"expected a list of flag names, got {value!r}")
    for i, v in enumerate(value):
        if not isinstance(v, str) or not v.strip():
            raise ctx.fail(path + (i,), f"expected a flag name, got {v!r}")
    return list(value)


def _check_value(ctx: ConfigContext, path: tuple, value: Any, default: Any) -> Any:
    key = path[-1]
    if key == "enabled":
        if not isinstance(value, bool):
            raise ctx.fail(path, f"expected true or false, got {value!r}")
        return value
    if key == "seasonal":
        if value != "auto" and not isinstance(value, bool):
            raise ctx.fail(path, f"expected auto, true or false, got {value!r}")
        return value
    if key == "flags":
        return _flags(ctx, path, value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ctx.fail(path, f"expected a number, got {value!r}")
    if not math.isfinite(value):
        raise ctx.fail(path, f"expected a finite number, got {value!r}")
    if key in _INT_KEYS and (value != int(value) or value < 1):
        raise ctx.fail(path, f"expected a whole number >= 1, got {value!r}")
    if key in _SHARE_KEYS and not 0 <= value <= 1:
        raise ctx.fail(path, f"expected a share between 0 and 1, got {value!r}")
    if value <= 0 and key not in _SHARE_KEYS:
        raise ctx.fail(path, f"must be > 0, got {value!r}")
    return int(value) if key in _INT_KEYS else float(value) if isinstance(default, float) else value


def merge_config(
    section: dict[str, Any] | None,
    source: str = "config",
    *,
    ctx: ConfigContext | None = None,
    path: tuple = ("monitor",),
) -> dict[str, dict[str, Any]]:
    """Defaults overridden by ``section`` (the ``monitor`` mapping of checks and thresholds).

    Parameters
    ----------
    section : dict or None
        ``{check: {key: value}}``; None (or a None check) keeps the defaults.
    source : str
        Names the file in error messages when ``ctx`` is not given.
    ctx : ConfigContext, optional
        The file's name and key lines (:func:`pricelab.configfile.parse_config`), for
        messages with line numbers; ``source`` is then unused.
    path : tuple
        Where ``section`` sits in the file (``("monitor",)``; ``()`` for a file that is the
        section itself; ``("monitor", "thresholds")`` in a pipeline config).

    Returns
    -------
    dict
        Every check's settings, defaults filled in.

    Raises
    ------
    ConfigError
        An unknown check or key (the closest known one suggested) or a value of the wrong
        type; the message names the file, the dotted key and its line.
    """
    ctx = ctx or ConfigContext(source, {})
    cfg = copy.deepcopy(DEFAULTS)
    if section is None:
        return cfg
    check_keys(ctx, path, section, tuple(DEFAULTS), what="monitor check")
    for check, values in section.items():
        if values is None:
            continue
        check_keys(ctx, path + (check,), values, tuple(DEFAULTS[check]))
        for key, value in values.items():
            cfg[check][key] = _check_value(ctx, path + (check, key), value, DEFAULTS[check][key])
    vol = cfg["volume"]
    if vol["min_weeks"] > vol["trailing_weeks"]:
        given = section.get("volume") or {}
        key = "min_weeks" if "min_weeks" in given else "trailing_weeks"
        raise ctx.fail(
            path + ("volume", key),
            f"min_weeks ({vol['min_weeks']}) exceeds trailing_weeks "
            f"({vol['trailing_weeks']}): the volume check would never run",
        )
    return cfg


def load_config(path: str | os.PathLike[str] | None) -> dict[str, dict[str, Any]]:
    """Monitoring thresholds from the ``monitor`` section of a YAML file (defaults when None).

    ``path`` may be an fsspec URL (``az://``, ``s3://``, ``memory://``...).

    Raises
    ------
    InputFileError
        The file does not exist or cannot be read.
    ConfigError
        YAML syntax error, unknown check or key, or a value of the wrong type; the message
        names the file, the dotted key and its line.
    UsageError
        A URL whose storage extra is not installed, or an unknown protocol.
    """
    if path is None:
        return merge_config(None)
    name = display(path)
    text = read_text(path, what="config file")
    doc, ctx = parse_config(text, name)
    if doc is None:
        return merge_config(None)
    if not isinstance(doc, dict):
        raise ctx.fail((), f"expected a mapping with a 'monitor' section, got {doc!r}")
    if "monitor" in doc:
        return merge_config(doc["monitor"], name, ctx=ctx, path=("monitor",))
    # no monitor section: the file is the section (a misspelt 'monitor:' gets a hint)
    check_keys(ctx, (), doc, (*DEFAULTS, "monitor"))
    return merge_config(doc, name, ctx=ctx, path=())
