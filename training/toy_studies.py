"""Tiny study folders in the Light My Cells layout, for tests and benchmarks of the training code.

Not a microscope simulator (that is synthetic/): each organelle image is a fixed local function
of the in-focus TL image, so a small network can learn it in a few hundred steps and a test can
tell learning from noise. TL: blobs on a smooth background; z-slices further from focus are more
blurred. Ground truth: nucleus = blurred blobs, mitochondria = |Laplacian|, tubulin = gradient
magnitude, actin = bright thresholded TL. Written as uint16 OME-TIFFs with a pixel size.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from preprocessing.layout import gt_file_name, tl_file_name
from preprocessing.ome_io import ORGANELLES, write_ome_tiff


def _organelle(name: str, tl: np.ndarray) -> np.ndarray:
    if name == "nucleus":
        return ndimage.gaussian_filter(tl, 2.0)
    if name == "mitochondria":
        return np.abs(ndimage.laplace(ndimage.gaussian_filter(tl, 1.0)))
    if name == "tubulin":
        return ndimage.gaussian_gradient_magnitude(tl, 1.0)
    return np.clip(tl - np.percentile(tl, 80), 0, None)


def _to_uint16(image: np.ndarray) -> np.ndarray:
    lo, hi = float(image.min()), float(image.max())
    return np.round((image - lo) / max(hi - lo, 1e-12) * 60000 + 1000).astype(np.uint16)


def write_toy_studies(root: str | Path, *, studies: int = 2, fovs_per_study: int = 3, size: int = 64,
                      z_slices: int = 2, modality: str = "BF",
                      organelles_of: dict[int, tuple[str, ...]] | None = None, seed: int = 0,
                      pixel_size_um: float = 0.1) -> Path:
    """Write ROOT/Study_<s>/... and return ROOT. `organelles_of` maps a global FOV index to the
    organelles it has GT for (default: cycles through 1-3 organelles so none has all four)."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    index = 0
    for s in range(studies):
        folder = root / f"Study_{s + 1}"
        for f in range(fovs_per_study):
            image_id = f"{s + 1}x{f + 1}"
            points = np.zeros((size, size))
            n = max(4, size * size // 150)
            points[rng.integers(0, size, n), rng.integers(0, size, n)] = rng.uniform(0.5, 1.5, n)
            tl = ndimage.gaussian_filter(points, 2.0) * 40 + ndimage.gaussian_filter(
                rng.normal(size=(size, size)), 8.0)
            for z in range(z_slices):
                blurred = ndimage.gaussian_filter(tl, 0.8 * z) if z else tl
                noisy = blurred + rng.normal(0, 0.01 * tl.std(), tl.shape)
                write_ome_tiff(folder / tl_file_name(image_id, modality, z), _to_uint16(noisy),
                               channel_name=modality, pixel_size_um=(pixel_size_um, pixel_size_um))
            if organelles_of is not None:
                have = organelles_of.get(index, ())
            else:
                have = tuple(ORGANELLES[(index + j) % 4] for j in range(1 + index % 3))
            for organelle in have:
                write_ome_tiff(folder / gt_file_name(image_id, organelle),
                               _to_uint16(_organelle(organelle, tl)), channel_name=organelle,
                               pixel_size_um=(pixel_size_um, pixel_size_um))
            index += 1
    return root
