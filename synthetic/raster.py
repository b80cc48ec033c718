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


def heading_turns(n: int, n_steps: int, turn_sd: float, rng: np.random.Generator) -> np.ndarray:
    """Heading changes of `n` worm-like chains: (n, n_steps) float32, none before the first point.

    The heading diffuses with `turn_sd` radians per step (a persistence length of about
    2*step/turn_sd²), which gives straight microtubules for tiny values and wiggly mitochondria
    for larger ones.
    """
    turns = rng.normal(0.0, turn_sd, size=(n, n_steps)).astype(np.float32)
    turns[:, 0] = 0.0
    return turns


def walk_until_invalid(start_y: np.ndarray, start_x: np.ndarray, angle: np.ndarray, turns: np.ndarray,
                       step: float, valid, block: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Worm-like chains that end at their first invalid point: (ys, xs, kept), each (n, n_steps).

    Point k of chain c lies at start + step · Σ_{0<j≤k} (sin, cos)(heading_j), with
    heading_k = angle + Σ_{j≤k} turns_j. `valid(chains, first_step, ys, xs)` says which points
    of a block of steps, for the given chains, may be kept (a bool array shaped like ys); ys and
    xs hold meaningful values only where `kept` is true.

    Most chains leave their cell after a fraction of their steps, so the walk advances a block of
    steps at a time for the chains still going. Running sums carry over between blocks by adding
    the previous sum to the block's first term: the same float32 additions, in the same order, as
    one cumulative sum over all steps.
    """
    n, n_steps = turns.shape
    ys = np.empty((n, n_steps), np.float32)
    xs = np.empty((n, n_steps), np.float32)
    kept = np.zeros((n, n_steps), bool)
    angle = angle.astype(np.float32)
    chains = np.arange(n)
    sums = None  # per chain still going: the running sums of turns, sines and cosines so far
    for k0 in range(0, n_steps, block):
        k1 = min(k0 + block, n_steps)
        turn = turns[chains, k0:k1]
        if sums is not None:
            turn[:, 0] += sums[0]
        turn = np.cumsum(turn, axis=1)
        heading = angle[chains, None] + turn
        sin, cos = np.sin(heading), np.cos(heading)
        if sums is None:  # the first point is the start itself
            first_sin, first_cos = step * np.sin(heading[:, :1]), step * np.cos(heading[:, :1])
        else:
            sin[:, 0] += sums[1]
            cos[:, 0] += sums[2]
        sin, cos = np.cumsum(sin, axis=1), np.cumsum(cos, axis=1)
        y = start_y[chains, None] + step * sin - first_sin
        x = start_x[chains, None] + step * cos - first_cos
        ok = np.logical_and.accumulate(valid(chains, k0, y, x), axis=1)
        ys[chains, k0:k1], xs[chains, k0:k1], kept[chains, k0:k1] = y, x, ok
        going = ok[:, -1]
        if not going.any():
            break
        chains, first_sin, first_cos = chains[going], first_sin[going], first_cos[going]
        sums = (turn[going, -1], sin[going, -1], cos[going, -1])
    return ys, xs, kept


def ellipse_pixels(box: tuple[int, int, int, int], cy: float, cx: float, semi_along: float,
                   semi_across: float, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """(y, x) of the pixels of `box` (y0, y1, x0, x1) whose centres may lie inside an ellipse,
    in row-major order.

    The ellipse is centred on (cy, cx) with semi-axis `semi_along` in the direction `angle`
    (x right, y down) and `semi_across` across it. Each row's span is widened by a pixel on both
    sides, so rounding never loses a pixel that lies inside. Working on these pixels instead of
    the whole box saves most of the box's corners for an elongated, tilted shape.
    """
    y0, y1, x0, x1 = box
    c, s = np.cos(angle), np.sin(angle)
    rows = np.arange(y0, y1)
    dy = rows - cy
    # With u = (dx c + dy s) / A and v = (-dx s + dy c) / B, u² + v² = 1 is, along a row,
    # the quadratic alpha dx² + 2 beta dx + gamma = 0.
    alpha = c * c / semi_along ** 2 + s * s / semi_across ** 2
    beta = dy * c * s * (1 / semi_along ** 2 - 1 / semi_across ** 2)
    gamma = dy * dy * (s * s / semi_along ** 2 + c * c / semi_across ** 2) - 1
    disc = beta * beta - alpha * gamma
    root = np.sqrt(np.maximum(disc, 0))
    first = np.maximum(np.floor(cx + (-beta - root) / alpha).astype(np.int64) - 1, x0)
    stop = np.minimum(np.ceil(cx + (-beta + root) / alpha).astype(np.int64) + 2, x1)
    counts = np.where(disc >= 0, np.maximum(stop - first, 0), 0)
    y = np.repeat(rows, counts)
    # x runs from `first` within each row: a global count minus the row's starting offset.
    offsets = np.cumsum(counts) - counts
    x = np.arange(y.size) - np.repeat(offsets - first, counts)
    return y, x


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

