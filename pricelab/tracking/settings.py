"""Where and whether to log runs to MLflow: settings from arguments, a config section or env.

Tracking is off unless asked for, in this order of precedence:

1. the ``mlflow`` argument of :func:`pricelab.api.estimate` / ``optimize`` / ``simulate``
   (the CLI's ``--mlflow/--no-mlflow``, ``--mlflow-uri``, ``--mlflow-experiment``,
   ``--strict-tracking``);
2. the environment: ``PRICELAB_MLFLOW=1`` turns it on for every run.

The tracking URI is ``--mlflow-uri``, else ``$MLFLOW_TRACKING_URI``, else
:data:`DEFAULT_TRACKING_URI` (a SQLite file ``./mlflow.db`` with artifacts under
``./mlruns``: MLflow 3 refuses plain file stores such as ``./mlruns`` unless
``MLFLOW_ALLOW_FILE_STORE=true``). The experiment is ``--mlflow-experiment``, else
``$MLFLOW_EXPERIMENT_NAME``, else ``pricelab``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pricelab.errors import ConfigError, UsageError
from pricelab.urls import redact

ENV_ENABLE = "PRICELAB_MLFLOW"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "pricelab"
INSTALL_HINT = "install pricelab[mlflow] (pip install 'pricelab[mlflow]')"
CONFIG_KEYS = ("tracking_uri", "experiment", "strict")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("", "0", "false", "no", "off")
_SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


@dataclass(frozen=True)
class MlflowSettings:
    """Where pricelab logs its runs in MLflow.

    Parameters
    ----------
    tracking_uri : str
        Any MLflow tracking URI (``sqlite:///mlflow.db``, ``http://host:5000``,
        ``databricks``, ...). Put credentials in ``MLFLOW_TRACKING_USERNAME`` /
        ``MLFLOW_TRACKING_PASSWORD`` / ``MLFLOW_TRACKING_TOKEN``, not in the URI.
    experiment : str
        Experiment name; created on first use.
    strict : bool
        Fail the command (exit 1, after the pricelab run is stored) when logging fails;
        by default a failure is reported and the command still succeeds.
    """

    tracking_uri: str = DEFAULT_TRACKING_URI
    experiment: str = DEFAULT_EXPERIMENT
    strict: bool = False

    @classmethod
    def from_env(cls) -> MlflowSettings:
        """Settings from ``MLFLOW_TRACKING_URI`` / ``MLFLOW_EXPERIMENT_NAME`` and defaults."""
        return cls(
            tracking_uri=os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI,
            experiment=os.environ.get("MLFLOW_EXPERIMENT_NAME") or DEFAULT_EXPERIMENT,
        )

    @property
    def display_uri(self) -> str:
        """The tracking URI with any credentials removed (safe to print and store)."""
        return redact(self.tracking_uri)


def env_enabled() -> bool:
    """True when ``$PRICELAB_MLFLOW`` asks for tracking.

    Raises
    ------
    UsageError
        The variable holds something other than 1/true/yes/on or 0/false/no/off.
    """
    value = os.environ.get(ENV_ENABLE, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise UsageError(f"${ENV_ENABLE}={value!r}: use 1 (log runs to MLflow) or 0")


def _from_mapping(section: Mapping[str, Any]) -> MlflowSettings:
    """Settings from a config section ``mlflow: {tracking_uri, experiment, strict}``."""
    unknown = sorted(set(section) - set(CONFIG_KEYS))
    if unknown:
        raise ConfigError(f"mlflow: unknown key '{unknown[0]}' (use {', '.join(CONFIG_KEYS)})")
    base = MlflowSettings.from_env()
    out: dict[str, Any] = {}
    for key in ("tracking_uri", "experiment"):
        value = section.get(key)
        if value is not None:
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"mlflow.{key}: expected a non-empty string, got {value!r}")
            out[key] = value.strip()
    strict = section.get("strict", False)
    if not isinstance(strict, bool):
        raise ConfigError(f"mlflow.strict: expected true or false, got {strict!r}")
    return replace(base, strict=strict, **out)


def resolve_mlflow(value: Any = None, *, check_installed: bool = True) -> MlflowSettings | None:
    """Turn the ``mlflow`` argument of the API into settings, or None when tracking is off.

    Parameters
    ----------
    value : None, bool, str, mapping or MlflowSettings
        None: on when ``$PRICELAB_MLFLOW`` says so; False: off; True: on with the
        environment's URI and experiment; a string: on with that tracking URI; a mapping:
        a config section with keys ``tracking_uri``, ``experiment``, ``strict``.
    check_installed : bool
        Check that the MLflow client (and, for SQL stores, SQLAlchemy) can be imported.

    Returns
    -------
    MlflowSettings or None

    Raises
    ------
    UsageError
        Tracking is asked for but MLflow is not installed ("install pricelab[mlflow]"),
        or the value has a wrong type.
    ConfigError
        A config section has an unknown key or a value of the wrong type.
    """
    if value is None:
        settings = MlflowSettings.from_env() if env_enabled() else None
    elif value is False:
        settings = None
    elif value is True:
        settings = MlflowSettings.from_env()
    elif isinstance(value, MlflowSettings):
        settings = value
    elif isinstance(value, str):
        if not value.strip():
            raise UsageError("--mlflow-uri: empty tracking URI")
        settings = replace(MlflowSettings.from_env(), tracking_uri=value.strip())
    elif isinstance(value, Mapping):
        settings = _from_mapping(value)
    else:
        raise UsageError(
            f"mlflow: expected True/False, a tracking URI, a settings mapping or "
            f"MlflowSettings, got {type(value).__name__}"
        )
    if settings is not None and check_installed:
        require_mlflow(settings)
    return settings


def require_mlflow(settings: MlflowSettings | None = None) -> Any:
    """Import and return the ``mlflow`` module, or raise the install hint.

    Raises
    ------
    UsageError
        MLflow (or SQLAlchemy/Alembic for a SQL tracking URI) cannot be imported.
    """
    try:
        import mlflow
    except ImportError:
        raise UsageError(f"--mlflow needs the MLflow client: {INSTALL_HINT}") from None
    if settings is None or ":" not in settings.tracking_uri:
        return mlflow
    scheme = settings.tracking_uri.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme in _SQL_SCHEMES:
        try:
            import alembic  # noqa: F401
            import sqlalchemy  # noqa: F401
        except ImportError:
            raise UsageError(
                f"tracking URI {settings.display_uri}: MLflow's SQL store needs "
                f"SQLAlchemy and Alembic: {INSTALL_HINT}"
            ) from None
    return mlflow


def from_options(
    flag: bool | None, uri: str | None, experiment: str | None, strict: bool
) -> MlflowSettings | bool | None:
    """The ``mlflow`` argument for the API from the CLI's options.

    ``--mlflow-uri`` or ``--mlflow-experiment`` imply ``--mlflow``; ``--no-mlflow`` turns
    tracking off even when ``$PRICELAB_MLFLOW`` is set; ``--strict-tracking`` applies when
    tracking is on (by option or environment).
    """
    if flag is False:
        return False
    if not (flag or uri or experiment or env_enabled()):
        return None
    base = MlflowSettings.from_env()
    return replace(
        base,
        tracking_uri=uri or base.tracking_uri,
        experiment=experiment or base.experiment,
        strict=strict,
    )
