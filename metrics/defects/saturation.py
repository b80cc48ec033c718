"""Saturation: pixels at the ceiling, where they lie (corners, borders, interior) and their blobs.

The ceiling is what the file cannot exceed: the integer dtype's maximum (65535 for the uint16 the
container writes), or 1.0 for float predictions in [0, 1]. A float image with values above 1 has no
known ceiling and is not judged.

Findings (thresholds in DefectConfig):
- edge saturation: saturated blobs in the corner or border bands (of at least `min_blob_px`, or
  of any size when they touch the image's outermost row or column) while the bands hold saturated
  pixels `edge_density_ratio` times as densely as the interior. A model's
  border artefact (the bright-field actin VQGAN's corners) puts them where the interior has none;
  a real confocal image that saturates on bright cells does so everywhere alike.
- plateau: one blob larger than `plateau_fraction` of the image; above 0.2 % the challenge's p99.8
  is the ceiling, so the normalisation flattens it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .config import DefectConfig

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class SaturationResult:
    ceiling: float | None       # None: float data above 1, no ceiling known
    band_px: int
    corner: int                 # saturated pixels within band_px of two image edges
    border: int                 # ... of exactly one edge
    interior: int
    blobs: int                  # 8-connected saturated blobs
    edge_blobs: int             # judged blobs in the bands (>= min_blob_px, or on the image edge)
    largest_blob: int           # pixels
    edge_density_ratio: float   # saturated density of the bands / the interior's (inf: interior none)
    edge_finding: bool
    plateau_finding: bool

    @property
    def total(self) -> int:
        return self.corner + self.border + self.interior

    @property
    def finding(self) -> bool:
        return self.edge_finding or self.plateau_finding

    def findings(self) -> list[str]:
        lines = []
        if self.edge_finding:
            lines.append(f"saturation: {self.edge_blobs} saturated blob(s) within {self.band_px} px of the "
                         f"border ({self.corner} px in corners, {self.border} px along borders, "
                         f"{self.interior} px inside)")
        if self.plateau_finding:
            lines.append(f"saturation: a saturated plateau of {self.largest_blob} px")
        return lines


def ceiling_of(image: np.ndarray) -> float | None:
    x = np.asarray(image)
    if x.dtype.kind in "ui":
        return float(np.iinfo(x.dtype).max)
    if x.dtype.kind == "b":
        return 1.0
    finite = x[np.isfinite(x)]
    return 1.0 if finite.size == 0 or float(finite.max()) <= 1.0 else None


def band_width(shape: tuple[int, int], config: DefectConfig) -> int:
    short = min(shape)
    return max(1, min(max(config.band_min_px, round(config.band_fraction * short)), short // 2))


def edge_zones(shape: tuple[int, int], band: int) -> np.ndarray:
    """H x W int8: how many image edges each pixel is within `band` pixels of (0, 1, or 2 = corner)."""
    h, w = shape
    rows = np.zeros(h, dtype=np.int8)
    cols = np.zeros(w, dtype=np.int8)
    rows[:band] = rows[h - band:] = 1
    cols[:band] = cols[w - band:] = 1
    return rows[:, None] + cols[None, :]


def check_saturation(image: np.ndarray, config: DefectConfig = DefectConfig()) -> SaturationResult:
    x = np.asarray(image)
    band = band_width(x.shape, config)
    ceiling = ceiling_of(x)
    if ceiling is None:
        return SaturationResult(None, band, 0, 0, 0, 0, 0, 0, 0.0, False, False)
    saturated = x >= ceiling
    if x.dtype.kind == "f":
        saturated &= np.isfinite(x)   # +inf is the non-finite detector's
    zones = edge_zones(x.shape, band)
    counts = [int(np.count_nonzero(saturated & (zones == z))) for z in (2, 1, 0)]
    corner, border, interior = counts
    labels, n = ndimage.label(saturated, structure=_EIGHT_CONNECTED)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)[1:]
    in_band = np.unique(labels[(zones > 0) & saturated])
    on_edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    judged = in_band[(sizes[in_band - 1] >= config.min_blob_px) | np.isin(in_band, on_edge)]
    edge_blobs = int(judged.size)
    band_area = int(np.count_nonzero(zones))
    inner_area = x.size - band_area
    band_density = (corner + border) / max(band_area, 1)
    inner_density = interior / inner_area if inner_area else 0.0
    ratio = band_density / inner_density if inner_density else (np.inf if band_density else 0.0)
    largest = int(sizes.max()) if n else 0
    return SaturationResult(
        ceiling=ceiling, band_px=band, corner=corner, border=border, interior=interior,
        blobs=int(n), edge_blobs=edge_blobs, largest_blob=largest, edge_density_ratio=float(ratio),
        edge_finding=edge_blobs > 0 and ratio >= config.edge_density_ratio,
        plateau_finding=largest > config.plateau_fraction * x.size)
