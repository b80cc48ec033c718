"""Resampling between an image's physical pixel size and a model's.

The data set spans 65-110 nm per pixel; a model sees its training pixel size. `to_model_grid`
rescales by physical size (antialiased when shrinking), `to_shape` brings a prediction back to
exactly the input's H x W. When either pixel size is unknown, or they agree within 1 %, nothing
is resampled: interpolating for a 1 % change would blur for no gain.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

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


def resize(array: np.ndarray | torch.Tensor, shape: tuple[int, int]) -> np.ndarray | torch.Tensor:
    """Bilinear resize of an H x W or C x H x W array to `shape` (antialiased when shrinking).

    Returns the same kind it was given (numpy float32 or a float32 tensor on the same device).
    """
    as_numpy = not isinstance(array, torch.Tensor)
    x = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)) if as_numpy else array.float()
    if tuple(x.shape[-2:]) == tuple(shape):
        out = x
    else:
        lead = x.shape[:-2]
        batch = x.reshape(1, -1, *x.shape[-2:])
        shrinking = shape[0] < x.shape[-2] or shape[1] < x.shape[-1]
        out = F.interpolate(batch, size=tuple(shape), mode="bilinear", align_corners=False,
                            antialias=shrinking).reshape(*lead, *shape)
    return out.numpy() if as_numpy else out


Array = np.ndarray | torch.Tensor


def to_model_grid(array: Array, image_pixel_um: tuple[float, float] | None,
                  model_pixel_um: float | None) -> Array:
    """The array resampled to the model's pixel size (unchanged when not needed)."""
    factors = scale_factors(image_pixel_um, model_pixel_um)
    return array if factors is None else resize(array, scaled_shape(tuple(array.shape[-2:]), factors))


def to_shape(array: Array, shape: tuple[int, int]) -> Array:
    """Back to exactly `shape` (H, W); identity when it already has it."""
    return array if tuple(array.shape[-2:]) == tuple(shape) else resize(array, shape)
