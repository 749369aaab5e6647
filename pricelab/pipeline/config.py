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
      min_improvement_wape: 1   # percent (relative) by which WAPE must beat production's
                                # (a tie keeps production)
      refresh: true             # production's settings re-estimated on new inputs replace it
      tolerance_flags: 5        # points by which the flagged share may grow
      horizon_weeks: 4
      cutoffs: 3
      naive_weeks: 8
    optimize:
      enabled: true
      constraints: null         # constraints YAML
      baseline_weeks: 8
      allow_conflicts: false    # rows whose constraints conflict stay at current price; the
                                # step fails (exit 1, plan written) unless this is true
      output: null              # export the production plan here every run (CSV, Parquet or
                                # JSON by extension; a path or an az://, s3://, gs:// URL)
    monitor:
      enabled: true
      as_of: today              # today | data (the Monday after the last sales week) | YYYY-MM-DD
      config: null              # a monitor thresholds YAML ...
      thresholds: {}            # ... or the same thresholds inline
    report:
      output: null              # write the HTML report of the production plan here every run
                                # (a .html path or an az://, s3://, gs:// URL)
    mlflow: null                # log the runs (gate, promotion, monitor, pipeline too) to
                                # MLflow: true, or {tracking_uri, experiment, strict}; null:
                                # $PRICELAB_MLFLOW decides; false: off

