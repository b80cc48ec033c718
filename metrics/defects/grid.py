"""Where a checkpoint's model grid and sliding windows fall on an image, in image pixels.

Inference resamples the image to the checkpoint's pixel size (preprocessing.pixel_grid), slides
windows over that grid (inference.geometry) and resamples the result back to the image. A defect
the model makes on its grid (a period of 2 grid pixels, a step at a window border) therefore
shows on the image at the grid's scale: one grid pixel is image_size / grid_size image pixels.
"""
from __future__ import annotations

from dataclasses import dataclass

from inference.geometry import tile_geometry, window_edges, window_step
from preprocessing.pixel_grid import scale_factors, scaled_shape


@dataclass(frozen=True)
class WindowGeometry:
    """What one checkpoint does to an image: its grid's pixel size, window and size divisor
    (CheckpointSpec), and the overlap it was run with (InferenceSettings)."""

    pixel_size_um: float | None    # None: run on the image's own grid
    window: int
    size_divisor: int
    overlap: float
    name: str = ""

    @classmethod
    def from_spec(cls, spec, overlap: float, name: str = "") -> WindowGeometry:
        return cls(spec.pixel_size_um, int(spec.window), int(spec.size_divisor), float(overlap), name)


@dataclass(frozen=True)
class GridOnImage:
    """One geometry mapped onto one image."""

    grid_shape: tuple[int, int]              # the model grid's H, W
    image_px_per_grid_px: tuple[float, float]
    edges: tuple[tuple[int, ...], tuple[int, ...]]   # inner window edges per axis, image coordinates
    window_step_image_px: tuple[float | None, float | None]   # None: one window spans that axis


def map_geometry(geometry: WindowGeometry, image_shape: tuple[int, int],
                 image_pixel_um: tuple[float, float] | None) -> GridOnImage:
    """An edge between grid pixels e-1 and e maps to the image edge at e * image/grid pixels
    (bilinear resampling without corner alignment keeps the grid's border on the image's)."""
    factors = scale_factors(image_pixel_um, geometry.pixel_size_um, shape=tuple(image_shape))
    grid = scaled_shape(tuple(image_shape), factors)
    ratio = tuple(n / g for n, g in zip(image_shape, grid))
    edges, steps = [], []
    for g, r, n in zip(grid, ratio, image_shape):
        on_grid = window_edges(g, geometry.window, geometry.size_divisor, geometry.overlap)
        edges.append(tuple(sorted({round(e * r) for e in on_grid} - {0, n})))
        tile = tile_geometry(g, geometry.window, geometry.size_divisor)[0]
        steps.append(window_step(tile, geometry.overlap) * r if on_grid else None)
    return GridOnImage(grid, ratio, tuple(edges), tuple(steps))  # type: ignore[arg-type]
