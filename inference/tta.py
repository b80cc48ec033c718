"""Test-time augmentation: the dihedral transforms of a square, each paired with its exact inverse.

Every transform is a pure index permutation (rot90 / flip), so undoing it on the model's output is
exact: an identity model averaged over any TTA setting returns its input bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .settings import TTA_MODES


@dataclass(frozen=True)
class Transform:
    """x -> rot90(flip_W(x) if flip else x, k); the inverse runs the two steps backwards."""

    k: int          # quarter turns counter-clockwise in the (H, W) plane
    flip: bool      # mirror along W before rotating

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        if self.flip:
            x = torch.flip(x, dims=(-1,))
        return torch.rot90(x, self.k, dims=(-2, -1)) if self.k % 4 else x

    def invert(self, y: torch.Tensor) -> torch.Tensor:
        if self.k % 4:
            y = torch.rot90(y, -self.k, dims=(-2, -1))
        return torch.flip(y, dims=(-1,)) if self.flip else y

    def out_shape(self, h: int, w: int) -> tuple[int, int]:
        """Spatial shape after `apply`: odd quarter turns swap H and W."""
        return (w, h) if self.k % 2 else (h, w)


def transforms(mode: str) -> tuple[Transform, ...]:
    """The transforms of a TTA mode: none = identity, rot4 = 4 rotations, d4 = rotations x flips."""
    if mode == "none":
        return (Transform(0, False),)
    if mode == "rot4":
        return tuple(Transform(k, False) for k in range(4))
    if mode == "d4":
        return tuple(Transform(k, f) for f in (False, True) for k in range(4))
    raise ValueError(f"unknown TTA mode {mode!r}; expected one of {TTA_MODES}")
