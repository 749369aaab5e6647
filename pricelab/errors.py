"""Every exception pricelab raises on purpose.

The library raises these; only :mod:`pricelab.cli` turns them into exit codes
(contract: 0 success, 1 the job ran but a check failed, 2 bad usage or input, 75 storage
temporarily unavailable: retry later).
"""

from __future__ import annotations


class PricelabError(Exception):
    """Base class: an expected failure with a one-line message for the user."""

    exit_code: int = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class UsageError(PricelabError):
    """A command-line option or API argument is invalid."""


class InputFileError(PricelabError):
    """An input file is missing, unreadable, empty or of an unknown format."""


class DataError(PricelabError):
    """Input data breaks a data-quality rule (names file, column, rule and rows)."""


class ConfigError(PricelabError):
    """A YAML file has a syntax error, an unknown key or a value of the wrong type."""


class StoreError(PricelabError):
    """The DuckDB database cannot be opened, is locked, or was written by a newer pricelab."""


class EmptyStoreError(StoreError):
    """The database holds no data for the requested operation."""


class NotFoundError(PricelabError):
    """A named run, experiment or estimate does not exist."""


class CheckFailed(PricelabError):
    """The job ran but a check failed (validation errors, monitoring alert)."""

    exit_code = 1


class InfeasibleError(CheckFailed):
    """No price plan satisfies every constraint; the message names the conflict."""


class SolverError(CheckFailed):
    """Every solver failed to reach a certified solution."""


class UnavailableError(PricelabError):
    """Storage is temporarily unavailable (object storage unreachable or timing out, the
    database locked by another process): nothing was changed; retry later (exit 75,
    ``EX_TEMPFAIL``)."""

    exit_code = 75


class StoreLockedError(StoreError, UnavailableError):
    """The DuckDB file is locked by another process (exit 75: retry when it has finished)."""
