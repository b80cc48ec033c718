"""Invented bright spots: small bright regions in the prediction where the ground truth is dark.

The nucleus VQGAN paints bright dots where nucleoli are, and nucleoli are dark in a DNA stain. Both
images are percentile-normalised as the challenge does (p2/p99.8). A spot is a connected region
(8-connected) where the prediction's white top-hat (the image minus its grey opening by a square a
little wider than the largest spot) exceeds `spot_contrast`, with an area within `spot_area_um2`
(pixel size from the file, else `default_pixel_um`). It is invented when the ground truth beneath
has no spot: either the ground truth's own top-hat, averaged over the spot, stays below
`gt_spot_level` (a dark background), or the ground truth is darker over the spot than over a thin
ring (`ring_px`) around it by `gt_dip` (a dip, such as a nucleolus inside a bright nucleus).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from metrics.challenge import percentile_normalise

from .config import DefectConfig

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class Spot:
    y: int
    x: int
    area_um2: float
    contrast: float        # the prediction's mean top-hat over the spot
    gt_contrast: float     # the ground truth's mean top-hat over the spot
    gt_dip: float          # the ground truth's mean over the ring minus over the spot


@dataclass(frozen=True)
class SpotResult:
    pixel_um: float        # the pixel size used (assumed when the file had none)
    candidates: int        # bright spots of the right size in the prediction
    invented: tuple[Spot, ...]

    @property
    def finding(self) -> bool:
        return bool(self.invented)

    def findings(self) -> list[str]:
        if not self.invented:
            return []
        areas = [s.area_um2 for s in self.invented]
        first = self.invented[0]
        return [f"spots: {len(self.invented)} of {self.candidates} bright spot(s) lie where the ground truth "
                f"is dark ({min(areas):.2g}-{max(areas):.2g} um^2; e.g. at y={first.y}, x={first.x})"]


def _white_top_hat(x: np.ndarray, size: int) -> np.ndarray:
    # Separable min/max filters: a square opening costs the same for any size.
    opened = ndimage.maximum_filter(ndimage.minimum_filter(x, size=size, mode="reflect"), size=size, mode="reflect")
    return x - opened


def check_spots(pred: np.ndarray, gt: np.ndarray, pixel_um: float | None,
                config: DefectConfig = DefectConfig()) -> SpotResult:
    if np.shape(pred) != np.shape(gt):
        raise ValueError(f"prediction shape {np.shape(pred)} differs from the ground truth's {np.shape(gt)}")
    pixel = float(pixel_um) if pixel_um and pixel_um > 0 else config.default_pixel_um
    px_area = pixel * pixel
    min_px, max_px = (a / px_area for a in config.spot_area_um2)
    diameter = 2.0 * math.sqrt(max_px / math.pi)
    size = max(3, int(math.ceil(config.background_diameters * diameter)) | 1)
    p, g = percentile_normalise(pred), percentile_normalise(gt)
    tophat = _white_top_hat(p, size)
    labels, n = ndimage.label(tophat > config.spot_contrast, structure=_EIGHT_CONNECTED)
    if n == 0:
        return SpotResult(pixel, 0, ())
    areas = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    keep = np.flatnonzero((areas >= min_px) & (areas <= max_px)) + 1
    if keep.size == 0:
        return SpotResult(pixel, 0, ())
    gt_contrast = ndimage.mean(_white_top_hat(g, size), labels, keep)
    contrast = ndimage.mean(tophat, labels, keep)
    centres = ndimage.center_of_mass(np.ones_like(p), labels, keep)
    boxes = ndimage.find_objects(labels)
    invented = []
    for k, (cy, cx), c, gc in zip(keep, centres, contrast, gt_contrast):
        dip = _ring_dip(g, labels, k, boxes[k - 1], config.ring_px)
        if gc < config.gt_spot_level or dip > config.gt_dip:
            invented.append(Spot(int(round(cy)), int(round(cx)), float(areas[k - 1] * px_area), float(c),
                                 float(gc), dip))
    return SpotResult(pixel, int(keep.size), tuple(invented))


def _ring_dip(g: np.ndarray, labels: np.ndarray, label: int, box: tuple[slice, slice], ring_px: int) -> float:
    """Mean of g over a ring of ring_px around the region minus its mean over the region (worked out
    in the region's box, grown by the ring: whole-image masks would cost H x W per spot)."""
    y0, x0 = max(box[0].start - ring_px, 0), max(box[1].start - ring_px, 0)
    y1, x1 = box[0].stop + ring_px, box[1].stop + ring_px
    inside = labels[y0:y1, x0:x1] == label
    ring = ndimage.binary_dilation(inside, structure=_EIGHT_CONNECTED, iterations=ring_px) & ~inside
    values = g[y0:y1, x0:x1]
    return float(values[ring].mean() - values[inside].mean()) if ring.any() else 0.0
