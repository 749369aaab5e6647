"""Local paths and fsspec URLs (``az://``, ``abfs://``, ``s3://``, ``gs://``, ``memory://``).

Every file pricelab reads or writes goes through :mod:`pricelab.io`, which uses these
helpers: a URL is downloaded to a temporary file (or written to one and uploaded), so
the checks on local files apply unchanged. Cloud access comes from optional extras
(``pip install pricelab[azure]`` / ``[s3]`` / ``[gcs]``); credentials come from each
library's usual environment variables and never appear in a message.

Object-storage reads and writes are retried with backoff and each attempt is bounded in time
(:mod:`pricelab.transient`); an object store that stays unreachable raises
:class:`~pricelab.errors.UnavailableError` (exit 75), not bad input.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePath
from typing import Any

from pricelab import staged, transient
from pricelab.errors import InputFileError, PricelabError, UnavailableError, UsageError

#: protocol -> (pip extra, import name of the fsspec implementation)
PROTOCOLS: dict[str, tuple[str, str]] = {
    "az": ("azure", "adlfs"),
    "abfs": ("azure", "adlfs"),
    "abfss": ("azure", "adlfs"),
    "s3": ("s3", "s3fs"),
    "s3a": ("s3", "s3fs"),
    "gs": ("gcs", "gcsfs"),
    "gcs": ("gcs", "gcsfs"),
    "memory": ("", "fsspec"),
}
#: environment variables whose values are secrets (redacted from every message)
SECRET_ENV = (
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CLIENT_SECRET",
    "AZURE_CLIENT_SECRET",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS",
)
_URL = re.compile(r"^(?P<proto>[A-Za-z][A-Za-z0-9+.-]+)://(?P<rest>.*)$")
# pathlib collapses "az://c/x" to "az:/c/x": recognise that form for known protocols
_MANGLED = re.compile(r"^(?P<proto>[A-Za-z][A-Za-z0-9+.-]+):/(?P<rest>[^/].*)$")
_SECRET_KV = re.compile(
    r"(?i)(AccountKey|SharedAccessSignature|sig|aws_secret_access_key|password|token)=[^;&\s]+"
)


def normalize(path: str | os.PathLike[str]) -> str | Path:
    """Return a URL string for cloud/memory locations, else a local :class:`~pathlib.Path`.

    ``file://`` URLs become local paths. A :class:`~pathlib.Path` made from a URL (typer
    options typed ``Path`` turn ``az://c/x.csv`` into ``az:/c/x.csv``) is turned back into
    the URL.

    Parameters
    ----------
    path:
        A local path or a URL.

    Raises
    ------
    UsageError
        A URL whose protocol pricelab does not know.
    """
    text = os.fspath(path)
    m = _URL.match(text)
    if m is None and isinstance(path, PurePath):
        mm = _MANGLED.match(text)
        if mm and (mm["proto"].lower() in PROTOCOLS or mm["proto"].lower() == "file"):
            m = _URL.match(f"{mm['proto']}://{mm['rest']}")
            if mm["proto"].lower() == "file":
                return Path("/" + mm["rest"])
    if m is None:
        return Path(text)
    proto = m["proto"].lower()
    if proto == "file":
        rest = m["rest"]
        return Path(rest if rest.startswith("/") else "/" + rest.split("/", 1)[-1])
    if proto not in PROTOCOLS:
        known = ", ".join(f"{p}://" for p in sorted(PROTOCOLS))
        raise UsageError(
            f"{redact(text)}: unknown storage protocol '{proto}://' "
            f"(supported: {known}, file:// and local paths)"
        )
    return f"{proto}://{m['rest']}"


def is_url(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` names a cloud or in-memory location rather than a local file."""
    return isinstance(normalize(path), str)


def redact(text: str) -> str:
    """``text`` with secrets removed: credential env values, URL user info, keys and tokens."""
    out = text
    for name in SECRET_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            out = out.replace(value, "***")
            # a connection string's parts can be echoed one by one
            for part in value.split(";"):
                _, _, secret = part.partition("=")
                if len(secret) >= 8 and any(k in part for k in ("Key=", "Signature=", "Secret")):
                    out = out.replace(secret, "***")
    out = re.sub(r"(://)[^/@\s]+@", r"\1***@", out)  # user:password@host
    out = _SECRET_KV.sub(lambda m: f"{m.group(1)}=***", out)
    return out


def display(path: str | os.PathLike[str]) -> str:
    """A name for ``path`` safe to print and store in lineage (no query string, no secrets)."""
    norm = normalize(path)
    if isinstance(norm, Path):
        return str(norm)
    return redact(norm.split("?", 1)[0])