Relative paths are relative to the config file's folder; ``"@sample"`` is the bundled sample
folder (``"@sample/constraints.yaml"`` a file in it). The config itself may be an fsspec URL
(``az://``, ``s3://``, ``memory://``...): its relative input, constraints and monitor paths are
then in the same folder of the object store, and a relative ``db`` (a local DuckDB file) is
relative to the working directory.

Errors name the file, the line and the dotted key, with the closest known key or value
suggested, e.g. ``p.yaml, line 4: gate.tolerance_flag: unknown key 'tolerance_flag'; did you mean
'tolerance_flags'?``
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import math
import os
from pathlib import Path
from typing import Any

from pricelab.configfile import ConfigContext, check_keys, parse_config
from pricelab.errors import InputFileError
from pricelab.pipeline.inputs import KINDS

MODELS = ("ols", "poisson", "panel", "hierarchical", "iv")
TRIGGERS = ("new_data", "drift")

DEFAULTS: dict[str, Any] = {
    "db": None,
    "inputs": {"folder": None, "files": {}, "replace": True},
    "estimate": {
        "model": "hierarchical",
        "by": None,
        "instrument": None,
        "slope": "item",
        "before": None,
        "trigger": "new_data",
        "engine": "local",
    },
    "gate": {
        "enabled": True,
        "min_improvement_wape": 1.0,
        "tolerance_flags": 5.0,
        "refresh": True,
        "horizon_weeks": 4,
        "cutoffs": 3,
        "naive_weeks": 8,
    },
    "optimize": {
        "enabled": True,
        "constraints": None,
        "baseline_weeks": 8,
        "allow_conflicts": False,
        "output": None,
    },
    "monitor": {"enabled": True, "as_of": "today", "config": None, "thresholds": {}},
    "report": {"output": None},
    "mlflow": None,
}
#: keys of a ``mlflow:`` mapping (:func:`pricelab.tracking.resolve_mlflow`)
MLFLOW_KEYS = ("tracking_uri", "experiment", "strict")

_CHOICES: dict[str, tuple[Any, ...]] = {
    "model": MODELS,
    "trigger": TRIGGERS,
    "engine": ("local", "spark"),
    "slope": ("item", "common"),
}
_WEEKS = ("horizon_weeks", "cutoffs", "naive_weeks", "baseline_weeks")
_NULLABLE = ("by", "instrument", "before", "constraints", "config", "folder", "output")


def _path(ctx: ConfigContext, path: tuple, value: Any, base: Path | str) -> Any:
    """A local :class:`Path` (relative to ``base``), a storage URL (str) or None.

    ``base`` is a local folder or a URL prefix (a config read from object storage).
    """
    from pricelab.urls import is_url, join

    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ctx.fail(path, f"expected a path, got {value!r}")
    if is_url(value):
        return value
    if value == "@sample" or value.startswith("@sample/"):
        from pricelab._resources import sample_dir

        return sample_dir() / value[len("@sample/") :] if value != "@sample" else sample_dir()
    p = Path(os.path.expanduser(value))
    if p.is_absolute():
        return p
    return base / p if isinstance(base, Path) else join(base, value)


def _choice(ctx: ConfigContext, path: tuple, value: Any, options: tuple[Any, ...]) -> Any:
    if isinstance(value, str) and value in options:
        return value
    close = difflib.get_close_matches(str(value), options, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ctx.fail(path, f"expected one of {', '.join(options)}, got {value!r}{hint}")


def _date(ctx: ConfigContext, path: tuple, value: Any, words: tuple[str, ...] = ()) -> str:
    """An ISO date (``YYYY-MM-DD``, as text) or one of ``words``."""
    if value in words:
        return str(value)
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            pass
    extra = f", {' or '.join(words)}" if words else ""
    raise ctx.fail(path, f"expected an ISO date (YYYY-MM-DD){extra}, got {value!r}")


def _check(ctx: ConfigContext, path: tuple, value: Any) -> Any:
    """The checked value of ``section.key`` (``path``); paths are resolved later."""
    key = path[-1]

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise ctx.fail(path, f"expected {what}, got {value!r}")

    if value is None and key in _NULLABLE:
        return None
    if value is None and key in ("as_of", "thresholds"):
        return copy.deepcopy(DEFAULTS["monitor"][key])
    if key in ("enabled", "replace", "refresh", "allow_conflicts"):
        need(isinstance(value, bool), "true or false")
    elif key in ("min_improvement_wape", "tolerance_flags"):
        need(
            not isinstance(value, bool)
            and isinstance(value, int | float)
            and math.isfinite(value)
            and value >= 0
            and (key == "tolerance_flags" or value < 100),
            "a number >= 0" + ("" if key == "tolerance_flags" else " and below 100"),
        )
        return float(value)
    elif key in _WEEKS:
        need(
            not isinstance(value, bool) and isinstance(value, int) and value >= 1,
            "a whole number >= 1",
        )
    elif key in _CHOICES:
        if key == "model" and value == "cross":
            from pricelab.elasticity import NOT_PER_GROUP

            raise ctx.fail(path, NOT_PER_GROUP[value])
        return _choice(ctx, path, value, _CHOICES[key])
    elif key == "by":
        need(
            isinstance(value, str) and all(c.strip() for c in value.split(",")),
            "comma-separated column names (e.g. item_id,market)",
        )
    elif key == "instrument":
        need(
            isinstance(value, str) and value.strip() != "",
            "a sales column (e.g. unit_cost) or hausman",
        )
    elif key == "before":
        return _date(ctx, path, value)
    elif key == "as_of":
        return _date(ctx, path, value, ("today", "data"))
    elif key == "thresholds":
        need(isinstance(value, dict), "a mapping of monitor checks")
    elif key == "files":
        return {} if value is None else check_keys(ctx, path, value, KINDS)
    return value


def _mlflow(ctx: ConfigContext, value: Any) -> Any:
    """``mlflow:``: null, true/false, or a mapping of :data:`MLFLOW_KEYS`."""
    if value is None or isinstance(value, bool):
        return value
    if not isinstance(value, dict):
        raise ctx.fail(("mlflow",), f"expected true, false or a mapping, got {value!r}")
    return dict(check_keys(ctx, ("mlflow",), value, MLFLOW_KEYS))  # values: resolve_mlflow


def _report_path(ctx: ConfigContext, value: Any, base: Path | str) -> Any:
    """``report.output``: an .html path or URL."""
    out = _path(ctx, ("report", "output"), value, base)
    if out is not None and not str(out).lower().split("?", 1)[0].endswith((".html", ".htm")):
        raise ctx.fail(("report", "output"), f"the report is HTML: use a .html name, got {value!r}")
    return out


def _estimate_rules(ctx: ConfigContext, est: dict[str, Any]) -> None:
    """Cross-key rules of ``estimate`` (the estimator would refuse them after the ingest)."""
    if est["model"] == "iv" and est["instrument"] is None:
        raise ctx.fail(
            ("estimate", "model"),
            "model iv needs estimate.instrument (a sales column such as unit_cost, or hausman)",
        )
    if est["model"] != "iv" and est["instrument"] is not None:
        raise ctx.fail(
            ("estimate", "instrument"), f"only used by model iv (model is {est['model']})"
        )


def validate_config(
    doc: Any,
    source: str = "config",
    base: Path | str | None = None,
    *,
    ctx: ConfigContext | None = None,
) -> dict[str, Any]:
    """Defaults overridden by ``doc``; paths resolved against ``base``.

    Parameters
    ----------
    doc : dict or None
        The parsed config (sections ``db``, ``inputs``, ``estimate``, ``gate``, ``optimize``,
        ``monitor``, ``report``, ``mlflow``; every key optional).
    source : str
        Names the config in error messages when ``ctx`` is not given.
    base : Path or str, optional
        A local folder (default: the working directory) or a URL prefix; the database path
        is always local, so a URL ``base`` does not apply to ``db``.
    ctx : ConfigContext, optional
        The file's name and key lines (:func:`pricelab.configfile.parse_config`), for messages
        with line numbers; ``source`` is then unused.

    Returns
    -------
    dict
        Every section with defaults filled in and paths resolved.

    Raises
    ------
    ConfigError
        Unknown section or key (with the closest known one), or a value of the wrong type;
        the message names the file, the dotted key and its line.
    """
    ctx = ctx or ConfigContext(source, {})
    base = base or Path.cwd()
    cfg = copy.deepcopy(DEFAULTS)
    doc = check_keys(ctx, (), {} if doc is None else doc, tuple(DEFAULTS))
    for section, values in doc.items():
        if section == "db":
            cfg["db"] = _path(ctx, ("db",), values, base if isinstance(base, Path) else Path.cwd())
            continue
        if section == "mlflow":
            cfg["mlflow"] = _mlflow(ctx, values)
            continue
        if values is None:
            continue
        if section == "gate" and isinstance(values, dict) and "tolerance_wape" in values:
            raise ctx.fail(
                ("gate", "tolerance_wape"),
                "replaced by min_improvement_wape: a candidate must now beat production's "
                "WAPE by that percent (a tie keeps production); see examples/pipeline.yaml",
            )
        check_keys(ctx, (section,), values, tuple(DEFAULTS[section]))
        for key, value in values.items():
            cfg[section][key] = _check(ctx, (section, key), value)
    inp = cfg["inputs"]
    inp["folder"] = _path(ctx, ("inputs", "folder"), inp["folder"], base)
    inp["files"] = {
        k: _path(ctx, ("inputs", "files", k), v, base)
        for k, v in (inp["files"] or {}).items()
        if v is not None
    }
    _estimate_rules(ctx, cfg["estimate"])
    cfg["optimize"]["output"] = _path(ctx, ("optimize", "output"), cfg["optimize"]["output"], base)
    cfg["report"]["output"] = _report_path(ctx, cfg["report"]["output"], base)
    cfg["optimize"]["constraints"] = _path(
        ctx, ("optimize", "constraints"), cfg["optimize"]["constraints"], base
    )
    mon = cfg["monitor"]
    mon["config"] = _path(ctx, ("monitor", "config"), mon["config"], base)
    if mon["config"] is not None and mon["thresholds"]:
        raise ctx.fail(
            ("monitor", "thresholds"), "give either config (a file) or thresholds, not both"
        )
    from pricelab.monitor import merge_config

    merge_config(mon["thresholds"] or None, ctx=ctx, path=("monitor", "thresholds"))
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
    from pricelab.io import read_text
    from pricelab.urls import display, exists, normalize

    if config is None:
        config = os.environ.get("PRICELAB_PIPELINE_CONFIG") or "pipeline.yaml"
        if not exists(config):
            raise InputFileError(
                f"{display(config)}: no pipeline config; pass --config FILE "
                "(see examples/pipeline.yaml)"
            )
    name = display(config)
    text = read_text(config, what="pipeline config")
    doc, ctx = parse_config(text, name)
    norm = normalize(config)
    base = norm.resolve().parent if isinstance(norm, Path) else norm.rsplit("/", 1)[0]
    return validate_config(doc, name, base, ctx=ctx)
