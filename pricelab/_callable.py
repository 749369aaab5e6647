"""Let a subpackage be called like its main function (``pricelab.optimize(...)``).

``pricelab.optimize`` and ``pricelab.simulate`` are both subpackages and the documented
functions; once the subpackage is imported Python binds the module to that name, so the
module itself forwards calls to the function.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any


def make_callable(module_name: str, target: Callable[..., Any]) -> None:
    """Make ``sys.modules[module_name]`` callable, forwarding to ``target``."""

    class _CallableModule(types.ModuleType):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return target(*args, **kwargs)

    sys.modules[module_name].__class__ = _CallableModule
