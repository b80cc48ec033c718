"""Inference settings, free of torch so the CLI can show its defaults instantly."""
from __future__ import annotations

from dataclasses import dataclass

TTA_MODES = ("none", "rot4", "d4")
BLEND_MODES = ("gaussian", "gaussian-border", "constant")


@dataclass
class InferenceSettings:
    overlap: float = 0.25          # fraction of a window shared with its neighbour
    # "gaussian" (MONAI's map everywhere), "gaussian-border" (flat toward the image border: no
    # border seams, but not the default, README "Measured") or "constant"
    # (inference/sliding_window.py).
    blend: str = "gaussian"
    tta: str = "rot4"              # "none" | "rot4" (4 rotations) | "d4" (rotations x flips)
    batch_size: int = 8            # forward samples (windows x augmentations) per model call
    device: str | None = None      # where models run; None = CUDA when available
    amp: bool = True               # fp16 autocast + channels-last on CUDA (ignored on CPU)
    window: int | None = None      # override every checkpoint's preferred window (model pixels)
    # Mirrored context around the image, in model pixels, cropped off before the output range
    # and calibration: the image's own corners and borders are then seen like its interior
    # (inference/pipeline.py). 0 by default: 32 removed most of the bright-field actin VQGAN's
    # corner saturation on the development set but cost nucleus SSIM and MAE (README, Measured).
    context: int = 0

    def __post_init__(self) -> None:
        if self.blend not in BLEND_MODES:
            raise ValueError(f"blend must be one of {BLEND_MODES}, got {self.blend!r}")
        if self.tta not in TTA_MODES:
            raise ValueError(f"tta must be one of {TTA_MODES}, got {self.tta!r}")
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError(f"overlap must be in [0, 1), got {self.overlap}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.window is not None and self.window < 1:
            raise ValueError(f"window must be >= 1, got {self.window}")
        if self.context < 0:
            raise ValueError(f"context must be >= 0, got {self.context}")

    def torch_device(self):
        import torch  # lazily: this module stays importable without torch
        return torch.device(self.device or ("cuda" if torch.cuda.is_available() else "cpu"))
