"""``pricelab estimate`` tunes glibc's allocator (pricelab/_alloc.py); elsewhere a no-op."""

from __future__ import annotations

import ctypes
import sys

import pytest

from pricelab import _alloc


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_settings_are_accepted_by_glibc() -> None:
    assert _alloc.tune_allocator() is True


def test_without_mallopt_nothing_happens(monkeypatch) -> None:
    def no_libc(*args, **kwargs):
        raise OSError("no libc here")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    assert _alloc.tune_allocator() is False
    monkeypatch.setattr(sys, "platform", "darwin")
    assert _alloc.tune_allocator() is False


def test_release_returns_freed_heap(monkeypatch) -> None:
    if sys.platform.startswith("linux"):
        assert _alloc.release() is True
    monkeypatch.setattr(_alloc, "_TRIM", [None])  # no malloc_trim (musl, macOS)
    assert _alloc.release() is False
    monkeypatch.setattr(_alloc, "_TRIM", [])

    def no_libc(*args, **kwargs):
        raise OSError("no libc here")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    assert _alloc.release() is False
