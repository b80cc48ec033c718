"""Named configuration presets, shared by every model family's config dataclass."""
from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

T = TypeVar("T")


def from_preset(cls: type[T], presets: dict[str, dict], family: str, name: str, overrides: dict) -> T:
    """`cls(**presets[name])` with `overrides` applied; a clear error for an unknown name."""
    if name not in presets:
        raise ValueError(f"unknown {family} preset {name!r}; expected one of {tuple(presets)}")
    return replace(cls(**presets[name]), **overrides)
