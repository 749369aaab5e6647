"""When fits take the compiled kernels (numba: ``ols`` :mod:`.ols_jit`, the Poisson IRLS
and hierarchical refit loops :mod:`.glm_jit`), and loading them.

Loading numba costs a process ~0.7 CPU s and 80-140 MB once (``import numba`` 0.2 s with
scipy.linalg, then 0.45 s to set up LLVM and load any cached function), and the kernel saves
~75 ns per row against the numpy block kernel, so only big fits take it
(:data:`JIT_ROWS`). This module never imports numba.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

#: variance types of the compiled ``ols`` kernel (``HAC`` stays on the numpy kernel)
JIT_SE = ("nonrobust", "HC0", "HC1", "HC3", "cluster")
#: rows of a fit from which the compiled kernel is used. In CPU it pays from ~9M rows, but
#: at 300k item-markets × 52 weeks (15.6M rows) it saved only 8% of the ``estimate``
#: command's CPU and added 80-140 MB to its ~930 MB peak, past issue #20's 1 GB goal
#: there; from 20M rows (400k × 52 and up: 1M × 52 saves ~3 CPU s, goal 3 GB) it is used.
JIT_ROWS = 20_000_000
#: rows of a ``poisson`` / ``hierarchical`` fit from which the compiled IRLS loops pay
#: (they save ~0.2 CPU us per row of the Poisson pass, more with the refit: break-even
#: ~3M rows against numba's load)
GLM_JIT_ROWS = 3_000_000
#: the compiled module and threshold of each model
_MODULES = {"ols": ("ols_jit", JIT_ROWS), "poisson": ("glm_jit", GLM_JIT_ROWS)}


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
        it loaded (or waits on the import lock, and reports any error).
    """
    name, threshold = _MODULES["ols" if model == "ols" else "poisson"]
    if (model == "ols" and se not in JIT_SE) or not use_compiled(rows, threshold):
        return False
    import contextlib
    import importlib
    import threading

    def load() -> None:
        with contextlib.suppress(Exception):
            importlib.import_module(f"{__package__}.{name}")

    threading.Thread(target=load, name="pricelab-jit", daemon=True).start()
    return True


def compiled_ols(se: str, rows: int | bool) -> Callable[..., dict[str, np.ndarray]] | None:
    """The compiled ``ols`` kernel (:mod:`.ols_jit`) for ``se``, or None: ``HAC``, a small
    fit (:func:`use_compiled`) or numba missing (the numpy kernel, its reference)."""
    if se not in JIT_SE or not use_compiled(rows):
        return None
    try:
        from .ols_jit import fit_runs
    except ImportError:  # pragma: no cover - numba is a dependency
        return None
    return fit_runs


__all__ = ["GLM_JIT_ROWS", "JIT_ROWS", "JIT_SE", "compiled_ols", "prepare_compiled", "use_compiled"]
