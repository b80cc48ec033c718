"""Where the sliding windows fall, in plain integers (no torch: the defect detectors use it too).

Windows of a model's size walk over each axis of the image (on the model's pixel grid) with a
given overlap, the last window flush with the end; an axis shorter than a window is reflect-padded
to a small tile (`tile_geometry`) and cropped back. `window_edges` lists where window borders fall
inside the image, which is where a blending or border defect shows as a seam.
"""
from __future__ import annotations

import math

# Smallest tile an image smaller than the window is padded to (see tile_geometry).
MIN_TILE = 64


def window_starts(size: int, window: int, overlap: float) -> list[int]:
    """Start offsets along one axis: step int(window * (1 - overlap)), last window flush with the end.

    Same grid as MONAI's dense_patch_slices, so both blend identical windows.
    """
    if window >= size:
        return [0]
    step = window_step(window, overlap)
    count = math.ceil((size - window) / step) + 1
    return [min(i * step, size - window) for i in range(count)]


def window_step(window: int, overlap: float) -> int:
    """Distance between neighbouring window starts (before the last one is pulled flush)."""
    return max(int(window * (1.0 - overlap)), 1)


def _round_up(value: int, divisor: int) -> int:
    return -(-value // divisor) * divisor


def tile_geometry(size: int, window: int, divisor: int) -> tuple[int, int, int]:
    """(tile, pad_before, pad_after) along one axis.

    The window is made a multiple of the divisor. An axis shorter than it gets a tile of its own
    length, but at least MIN_TILE, rounded up to the divisor: cheaper than padding a 10-pixel image
    to a 512 window, while a deep model still has a few pixels left at its coarsest level (a 4-pixel
    tile would be 1 pixel there, which reflection padding and instance norm cannot handle).
    """
    tile = max(divisor, window // divisor * divisor)
    if size >= tile:
        return tile, 0, 0
    tile = min(tile, _round_up(max(size, MIN_TILE), divisor))
    pad = tile - size
    return tile, pad // 2, pad - pad // 2


def window_edges(size: int, window: int, divisor: int, overlap: float) -> list[int]:
    """Window borders strictly inside an axis of `size` pixels (the model grid), sorted.

    An edge at e lies between pixels e - 1 and e. Both the start and the end of every window count;
    the padding of a short axis is taken off, so its window's borders fall outside and none is left.
    """
    tile, pad_before, pad_after = tile_geometry(size, window, divisor)
    starts = window_starts(size + pad_before + pad_after, tile, overlap)
    edges = {e - pad_before for s in starts for e in (s, s + tile)}
    return sorted(e for e in edges if 0 < e < size)