def _extra_hint(proto: str) -> str:
    extra, module = PROTOCOLS[proto]
    if not extra:  # memory:// needs fsspec alone, which every extra brings
        return f"{proto}:// needs the 'fsspec' package: pip install fsspec"
    return (
        f"{proto}:// needs the '{module}' package: install pricelab[{extra}] "
        f"(pip install 'pricelab[{extra}]')"
    )


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem for ``url`` and the path inside it.

    A new instance is made each time so that credentials changed in the environment
    are picked up.

    Raises
    ------
    UsageError
        The extra for the protocol is not installed.
    """
    proto = url.split("://", 1)[0]
    try:
        import fsspec
    except ImportError:
        raise UsageError(_extra_hint(proto)) from None
    try:
        cls = fsspec.get_filesystem_class(proto)
    except (ImportError, ValueError) as exc:
        raise UsageError(_extra_hint(proto)) from exc
    fs = cls(skip_instance_cache=True, **_options(proto))
    client = getattr(fs, "service_client", None)  # adlfs: the Azure SDK's own retries
    policy = getattr(getattr(client, "_config", None), "retry_policy", None)
    if policy is not None and hasattr(policy, "total_retries"):
        policy.total_retries = 0  # (15 s, 18 s, 24 s... backoff) give way to pricelab's
    if proto in ("s3", "s3a") and isinstance(getattr(fs, "retries", None), int):
        fs.retries = 1  # s3fs's own loop (5 tries) gives way to pricelab's too
    return fs, cls._strip_protocol(url)


def _options(proto: str) -> dict[str, Any]:
    """Options the libraries do not take from the environment themselves."""
    limit = transient.timeout()
    if proto in ("s3", "s3a"):
        opts: dict[str, Any] = {
            "config_kwargs": {
                "connect_timeout": limit,
                "read_timeout": limit,
                "retries": {"max_attempts": 1},  # pricelab retries (with backoff) itself
            },
        }
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            opts["endpoint_url"] = endpoint
        return opts
    if proto in ("az", "abfs", "abfss"):
        return {"connection_timeout": max(1, int(limit)), "read_timeout": max(1, int(limit))}
    return {}


def _failure(url: str, exc: BaseException, *, writing: bool, what: str = "file") -> PricelabError:
    """A pricelab error for a failed cloud read or write; the message never holds secrets.

    ``what`` names the expected object in read messages (``constraints file not found``).
    """
    name = display(url)
    if transient.is_transient(exc):
        first = (str(exc).splitlines() or [""])[0] or type(exc).__name__
        return UnavailableError(
            f"{name}: storage unavailable ({'write' if writing else 'read'}): "
            f"{type(exc).__name__}: {redact(first)[:200]} (after {transient.retries()} "
            "retries; nothing was changed: retry later)"
        )
    kind = UsageError if writing else InputFileError
    if isinstance(exc, FileNotFoundError):
        missing = "container, bucket or folder not found" if writing else f"{what} not found"
        return kind(f"{name}: {missing}")
    if isinstance(exc, IsADirectoryError):
        return kind(f"{name}: is a folder, expected a {what}")
    text = (str(exc).splitlines() or [""])[0]
    low = f"{type(exc).__name__} {text}".lower()
    if isinstance(exc, PermissionError) or any(
        w in low
        for w in (
            "authenticat",
            "authoriz",
            "forbidden",
            "access denied",
            "accessdenied",
            "signature",
            "credential",
            "403",
        )
    ):
        return kind(
            f"{name}: access denied: check the credentials in the environment "
            f"({type(exc).__name__})"
        )
    return kind(
        f"{name}: cannot {'write' if writing else 'read'}: "
        f"{type(exc).__name__}: {redact(text)[:300]}"
    )


#: public name for readers outside this module (Delta tables, the Spark engine's sources)
failure = _failure


@contextmanager
def local_copy(path: str | os.PathLike[str], *, what: str = "file") -> Iterator[Path]:
    """Yield a local file with the content of ``path``.

    A local path is yielded as it is; a URL is downloaded to a temporary file with the
    same name (so the extension still tells the format), deleted afterwards. ``what``
    names the object in messages (default ``file``: ``file not found``).

    Raises
    ------
    InputFileError
        The object does not exist or cannot be read (message without secrets).
    UsageError
        The extra for the URL's protocol is not installed.
    """
    norm = normalize(path)
    if isinstance(norm, Path):
        yield norm
        return
    fs, inner = filesystem(norm)
    tmpdir = tempfile.mkdtemp(prefix="pricelab-")
    try:
        target = Path(tmpdir) / (PurePath(inner.split("?", 1)[0]).name or "download")

        def fetch() -> None:
            if transient.bounded(fs, "isdir", inner):
                raise IsADirectoryError(inner)
            transient.bounded(fs, "get_file", inner, str(target))

        try:
            transient.call(fetch)
        except PricelabError:
            raise
        except Exception as exc:  # noqa: BLE001 - every backend has its own errors
            raise _failure(norm, exc, writing=False, what=what) from None
        yield target
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


@contextmanager
def local_target(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a local path to write; for a URL it is uploaded when the block ends without error.

    Inside a :func:`pricelab.staged.deferred` block (a command's ``--output``) a URL's file
    is uploaded beside its target as ``.NAME.pricelab-tmp`` and copied to NAME when that
    block ends without error (after the run's commit); the temporary object is deleted
    either way.

    Raises
    ------
    UsageError
        The local folder, container or bucket does not exist, access is denied, or the
        extra for the protocol is not installed.
    """
    norm = normalize(path)
    if isinstance(norm, Path):
        if not norm.parent.exists():
            raise UsageError(f"{norm}: folder {norm.parent} does not exist")
        yield norm
        return
    fs, inner = filesystem(norm)
    tmpdir = tempfile.mkdtemp(prefix="pricelab-")
    waiting = False
    try:
        target = Path(tmpdir) / (PurePath(inner).name or "upload")
        yield target
        if not staged.active():
            _put(fs, target, inner, norm)
            return
        head, _, name = inner.rpartition("/")
        key = f"{head}/{staged.temp_name(name)}" if head else staged.temp_name(name)
        _put(fs, target, key, norm)

        def drop() -> None:
            shutil.rmtree(tmpdir, ignore_errors=True)
            transient.call(lambda: transient.bounded(fs, "rm_file", key))

        waiting = staged.later(norm, lambda: _copy_into_place(fs, target, key, inner, norm), drop)
    finally:
        if not waiting:
            shutil.rmtree(tmpdir, ignore_errors=True)


