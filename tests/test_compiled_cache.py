"""Loading the compiled kernels where numba has no writable cache folder (a read-only root
file system, as the Kubernetes CronJob runs the image): the warm cache is copied to the
temporary folder, and a kernel numba cannot load leaves the numpy kernel to run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_read_only_cache_is_copied_to_the_temporary_folder(tmp_path: Path) -> None:
    warm = tmp_path / "image-cache"
    (warm / "sub").mkdir(parents=True)
    (warm / "sub" / "k.nbi").write_bytes(b"index")
    script = f"""
import os, sys
os.environ["NUMBA_CACHE_DIR"] = {str(warm)!r}
os.environ["TMPDIR"] = {str(tmp_path / "tmp")!r}
os.makedirs(os.environ["TMPDIR"])
real = os.access
os.access = lambda p, mode: False if str(p).startswith({str(warm)!r}) else real(p, mode)
from pricelab.elasticity import compiled
assert "numba" not in sys.modules
compiled._usable_cache()
print(os.environ["NUMBA_CACHE_DIR"])
"""
    out = subprocess.run(
        [sys.executable, "-c", script],
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == str(tmp_path / "tmp" / "pricelab-numba-cache")
    assert (Path(out) / "sub" / "k.nbi").read_bytes() == b"index"


def test_writable_cache_is_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pricelab.elasticity import compiled

    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path))
    monkeypatch.delitem(sys.modules, "numba", raising=False)
    compiled._usable_cache()
    assert compiled.os.environ["NUMBA_CACHE_DIR"] == str(tmp_path)


def test_a_kernel_numba_cannot_cache_falls_back_to_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """numba raises RuntimeError ("cannot cache function ...: no locator available") at
    import when no folder is writable: the fit runs on the numpy kernel, not a traceback."""
    import importlib

    import numpy as np

    from pricelab.elasticity import compiled
    from pricelab.elasticity.poisson_kernel import poisson_block
    from pricelab.elasticity.refit import _refit_jit

    real = importlib.import_module

    def no_locator(name: str, *a: object, **k: object) -> object:
        if name.endswith(("ols_jit", "glm_jit")):
            raise RuntimeError("cannot cache function 'f': no locator available for file")
        return real(name, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(compiled.importlib, "import_module", no_locator)
    assert compiled.load_kernel("ols_jit", "fit_runs") is None
    assert compiled.load_module("glm_jit") is None
    assert compiled.compiled_ols("cluster", True) is None
    assert _refit_jit(True) is None
    rng = np.random.default_rng(0)
    X = np.stack([np.ones((3, 40)), np.log(rng.uniform(50, 80, (3, 40)))], axis=1)
    y = rng.poisson(np.exp(8 - 1.5 * X[:, 1]))
    w = np.ones((3, 40))
    a = poisson_block(X.copy(), y.astype(float), w.copy(), se="HC1", compiled=True)
    b = poisson_block(X.copy(), y.astype(float), w.copy(), se="HC1", compiled=False)
    for k in b:
        np.testing.assert_array_equal(np.asarray(a[k]), np.asarray(b[k]))


@pytest.mark.parametrize(
    ("model", "se", "module"), [("ols", "HC1", "ols_jit"), ("poisson", "HAC", "glm_jit")]
)
def test_prepare_compiled_loads_the_module_in_a_background_thread(
    monkeypatch: pytest.MonkeyPatch, model: str, se: str, module: str
) -> None:
    import threading

    from pricelab.elasticity import compiled

    loaded: list[tuple[str, str]] = []
    done = threading.Event()

    def record(name: str) -> None:
        loaded.append((name, threading.current_thread().name))
        done.set()

    monkeypatch.setattr(compiled, "load_module", record)
    monkeypatch.setattr(compiled, "_LOADED", {})  # as in a fresh process
    monkeypatch.delitem(sys.modules, f"pricelab.elasticity.{module}", raising=False)
    monkeypatch.setenv("PRICELAB_JIT", "1")
    assert compiled.prepare_compiled(10, se, model)
    assert done.wait(10)
    assert loaded == [(module, "pricelab-jit")]
    assert compiled.prepare_compiled(10, se, model)  # asked again: no second thread
    time.sleep(0.05)
    assert loaded == [(module, "pricelab-jit")]
    monkeypatch.setenv("PRICELAB_JIT", "0")
    assert not compiled.prepare_compiled(10**9, se, model)
    assert loaded == [(module, "pricelab-jit")]


def test_load_module_returns_the_compiled_module() -> None:
    from pricelab.elasticity import compiled, ols_jit

    assert compiled.load_module("ols_jit") is ols_jit
    assert compiled.load_kernel("ols_jit", "fit_runs") is ols_jit.fit_runs


def test_kernels_load_without_scipy_linalg_and_leave_it_usable() -> None:
    """numba's BLAS probe (an import of scipy.linalg) is skipped while the kernels load (two
    threads loading at once, as prepare_compiled's and the fit's); the probe is put back, the kernels give the numpy kernel's numbers, and scipy.linalg
    and numba's own BLAS calls still work afterwards."""
    script = """
import sys
import numpy as np
from pricelab.elasticity.compiled import load_module
import numba.np.linalg as nl
import threading
probe = nl.ensure_blas
side = threading.Thread(target=load_module, args=("glm_jit",))  # as prepare_compiled
side.start()
ols, glm = load_module("ols_jit"), load_module("glm_jit")
side.join()
assert ols is not None and glm is not None
assert "scipy.linalg" not in sys.modules
assert nl.ensure_blas is probe
rng = np.random.default_rng(0)
lp, q = rng.normal(size=40), rng.poisson(5.0, 40).astype(float)
cols, tab, src = np.zeros((0, 40)), np.zeros((0, 1)), np.zeros(0, np.int64)
starts, counts = np.array([0, 20]), np.array([20, 20])
out = ols.ols_runs(np.exp(lp), q, cols, None, tab, 0, src, starts, counts, "HC1", 8, 1)
from pricelab.elasticity.block_kernels import ols_block
w = (q > 0).reshape(2, 20).astype(float)
ref = ols_block(lp.reshape(2, 1, 20).copy(), np.log(np.where(q > 0, q, 1)).reshape(2, 20), w)
np.testing.assert_allclose(out["params"], ref["params"], rtol=1e-12)
import numba, scipy.linalg
assert scipy.linalg.cython_blas is not None
dot = numba.njit(lambda a, b: np.dot(a, b))
assert dot(np.ones((2, 2)), np.ones(2)).tolist() == [2.0, 2.0]
print("ok")
"""
    out = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "PRICELAB_JIT": ""},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
