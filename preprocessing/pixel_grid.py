"""How an image's pixel grid maps onto a model's: scale factors and the resampled shape (no torch).

`preprocessing.resampling` resamples with these; the defect detectors use them to find where the
model's windows and pixels fall on an image without importing torch.

Bounds. The factor (image pixel size / model pixel size) is clamped to [MIN_FACTOR, MAX_FACTOR]:
the data set's 60-162 nm against a 0.1 µm model is 0.6-1.6, so a factor outside the range means the
metadata is wrong (a pixel size of 5 µm would upsample 50x, 1000 µm would not fit in memory), and
the image is processed at the nearest bound instead. The model grid is further capped at
MAX_GRID_PIXELS: the window count, hence time and memory per image, is bounded by it.
"""
from __future__ import annotations

import math

import numpy as np

# Relative pixel-size difference below which images are used as they are.
SAME_SIZE_TOLERANCE = 0.01
MIN_FACTOR, MAX_FACTOR = 0.25, 2.0
# 8192 x 8192 model pixels: with the float32 input, output and weight buffers about 1.5 GB.
MAX_GRID_PIXELS = 2 ** 26


def raw_factors(image_pixel_um: tuple[float, float] | None,
                model_pixel_um: float | None) -> tuple[float, float] | None:
    """(fy, fx) as the metadata says, unclamped; None when either size is unknown or not usable."""
    if image_pixel_um is None or model_pixel_um is None:
        return None
    if not (np.isfinite(model_pixel_um) and model_pixel_um > 0):
        return None
    with np.errstate(all="ignore"):
        factors = tuple(float(p) / float(model_pixel_um) for p in image_pixel_um)
    if not all(np.isfinite(f) and f > 0 for f in factors):
        return None
    return factors  # type: ignore[return-value]


def scale_factors(image_pixel_um: tuple[float, float] | None,
                  model_pixel_um: float | None,
                  tolerance: float = SAME_SIZE_TOLERANCE,
                  shape: tuple[int, int] | None = None) -> tuple[float, float] | None:
    """(fy, fx): model-grid pixels per image pixel, or None when no resampling is needed.

    Clamped to [MIN_FACTOR, MAX_FACTOR]; with `shape`, also shrunk so the grid holds at most
    MAX_GRID_PIXELS (the cap wins over MIN_FACTOR: memory is the harder limit)."""
    factors = raw_factors(image_pixel_um, model_pixel_um)
    if factors is not None:
        factors = tuple(min(max(f, MIN_FACTOR), MAX_FACTOR) for f in factors)  # type: ignore[assignment]
    if shape is not None:
        area = math.prod(scaled_shape(shape, factors))
        shrink = math.sqrt(MAX_GRID_PIXELS / area)
        while area > MAX_GRID_PIXELS:   # a few rounds at most: rounding each side may overshoot
            shrink *= 0.999
            capped = tuple(f * shrink for f in (factors or (1.0, 1.0)))
            area = math.prod(scaled_shape(shape, capped))  # type: ignore[arg-type]
            if area <= MAX_GRID_PIXELS:
                factors = capped  # type: ignore[assignment]
    if factors is None or all(abs(f - 1.0) <= tolerance for f in factors):
        return None
    return factors  # type: ignore[return-value]


def grid_warnings(shape: tuple[int, int], image_pixel_um: tuple[float, float] | None,
                  model_pixel_um: float | None) -> list[str]:
    """What `scale_factors` changed from the metadata's factor, in words for the log."""
    notes = []
    raw = raw_factors(image_pixel_um, model_pixel_um)
    if raw is not None and any(not MIN_FACTOR <= f <= MAX_FACTOR for f in raw):
        clamped = tuple(min(max(f, MIN_FACTOR), MAX_FACTOR) for f in raw)
        notes.append(f"resampling factor {raw[0]:.4g}x{raw[1]:.4g} (pixel size {image_pixel_um} µm vs the "
                     f"model's {model_pixel_um} µm) is outside [{MIN_FACTOR}, {MAX_FACTOR}]; "
                     f"processed at {clamped[0]:g}x{clamped[1]:g}")
    factors = scale_factors(image_pixel_um, model_pixel_um, shape=shape)
    grid = scaled_shape(shape, factors)
    uncapped = scaled_shape(shape, scale_factors(image_pixel_um, model_pixel_um))
    if grid != uncapped:
        notes.append(f"model grid {uncapped[0]}x{uncapped[1]} exceeds the bound of {MAX_GRID_PIXELS} pixels; "
                     f"processed at {grid[0]}x{grid[1]}")
    return notes


def scaled_shape(shape: tuple[int, int], factors: tuple[float, float] | None) -> tuple[int, int]:
    if factors is None:
        return tuple(shape)  # type: ignore[return-value]
    return tuple(max(1, round(n * f)) for n, f in zip(shape, factors))  # type: ignore[return-value]
