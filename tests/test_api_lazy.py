"""``pricelab.api`` imports each name from its module on first use: its three lists (the
type-checking imports, ``_MODULES`` and ``__all__``) must name the same objects."""

from __future__ import annotations

import importlib

import pricelab.api as api


def test_every_public_name_resolves_to_its_module_object() -> None:
    assert set(api.__all__) == set(api._MODULES)
    for name in api.__all__:
        module = importlib.import_module(f"pricelab.api.{api._MODULES[name]}")
        assert getattr(api, name) is getattr(module, name), name
