"""Ceilings: what a perfect prediction scores once it has gone through a model's resampling.

A model that works on its own grid (e.g. 0.2 um per pixel) can at best return the ground truth as
seen on that grid, brought back to the image's pixels; a model that resizes the whole image to
256 x 256 (the winning team's inference) can at best return the ground truth resized to 256 and
back. Scoring those "perfect" images against the ground truth says how much of the gap to a perfect
score the resampling alone costs, before any model error. The resampling is the pipeline's own
(preprocessing/resampling.py: antialiased bilinear down, bilinear back).
"""
from __future__ import annotations

import numpy as np

from preprocessing.resampling import resize, to_model_grid, to_shape

WINNER_SIDE = 256


def through_grid(gt: np.ndarray, pixel_size_um: tuple[float, float] | None, grid_um: float) -> np.ndarray:
    """The ground truth on a model grid of `grid_um` and back to its own shape."""
    return to_shape(to_model_grid(np.asarray(gt, np.float32), pixel_size_um, grid_um), gt.shape)


def through_resize(gt: np.ndarray, side: int = WINNER_SIDE) -> np.ndarray:
    """The ground truth resized to side x side (the whole image, aspect ignored) and back."""
    return resize(resize(np.asarray(gt, np.float32), (side, side)), gt.shape)
