"""Resampling between an image's physical pixel size and a model's.

The data set spans 65-110 nm per pixel; a model sees its training pixel size. `to_model_grid`
rescales by physical size (antialiased when shrinking; the factor and the grid bounded as
`pixel_grid` says), `to_shape` brings a prediction back to exactly the input's H x W. When either
pixel size is unknown, or they agree within 1 %, nothing is resampled: interpolating for a 1 %
change would blur for no gain.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from preprocessing.pixel_grid import SAME_SIZE_TOLERANCE, scale_factors, scaled_shape  # noqa: F401 (re-exported)


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
    shape = tuple(array.shape[-2:])
    factors = scale_factors(image_pixel_um, model_pixel_um, shape=shape)  # type: ignore[arg-type]
    return array if factors is None else resize(array, scaled_shape(shape, factors))  # type: ignore[arg-type]


def to_shape(array: Array, shape: tuple[int, int]) -> Array:
    """Back to exactly `shape` (H, W); identity when it already has it."""
    return array if tuple(array.shape[-2:]) == tuple(shape) else resize(array, shape)
