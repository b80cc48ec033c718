"""Drawing points and curves onto a pixel grid, vectorised over thousands of curves at once.

Curves (mitochondria, microtubules, stress fibres) are sampled as points every ~0.75 pixel and
splatted bilinearly, so a line of unit linear density deposits one unit per pixel of length without
aliasing. Their physical width comes later from a Gaussian blur in Fourier space.
"""
from __future__ import annotations

import numpy as np


def splat(shape: tuple[int, int], y: np.ndarray, x: np.ndarray, weights: np.ndarray | float = 1.0
          ) -> np.ndarray:
    """Bilinear accumulation of weighted points (pixel coordinates) into a float32 image."""
    h, w = shape
    y, x = np.asarray(y, np.float32), np.asarray(x, np.float32)
    weights = np.broadcast_to(np.asarray(weights, np.float32), y.shape).ravel()
    y, x = y.ravel(), x.ravel()
    keep = (y >= 0) & (y < h - 1) & (x >= 0) & (x < w - 1) & (weights != 0)
    y, x, weights = y[keep], x[keep], weights[keep]
    y0 = np.floor(y).astype(np.int64)
    x0 = np.floor(x).astype(np.int64)
    fy = y - y0
    fx = x - x0
    base = y0 * w + x0
    flat = np.concatenate([base, base + 1, base + w, base + w + 1])
    vals = np.concatenate([weights * (1 - fy) * (1 - fx), weights * (1 - fy) * fx,
                           weights * fy * (1 - fx), weights * fy * fx])
    return np.bincount(flat, vals, minlength=h * w).astype(np.float32).reshape(h, w)


def random_walks(start_y: np.ndarray, start_x: np.ndarray, angle: np.ndarray, n_steps: int,
                 step: float, turn_sd: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Worm-like chains: (n, n_steps) y and x coordinates.

    The heading diffuses with `turn_sd` radians per step (a persistence length of about
    2*step/turn_sd²), which gives straight microtubules for tiny values and wiggly mitochondria
    for larger ones.
    """
    n = start_y.size
    turns = rng.normal(0.0, turn_sd, size=(n, n_steps)).astype(np.float32)
    turns[:, 0] = 0.0
    heading = angle[:, None].astype(np.float32) + np.cumsum(turns, axis=1)
    ys = start_y[:, None] + step * np.cumsum(np.sin(heading), axis=1) - step * np.sin(heading[:, :1])
    xs = start_x[:, None] + step * np.cumsum(np.cos(heading), axis=1) - step * np.cos(heading[:, :1])
    return ys.astype(np.float32), xs.astype(np.float32)


def lookup(image: np.ndarray, y: np.ndarray, x: np.ndarray, outside=0):
    """Nearest-pixel values of `image` at (y, x); `outside` where the point leaves the grid."""
    return GridPoints(image.shape, y, x).values(image, outside)


class GridPoints:
    """Nearest pixels of many points, found once and used to read several images of one shape
    (a chain is checked against the cell labels and the nucleus map at the same points)."""

    def __init__(self, shape: tuple[int, int], y: np.ndarray, x: np.ndarray):
        h, w = shape
        self.shape = tuple(shape)
        iy = np.rint(y).astype(np.int64)
        ix = np.rint(x).astype(np.int64)
        self.inside = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < w)
        self.flat = np.where(self.inside, iy * w + ix, 0)

    def values(self, image: np.ndarray, outside=0) -> np.ndarray:
        if image.shape != self.shape:
            raise ValueError(f"image of shape {image.shape}, points on a {self.shape} grid")
        return np.where(self.inside, image.ravel().take(self.flat), np.asarray(outside, image.dtype))


class PixelSampler:
    """Draws sub-pixel positions with probability proportional to a weight map (≥ 0).

    The cumulative sum is built once, so several kinds of particles can share it.
    """

    def __init__(self, weights: np.ndarray):
        self.width = weights.shape[1]
        self.cdf = np.cumsum(weights.ravel(), dtype=np.float64)

    def __call__(self, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if count <= 0 or self.cdf[-1] <= 0:
            return np.zeros(0, np.float32), np.zeros(0, np.float32)
        flat = np.searchsorted(self.cdf, rng.random(count) * self.cdf[-1], side="right")
        y, x = np.divmod(np.minimum(flat, self.cdf.size - 1), self.width)
        return ((y + rng.random(count) - 0.5).astype(np.float32),
                (x + rng.random(count) - 0.5).astype(np.float32))