def _put(fs: Any, local: Path, inner: str, url: str) -> None:
    try:
        transient.call(lambda: transient.bounded(fs, "put_file", str(local), inner))
    except Exception as exc:  # noqa: BLE001 - every backend has its own errors
        raise _failure(url, exc, writing=True) from None


def _copy_into_place(fs: Any, local: Path, key: str, inner: str, url: str) -> None:
    """The staged object ``key`` copied to ``inner`` on the server (an Azure copy still
    pending, seen as a size that differs, is replaced by an upload of the local file)."""
    try:
        transient.call(lambda: transient.bounded(fs, "cp_file", key, inner))
        info = transient.call(lambda: transient.bounded(fs, "info", inner))
    except Exception as exc:  # noqa: BLE001 - every backend has its own errors
        raise _failure(url, exc, writing=True) from None
    if info.get("size") != local.stat().st_size:
        _put(fs, local, inner, url)


def join(folder: str | os.PathLike[str], name: str) -> str | Path:
    """``folder/name`` for a local folder or a URL prefix."""
    norm = normalize(folder)
    if isinstance(norm, Path):
        return norm / name
    return norm.rstrip("/") + "/" + name


def _probe(path: str | os.PathLike[str], what: str) -> bool:
    norm = normalize(path)
    if isinstance(norm, Path):
        return bool(getattr(norm, what)())
    fs, inner = filesystem(norm)
    # fs.info raises on a network failure where exists/isfile/isdir of some backends (s3fs)
    # answer False, which turned an outage into "file not found"
    try:
        info = transient.call(lambda: transient.bounded(fs, "info", inner))
    except FileNotFoundError:
        return False
    except Exception as exc:  # noqa: BLE001 - every backend has its own errors
        if transient.is_transient(exc):
            raise _failure(norm, exc, writing=False) from None
        info = None  # e.g. a bucket root without info: ask the backend's own probe
    if info is not None:
        kind = info.get("type")
        return what == "exists" or kind == ("file" if what == "isfile" else "directory")
    try:
        return bool(transient.call(lambda: transient.bounded(fs, what, inner)))
    except FileNotFoundError:
        return False
    except Exception as exc:  # noqa: BLE001 - every backend has its own errors
        raise _failure(norm, exc, writing=False) from None


def exists(path: str | os.PathLike[str]) -> bool:
    """True when the file or folder exists (locally or in object storage)."""
    return _probe(path, "exists")


def is_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is an existing file (an object, for a URL)."""
    return _probe(path, "is_file" if isinstance(normalize(path), Path) else "isfile")


def is_dir(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is an existing folder (a prefix holding objects, for a URL)."""
    return _probe(path, "is_dir" if isinstance(normalize(path), Path) else "isdir")


def sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a local file's or an object's bytes, read in 1 MiB chunks.

    Raises
    ------
    InputFileError
        Missing or unreadable.
    """
    import hashlib

    norm = normalize(path)

    def digest() -> str:
        h = hashlib.sha256()
        if isinstance(norm, Path):
            fh_ctx: Any = norm.open("rb")
        else:
            fs, inner = filesystem(norm)
            fh_ctx = fs.open(inner, "rb")
        with fh_ctx as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()

    try:
        return digest() if isinstance(norm, Path) else transient.call(digest)
    except PricelabError:
        raise
    except Exception as exc:  # noqa: BLE001 - every backend has its own errors
        raise _failure(str(norm), exc, writing=False) from None
