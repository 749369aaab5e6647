"""The pipeline config file (YAML): schema, defaults and validation with clear messages.

Sections and keys (every key optional; see ``examples/pipeline.yaml``)::

    db: path                    # the database (``--db`` wins; else $PRICELAB_DB, ./pricelab.duckdb)
    inputs:
      folder: path              # sales.csv|.parquet|.json, items..., costs..., markets..., inventory...
      files: {sales: path, ...} # explicit paths per table (override the folder's)
      replace: true             # a new version of a file replaces rows with the same keys
    estimate:
      model: hierarchical       # ols | poisson | panel | hierarchical | iv
      by: null                  # e.g. "item_id,market"
      instrument: null          # iv only
      slope: item               # panel only
      before: null              # ISO date: fit only weeks before it
      trigger: new_data         # new_data | drift (re-estimate only on a drift alert)
    gate:
      enabled: true             # false: every new estimate goes to production unchecked
      tolerance_wape: 2         # percent (relative) by which WAPE may be worse than production
      tolerance_flags: 5        # points by which the flagged share may grow
      horizon_weeks: 4
      cutoffs: 3
      naive_weeks: 8
    optimize:
      enabled: true
      constraints: null         # constraints YAML
      baseline_weeks: 8
    monitor:
      enabled: true
      as_of: today              # today | data (the Monday after the last sales week) | YYYY-MM-DD
      config: null              # a monitor thresholds YAML ...
      thresholds: {}            # ... or the same thresholds inline

Relative paths are relative to the config file's folder; ``"@sample"`` is the bundled sample
folder (``"@sample/constraints.yaml"`` a file in it). The config itself may be an fsspec URL
(``az://``, ``s3://``, ``memory://``...): its relative input, constraints and monitor paths are
then in the same folder of the object store, and a relative ``db`` (a local DuckDB file) is
relative to the working directory.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import os
from pathlib import Path
from typing import Any

from pricelab.errors import ConfigError, InputFileError

KINDS = ("sales", "items", "costs", "markets", "inventory")
EXTENSIONS = (".csv", ".parquet", ".json")
MODELS = ("ols", "poisson", "panel", "hierarchical", "iv")
TRIGGERS = ("new_data", "drift")

DEFAULTS: dict[str, Any] = {
    "db": None,
    "inputs": {"folder": None, "files": {}, "replace": True},
    "estimate": {"model": "hierarchical", "by": None, "instrument": None, "slope": "item",
                 "before": None, "trigger": "new_data", "engine": "local"},
    "gate": {"enabled": True, "tolerance_wape": 2.0, "tolerance_flags": 5.0, "horizon_weeks": 4,
             "cutoffs": 3, "naive_weeks": 8},
    "optimize": {"enabled": True, "constraints": None, "baseline_weeks": 8},
    "monitor": {"enabled": True, "as_of": "today", "config": None, "thresholds": {}},
}


def _unknown(where: str, key: str, known: Any) -> ConfigError:
    close = difflib.get_close_matches(str(key), list(known), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(known)})"
    return ConfigError(f"{where}: unknown key '{key}'{hint}")


def _path(value: Any, where: str, base: Path | str) -> Any:
    """A local :class:`Path` (relative to ``base``), a storage URL (str) or None.

    ``base`` is a local folder or a URL prefix (a config read from object storage).
    """
    from pricelab.storage import is_url, join

    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: expected a path, got {value!r}")
    if is_url(value):
        return value
    if value == "@sample" or value.startswith("@sample/"):
        from pricelab._resources import sample_dir

        return sample_dir() / value[len("@sample/"):] if value != "@sample" else sample_dir()
    p = Path(os.path.expanduser(value))
    if p.is_absolute():
        return p
    return base / p if isinstance(base, Path) else join(base, value)


def _check(where: str, key: str, value: Any) -> Any:
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise ConfigError(f"{where}.{key}: expected {what}, got {value!r}")

    if value is None and key in ("by", "instrument", "before", "constraints", "config"):
        return None
    if value is None and key in ("as_of", "thresholds"):
        return DEFAULTS["monitor"][key]
    if key in ("enabled", "replace"):
        need(isinstance(value, bool), "true or false")
    elif key in ("tolerance_wape", "tolerance_flags"):
        need(not isinstance(value, bool) and isinstance(value, int | float) and value >= 0,
             "a number >= 0")
        return float(value)
    elif key in ("horizon_weeks", "cutoffs", "naive_weeks", "baseline_weeks"):
        need(not isinstance(value, bool) and isinstance(value, int) and value >= 1,
             "a whole number >= 1")
    elif key == "model":
        need(value in MODELS, f"one of {', '.join(MODELS)}")
    elif key == "trigger":
        need(value in TRIGGERS, f"one of {', '.join(TRIGGERS)}")
    elif key == "engine":
        need(value in ("local", "spark"), "local or spark")
    elif key == "slope":
        need(value in ("item", "common"), "item or common")
    elif key in ("by", "instrument"):
        need(value is None or (isinstance(value, str) and value.strip() != ""), "a string")
    elif key in ("before", "as_of"):
        if isinstance(value, dt.date):
            return value.isoformat()
        if key == "as_of" and value in ("today", "data"):
            return value
        try:
            dt.date.fromisoformat(str(value))
        except ValueError:
            need(False, "an ISO date (YYYY-MM-DD)" + (", today or data" if key == "as_of" else ""))
        return str(value)
    elif key == "thresholds":
        need(isinstance(value, dict), "a mapping of monitor checks")
    return value


def validate_config(doc: Any, source: str = "config",
                    base: Path | str | None = None) -> dict[str, Any]:
    """Defaults overridden by ``doc``; paths resolved against ``base``.

    ``base`` is a local folder (default: the working directory) or a URL prefix; the
    database path is always local, so a URL ``base`` does not apply to ``db``.

    Raises
    ------
    ConfigError
        Unknown section or key (with the closest known one), or a value of the wrong type.
    """
    base = base or Path.cwd()
    cfg = copy.deepcopy(DEFAULTS)
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: expected a mapping of sections ({', '.join(DEFAULTS)})")
    for section, values in doc.items():
        if section not in DEFAULTS:
            raise _unknown(source, section, DEFAULTS)
        if section == "db":
            cfg["db"] = _path(values, f"{source}: db",
                              base if isinstance(base, Path) else Path.cwd())
            continue
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: {section} must be a mapping, got {values!r}")
        for key, value in values.items():
            if key not in DEFAULTS[section]:
                raise _unknown(f"{source}: {section}", key, DEFAULTS[section])
            cfg[section][key] = _check(f"{source}: {section}", key, value)
    inp = cfg["inputs"]
    inp["folder"] = _path(inp["folder"], f"{source}: inputs.folder", base)
    files = inp["files"] or {}
    if not isinstance(files, dict):
        raise ConfigError(f"{source}: inputs.files must map table kinds to paths")
    for kind in files:
        if kind not in KINDS:
            raise _unknown(f"{source}: inputs.files", kind, KINDS)
    inp["files"] = {k: _path(v, f"{source}: inputs.files.{k}", base) for k, v in files.items()
                    if v is not None}
    cfg["optimize"]["constraints"] = _path(cfg["optimize"]["constraints"],
                                           f"{source}: optimize.constraints", base)
    cfg["monitor"]["config"] = _path(cfg["monitor"]["config"], f"{source}: monitor.config", base)
    if cfg["monitor"]["config"] is not None and cfg["monitor"]["thresholds"]:
        raise ConfigError(f"{source}: monitor: give either config (a file) or thresholds, not both")
    from pricelab.monitor import merge_config

    merge_config(cfg["monitor"]["thresholds"] or None, f"{source}: monitor.thresholds")
    return cfg


def load_pipeline_config(config: str | os.PathLike[str] | dict[str, Any] | None) -> dict[str, Any]:
    """Read and validate a pipeline config (a YAML path or URL, or an already parsed mapping).

    None reads ``$PRICELAB_PIPELINE_CONFIG``, else ``./pipeline.yaml``.

    Raises
    ------
    InputFileError
        The file does not exist or cannot be read.
    ConfigError
        YAML syntax error or an invalid config (see :func:`validate_config`).
    UsageError
        A URL whose storage extra is not installed, or an unknown protocol.
    """
    if isinstance(config, dict):
        return validate_config(config, "config")
    from pricelab.io import parse_yaml, read_text
    from pricelab.storage import display, exists, normalize

    if config is None:
        config = os.environ.get("PRICELAB_PIPELINE_CONFIG") or "pipeline.yaml"
        if not exists(config):
            raise InputFileError(f"{display(config)}: no pipeline config; pass --config FILE "
                                 "(see examples/pipeline.yaml)")
    name = display(config)
    text = read_text(config, what="pipeline config")
    doc = parse_yaml(text, name)
    norm = normalize(config)
    base = norm.resolve().parent if isinstance(norm, Path) else norm.rsplit("/", 1)[0]
    return validate_config(doc, name, base)


def input_files(cfg: dict[str, Any]) -> dict[str, Any]:
    """The input file of each table kind: explicit ``files`` over the ``folder``'s.

    Local paths or storage URLs (``az://``, ``s3://``...; see :mod:`pricelab.storage`).

    Raises
    ------
    InputFileError
        The folder or a listed file does not exist, or no input file is configured.
    """
    from pricelab import storage

    inp = cfg["inputs"]
    out: dict[str, Any] = {}
    folder = inp["folder"]
    if folder is not None:
        if not storage.is_dir(folder):
            raise InputFileError(f"inputs.folder {storage.display(folder)}: folder not found")
        for kind in KINDS:
            found = [f for f in (storage.join(folder, f"{kind}{ext}") for ext in EXTENSIONS)
                     if storage.is_file(f)]
            if len(found) > 1:
                raise InputFileError(f"inputs.folder {storage.display(folder)}: both "
                                     f"{file_name(found[0])} and {file_name(found[1])}; keep one")
            if found:
                out[kind] = found[0]
    for kind, path in inp["files"].items():
        if not storage.is_file(path):
            raise InputFileError(f"inputs.files.{kind} {storage.display(path)}: file not found")
        out[kind] = path
    if not out:
        where = f"folder {storage.display(folder)}" if folder is not None else "the config"
        raise InputFileError(f"no input files in {where}: expected sales.csv (or .parquet) and "
                             "optionally items, costs, markets, inventory")
    return out


def file_name(path: Any) -> str:
    """The last part of a local path or URL."""
    return str(path).rstrip("/").rsplit("/", 1)[-1]
