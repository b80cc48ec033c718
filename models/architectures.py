"""The one registry dict from architecture name to (model class, config class).

Checkpoints name their architecture by these keys; nothing else in the code looks modules up by
string.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from models.pix2pix import Pix2PixConfig, Pix2PixGenerator
from models.vqgan import VQGAN, VQGANConfig

ARCHITECTURES: dict[str, tuple[type[nn.Module], type]] = {
    "vqgan": (VQGAN, VQGANConfig),
    "pix2pix": (Pix2PixGenerator, Pix2PixConfig),
}


def make_config(arch: str, config: dict[str, Any] | Any) -> Any:
    """The config dataclass of `arch` from a dict (as stored in checkpoints) or an instance."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; expected one of {tuple(ARCHITECTURES)}")
    config_cls = ARCHITECTURES[arch][1]
    if isinstance(config, config_cls):
        return config
    if not isinstance(config, dict):
        raise TypeError(f"config for {arch!r} must be a dict or {config_cls.__name__}, "
                        f"got {type(config).__name__}")
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(f"config for {arch!r} has unknown fields {unknown}")
    return config_cls(**config)


def build_model(arch: str, config: dict[str, Any] | Any) -> nn.Module:
    """A freshly initialised model of `arch` (a key of ARCHITECTURES) with this config."""
    config = make_config(arch, config)      # validates arch first
    return ARCHITECTURES[arch][0](config)


def config_to_dict(config: Any) -> dict[str, Any]:
    """dataclasses.asdict with tuples as lists: the form a config has after a save/load trip,
    so that two configs compare equal however they were made."""
    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        return value
    raw = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    return plain(raw)
