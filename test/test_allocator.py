"""inference/allocator.py: the thresholds are set where glibc offers mallopt, and can be declined."""
from __future__ import annotations

import platform

import pytest

from inference.allocator import keep_freed_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_thresholds_are_accepted_by_glibc(monkeypatch):
    monkeypatch.delenv("LMC_MALLOC_DEFAULTS", raising=False)
    assert keep_freed_memory() is True


def test_defaults_can_be_kept(monkeypatch):
    monkeypatch.setenv("LMC_MALLOC_DEFAULTS", "1")
    assert keep_freed_memory() is False
