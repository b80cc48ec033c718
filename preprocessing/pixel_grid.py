"""How an image's pixel grid maps onto a model's: scale factors and the resampled shape (no torch).

`preprocessing.resampling` resamples with these; the defect detectors use them to find where the
model's windows and pixels fall on an image without importing torch.
"""
from __future__ import annotations

import numpy as np

# Relative pixel-size difference below which images are used as they are.
SAME_SIZE_TOLERANCE = 0.01


def scale_factors(image_pixel_um: tuple[float, float] | None,
                  model_pixel_um: float | None,
                  tolerance: float = SAME_SIZE_TOLERANCE) -> tuple[float, float] | None:
    """(fy, fx): model-grid pixels per image pixel, or None when no resampling is needed."""
    if image_pixel_um is None or model_pixel_um is None:
        return None
    if not (np.isfinite(model_pixel_um) and model_pixel_um > 0):
        return None
    factors = tuple(float(p) / float(model_pixel_um) for p in image_pixel_um)
    if not all(np.isfinite(f) and f > 0 for f in factors):
        return None
    if all(abs(f - 1.0) <= tolerance for f in factors):
        return None
    return factors  # type: ignore[return-value]


def scaled_shape(shape: tuple[int, int], factors: tuple[float, float] | None) -> tuple[int, int]:
    if factors is None:
        return tuple(shape)  # type: ignore[return-value]
    return tuple(max(1, round(n * f)) for n, f in zip(shape, factors))  # type: ignore[return-value]
