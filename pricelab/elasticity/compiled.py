"""When fits take the compiled kernels (numba: ``ols`` :mod:`.ols_jit`, the Poisson IRLS
and hierarchical refit loops :mod:`.glm_jit`, the hierarchical posterior :mod:`.pool_jit`),
and loading them.

Loading numba costs a process ~0.4 CPU s and 50-100 MB once (``import numba``, setting up
LLVM and its registries, loading the cached functions; its BLAS probe, an import of
scipy.linalg, is skipped: :func:`_skip_blas_probe`), and the ``ols`` kernel saves ~75 ns
per row against the numpy block kernel, so only big fits take it (:data:`JIT_ROWS`). This
module never imports numba.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

#: variance types of the compiled ``ols`` kernel (``HAC`` stays on the numpy kernel)
JIT_SE = ("nonrobust", "HC0", "HC1", "HC3", "cluster")
#: rows of a fit from which the compiled ``ols`` kernel is used: numba's load (~0.4 CPU s)
#: against ~75 ns saved per row breaks even near 5M rows. At 300k item-markets × 52 weeks
#: (15.6M rows) the ``estimate`` command takes 1.1-1.2 CPU s less (5.84 against 6.90, medians
#: of six interleaved runs at load 19) for a peak of 864 MB against 785 (issue #20: 1 GB).
JIT_ROWS = 5_000_000
#: rows of a ``poisson`` / ``hierarchical`` fit from which the compiled IRLS loops pay
#: (they save ~0.2 CPU us per row of the Poisson pass, more with the refit: break-even
#: ~3M rows against numba's load)
GLM_JIT_ROWS = 3_000_000
#: one BLAS-probe skip at a time (:func:`_skip_blas_probe`)
_PROBE_LOCK = threading.Lock()
#: the compiled module and threshold of each model
_MODULES = {"ols": ("ols_jit", JIT_ROWS), "poisson": ("glm_jit", GLM_JIT_ROWS)}
#: compiled modules whose loading thread :func:`prepare_compiled` started (set when done)
_LOADED: dict[str, threading.Event] = {}
_START_LOCK = threading.Lock()


def use_compiled(rows: int | bool, threshold: int = JIT_ROWS) -> bool:
    """Whether a fit of ``rows`` rows (or True / False: asked for) takes the compiled
    kernel (``ols`` from :data:`JIT_ROWS`, Poisson from :data:`GLM_JIT_ROWS`);
    ``$PRICELAB_JIT`` ``0`` / ``1`` overrides (never / always)."""
    env = os.environ.get("PRICELAB_JIT", "")
    if env in ("0", "1"):
        return env == "1"
    return rows if isinstance(rows, bool) else rows >= threshold


def prepare_compiled(rows: int, se: str, model: str = "ols") -> bool:
    """Whether an ``ols`` fit takes the compiled kernel (:mod:`.ols_jit`); if so, start
    loading it (numba, ~0.7 CPU s) in a background thread now.

    Parameters
    ----------
    rows:
        Rows of the whole fit (:func:`use_compiled`: from :data:`JIT_ROWS`).
    se:
        Its variance type (``HAC`` stays on the numpy ``ols`` kernel).
    model:
        ``ols``, or ``poisson`` / ``hierarchical`` (the compiled IRLS loops).

    Returns
    -------
    bool
        What to pass as ``compiled`` to the fit. A caller that reads the rows first (the
        chunked engine while DuckDB scans) hides the load; the fit's own import finds
        it loaded (or waits on the import lock, and reports any error). A second call
        starts no second thread.
    """
    name, threshold = _MODULES["ols" if model == "ols" else "poisson"]
    if (model == "ols" and se not in JIT_SE) or not use_compiled(rows, threshold):
        return False
    with _START_LOCK:  # one loading thread per module and process
        if name in _LOADED or f"{__package__}.{name}" in sys.modules:
            return True
        done = _LOADED[name] = threading.Event()
    threading.Thread(target=_load, args=(name, done), name="pricelab-jit", daemon=True).start()
    return True


def _load(module: str, done: threading.Event) -> None:
    try:
        load_module(module)
    finally:
        done.set()


def compiled_loading(model: str = "ols") -> bool:
    """Whether :func:`prepare_compiled`'s thread is still loading a compiled module.

    Parameters
    ----------
    model:
        ``ols`` (:mod:`.ols_jit`), or ``poisson`` / ``hierarchical`` (:mod:`.glm_jit`).

    Returns
    -------
    bool
        True from :func:`prepare_compiled` until its thread has loaded the module (or
        failed to): a reader of the fit's input may read further ahead meanwhile.
    """
    done = _LOADED.get(_MODULES["ols" if model == "ols" else "poisson"][0])
    return done is not None and not done.is_set()


def compiled_ols(se: str, rows: int | bool) -> Callable[..., dict[str, np.ndarray]] | None:
    """The compiled ``ols`` kernel (:mod:`.ols_jit`) for ``se``, or None: ``HAC``, a small
    fit (:func:`use_compiled`) or numba missing (the numpy kernel, its reference)."""
    if se not in JIT_SE or not use_compiled(rows):
        return None
    return load_kernel("ols_jit", "fit_runs")


def _usable_cache() -> None:
    """numba needs a writable cache folder even to load cached kernels (it checks by writing
    a temporary file; else ``RuntimeError: cannot cache function``). Under a read-only root
    file system (the Kubernetes CronJob) the image's warm ``$NUMBA_CACHE_DIR`` is copied to
    the temporary folder first and numba pointed there, before numba is imported."""
    path = os.environ.get("NUMBA_CACHE_DIR")
    if (
        not path
        or "numba" in sys.modules
        or os.access(path if os.path.isdir(path) else os.path.dirname(path) or ".", os.W_OK)
    ):
        return
    import shutil
    import tempfile

    dest = os.path.join(tempfile.gettempdir(), "pricelab-numba-cache")
    with contextlib.suppress(OSError):
        if os.path.isdir(path):
            shutil.copytree(path, dest, dirs_exist_ok=True)
        os.environ["NUMBA_CACHE_DIR"] = dest


def _skip_blas_probe() -> None:
    """Load numba's numpy functions without its BLAS probe.

    When numba first loads its numpy implementations (``numba.np.arraymath``, on the first
    compiled function, cached or not) it checks that a BLAS exists by importing
    ``scipy.linalg`` whole: ~0.15 CPU s of the ~0.45 numba costs a process, for nothing
    here (the kernels call no BLAS: ``np.dot`` or ``np.linalg`` are not used in them).
    The probe is answered "no BLAS" while that module loads; the only effect is numba's
    ``np.correlate`` / ``np.convolve`` using their plain loop. Any surprise (another numba
    layout) leaves numba to load as usual."""
    with _PROBE_LOCK:  # the fit's own load may race prepare_compiled's thread
        if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules:
            return
        try:
            import numba.np.linalg as linalg
        except Exception:  # noqa: BLE001 - numba missing or broken: load_module reports it
            return
        probe = getattr(linalg, "ensure_blas", None)
        if probe is None:
            return

        def no_blas() -> None:
            raise ImportError("BLAS not probed (pricelab's kernels call none)")

        linalg.ensure_blas = no_blas
        try:
            importlib.import_module("numba.np.arraymath")
        except Exception:  # noqa: BLE001 - the usual load reports any real error
            pass
        finally:
            linalg.ensure_blas = probe


def load_module(module: str) -> ModuleType | None:
    """The compiled module ``module`` (``ols_jit`` / ``glm_jit`` / ``pool_jit``), imported
    with a usable cache folder (:func:`_usable_cache`), or None when numba cannot load it
    (not installed, or no writable cache folder anywhere)."""
    _usable_cache()
    try:
        _skip_blas_probe()
        return importlib.import_module(f"{__package__}.{module}")
    except Exception:  # noqa: BLE001 - ImportError, or numba's "cannot cache function"
        return None


def load_kernel(module: str, name: str) -> Callable[..., Any] | None:
    """``name`` of the compiled module ``module`` (:func:`load_module`), or None when numba
    cannot load it: the caller then runs the numpy kernel, the compiled one's reference."""
    mod = load_module(module)
    return None if mod is None else getattr(mod, name)


__all__ = [
    "GLM_JIT_ROWS",
    "JIT_ROWS",
    "JIT_SE",
    "compiled_ols",
    "load_kernel",
    "load_module",
    "compiled_loading",
    "prepare_compiled",
    "use_compiled",
]
