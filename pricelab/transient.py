"""Transient storage failures: recognise them, retry them with backoff, bound their time.

An object store that cannot be reached, times out or answers 5xx/throttling is not bad
input: after ``PRICELAB_STORAGE_RETRIES`` retries (default 2) with exponential backoff
(``PRICELAB_STORAGE_BACKOFF`` seconds, default 1, doubling) the operation raises
:class:`pricelab.errors.UnavailableError` (exit 75, ``EX_TEMPFAIL``) so schedulers retry
the job. Each attempt is bounded by ``PRICELAB_STORAGE_TIMEOUT`` seconds (default 30).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from pricelab.errors import UsageError

T = TypeVar("T")

#: exception class names (anywhere in the chain) that mean "try again later"
_TRANSIENT_TYPES = {
    "TimeoutError",
    "FSTimeoutError",
    "ConnectionError",
    "ConnectionRefusedError",
    "ConnectionResetError",
    "ConnectionAbortedError",
    "BrokenPipeError",
    "ClientConnectorError",
    "ClientConnectionError",
    "ClientOSError",
    "ServerDisconnectedError",
    "ServerTimeoutError",
    "EndpointConnectionError",
    "ConnectTimeoutError",
    "ReadTimeoutError",
    "ConnectTimeout",
    "ReadTimeout",
    "ServiceRequestError",
    "ServiceResponseError",
    "ServiceRequestTimeoutError",
    "ServiceResponseTimeoutError",
    "IncompleteReadError",
    "gaierror",
}
_TRANSIENT_WORDS = (
    "timed out",
    "connection refused",
    "connection reset",
    "cannot connect to host",
    "could not connect to the endpoint",
    "temporary failure in name resolution",
    "name or service not known",
    "service unavailable",
    "serviceunavailable",
    "slowdown",
    "slow down",
    "throttl",
    "too many requests",
    "server busy",
    "serverbusy",
    "internal server error",
    "bad gateway",
    "gateway timeout",
)
_TRANSIENT_STATUS = (429, 500, 502, 503, 504)


def _setting(name: str, default: float, *, minimum: float = 0) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UsageError(f"${name} must be a number, got {raw!r}") from None
    if not value >= minimum:
        raise UsageError(f"${name} must be >= {minimum:g}, got {raw!r}")
    return value


def retries() -> int:
    """Retries after the first attempt (``$PRICELAB_STORAGE_RETRIES``, default 2)."""
    return int(_setting("PRICELAB_STORAGE_RETRIES", 2))


def backoff() -> float:
    """Seconds before the first retry, doubled each time (``$PRICELAB_STORAGE_BACKOFF``)."""
    return _setting("PRICELAB_STORAGE_BACKOFF", 1.0)


def timeout() -> float:
    """Seconds one attempt may take (``$PRICELAB_STORAGE_TIMEOUT``, default 30)."""
    return _setting("PRICELAB_STORAGE_TIMEOUT", 30.0, minimum=0.1)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen and len(seen) < 10:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def is_transient(exc: BaseException) -> bool:
    """True when ``exc`` (or its cause) is a network failure, a timeout, throttling or 5xx."""
    if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
        return False
    for e in _chain(exc):
        if isinstance(e, TypeError | AttributeError | KeyError | NameError):
            return False  # a bug or a wrong argument, whatever its message says
        if type(e).__name__ in _TRANSIENT_TYPES:
            return True
        status = getattr(e, "status_code", None) or getattr(e, "status", None)
        code = getattr(e, "response", None)
        if isinstance(code, dict):  # botocore ClientError
            status = code.get("ResponseMetadata", {}).get("HTTPStatusCode", status)
        if isinstance(status, int) and status in _TRANSIENT_STATUS:
            return True
        text = f"{type(e).__name__} {str(e).splitlines()[0] if str(e) else ''}".lower()
        if any(w in text for w in _TRANSIENT_WORDS):
            return True
    return False


def call(fn: Callable[[], T], *, sleep: Callable[[float], None] = time.sleep) -> T:
    """``fn()`` retried on transient errors with exponential backoff; others pass through.

    The last transient error is re-raised after ``retries()`` retries.
    """
    n, wait = retries(), backoff()
    for attempt in range(n + 1):
        try:
            return fn()
        except Exception as exc:
            if attempt == n or not is_transient(exc):
                raise
        sleep(wait * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def bounded(fs: Any, method: str, *args: Any) -> Any:
    """``fs.method(*args)``, bounded by :func:`timeout` for an async fsspec filesystem.

    Async filesystems (s3fs, adlfs, gcsfs) run the coroutine ``_method`` on fsspec's loop
    with a deadline (``FSTimeoutError``, a ``TimeoutError``, when it passes); others are
    called as they are.
    """
    coro = getattr(fs, f"_{method}", None)
    if getattr(fs, "async_impl", False) and coro is not None and getattr(fs, "loop", None):
        from fsspec.asyn import sync

        return sync(fs.loop, coro, *args, timeout=timeout())
    return getattr(fs, method)(*args)
