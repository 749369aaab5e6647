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
      plan:
        enabled: true
        max_age_days: 14        # alert when the latest plan is older than this at as-of

The file may hold other sections; only ``monitor`` is read. A file without a ``monitor``
key is read as the section itself.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from pricelab.errors import ConfigError
from pricelab.io import parse_yaml, read_text
from pricelab.storage import display

DEFAULTS: dict[str, dict[str, Any]] = {
    "freshness": {"enabled": True, "max_age_days": 14},
    "volume": {"enabled": True, "trailing_weeks": 26, "min_weeks": 8, "max_robust_z": 4.0,
               "seasonal": "auto"},
    "drift": {"enabled": True, "max_share": 0.10},
    "fit": {"enabled": True, "max_share": 0.20,
            "flags": ["failed", "no_sales", "no_price_variation", "few_obs", "weak_instrument"]},
    "plan": {"enabled": True, "max_age_days": 14},
}

_INT_KEYS = {"max_age_days", "trailing_weeks", "min_weeks"}
_SHARE_KEYS = {"max_share"}


def _check_value(where: str, key: str, value: Any, default: Any) -> Any:
    if key == "enabled":
        if not isinstance(value, bool):
            raise ConfigError(f"{where}.enabled: expected true or false, got {value!r}")
        return value
    if key == "seasonal":
        if value not in ("auto", True, False):
            raise ConfigError(f"{where}.seasonal: expected auto, true or false, got {value!r}")
        return value
    if key == "flags":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}.flags: expected a list of flag names, got {value!r}")
        return list(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}.{key}: expected a number, got {value!r}")
    if key in _INT_KEYS and (value != int(value) or value < 1):
        raise ConfigError(f"{where}.{key}: expected a whole number >= 1, got {value!r}")
    if key in _SHARE_KEYS and not 0 <= value <= 1:
        raise ConfigError(f"{where}.{key}: expected a share between 0 and 1, got {value!r}")
    if value <= 0 and key not in _SHARE_KEYS:
        raise ConfigError(f"{where}.{key}: must be > 0, got {value!r}")
    return int(value) if key in _INT_KEYS else float(value) if isinstance(default, float) else value


def merge_config(section: dict[str, Any] | None, source: str = "config") -> dict[str, dict[str, Any]]:
    """Defaults overridden by ``section``; unknown checks or keys raise :class:`ConfigError`."""
    cfg = copy.deepcopy(DEFAULTS)
    if section is None:
        return cfg
    if not isinstance(section, dict):
        raise ConfigError(f"{source}: monitor section must be a mapping of check names")
    for check, values in section.items():
        if check not in cfg:
            raise ConfigError(f"{source}: unknown monitor check {check!r} "
                              f"(known: {', '.join(DEFAULTS)})")
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: monitor.{check} must be a mapping, got {values!r}")
        for key, value in values.items():
            if key not in cfg[check]:
                raise ConfigError(f"{source}: unknown key monitor.{check}.{key} "
                                  f"(known: {', '.join(DEFAULTS[check])})")
            cfg[check][key] = _check_value(f"{source}: monitor.{check}", key, value,
                                           DEFAULTS[check][key])
    return cfg


def load_config(path: str | os.PathLike[str] | None) -> dict[str, dict[str, Any]]:
    """Monitoring thresholds from the ``monitor`` section of a YAML file (defaults when None).

    ``path`` may be an fsspec URL (``az://``, ``s3://``, ``memory://``...).

    Raises
    ------
    InputFileError
        The file does not exist or cannot be read.
    ConfigError
        YAML syntax error, unknown check or key, or a value of the wrong type.
    UsageError
        A URL whose storage extra is not installed, or an unknown protocol.
    """
    if path is None:
        return merge_config(None)
    name = display(path)
    text = read_text(path, what="config file")
    doc = parse_yaml(text, name)
    if doc is None:
        return merge_config(None)
    if not isinstance(doc, dict):
        raise ConfigError(f"{name}: expected a mapping with a 'monitor' section")
    section = doc.get("monitor", doc)
    return merge_config(section, name)
