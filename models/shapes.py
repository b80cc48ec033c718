"""Input checks shared by the generators: a wrong shape fails here, with the sizes in the message,
instead of deep inside a conv or as a silently cropped output."""
from __future__ import annotations

import torch


def check_input(x: torch.Tensor, channels: int, divisor: int) -> None:
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"expected input [B, {channels}, H, W], got {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % divisor or w % divisor:
        raise ValueError(f"input size {h}x{w} is not a multiple of {divisor}; pad it first")
