"""Normalisation layers for the pix2pix generator and the PatchGAN discriminator.

One small factory instead of a `functools.partial` passed around: the config names the norm, and
the conv in front of it asks `conv_bias(kind)` whether it needs its own bias. A bias right before
a norm with affine terms is redundant (the norm's shift absorbs it), so it is left out there only.
"""
from __future__ import annotations

from torch import nn

NORM_KINDS = ("instance", "batch", "none")


def make_norm(kind: str, channels: int) -> nn.Module:
    """`instance`: per-image statistics, no affine terms, no running stats (pix2pix's choice, so
    inference uses the window's own statistics, exactly as in training). `batch`: affine, running
    stats. `none`: identity."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; expected one of {NORM_KINDS}")


def conv_bias(kind: str) -> bool:
    """True when the conv before a norm of this kind needs a bias (the norm has no affine shift)."""
    if kind not in NORM_KINDS:
        raise ValueError(f"unknown norm {kind!r}; expected one of {NORM_KINDS}")
    return kind != "batch"
