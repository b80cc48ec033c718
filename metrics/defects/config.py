"""The named thresholds of the defect detectors, in one frozen dataclass.

Set from planted defects (each must fire) and from clean and real images (none may fire): see
test/test_metrics_defects.py. Never tuned on the scores of predictions.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DefectConfig:
    # --- saturation: pixels at the ceiling (integer dtype max; 1.0 for floats in [0, 1]) ---
    # Border band: this fraction of the shorter side, at least band_min_px (and at most half of it).
    band_fraction: float = 0.05
    band_min_px: int = 16
    # A saturated blob (8-connected) in the bands is judged when it has at least min_blob_px pixels
    # or touches the image's outermost row or column at any size: the bright-field actin VQGAN
    # reaches the ceiling at a single pixel on the image edge in most images, while a prediction
    # calibrated so that its maximum is the ceiling has one such pixel on a smooth bright structure,
    # which may lie near (not on) the border.
    min_blob_px: int = 2
    # A blob in the corner or border bands is a finding when the bands' saturated-pixel density is
    # this many times the interior's: real confocal images saturate on bright cells everywhere
    # (ISL DAPI: 0.3 % of its pixels, some near the border); a model's border artefact sits where
    # the interior has nothing.
    edge_density_ratio: float = 4.0
    # One saturated plateau (blob) over this share of the image is a finding: above 0.2 % of the
    # pixels the challenge's p99.8 is the ceiling itself, so the plateau is flattened.
    plateau_fraction: float = 0.002

    # --- periodic energy (checkerboard, blocks, window period) ---
    # Periods a model can create, in model-grid pixels: stride-2 upsampling (2, 4) and the VQGAN's
    # 8-px blocks; the window step is added from the geometry.
    model_periods_grid: tuple[int, ...] = (2, 4, 8)
    min_period_px: float = 2.0         # shorter image periods were removed by antialiased resampling
    # A period must fit this often into the image to be measured: the spectrum below ~10 cycles is
    # steep and shaped by the cells, no reference for a peak (so today's window step, 384-450 image
    # px, is measured only on images over ~4000 px; the seam detector sees window borders directly).
    min_cycles: float = 10.0
    peak_radius_bins: int = 2          # neighbourhood of a target frequency (Hann main lobe, resampling)
    annulus_half_width_bins: int = 3   # reference ring around the same radius
    # Reference along the same direction, against the streak of a straight axis-aligned line:
    # samples from radial_gap_bins beyond the neighbourhood, radial_reach_bins of them, each side.
    radial_gap_bins: int = 6
    radial_reach_bins: int = 8
    periodic_ratio: float = 10.0       # peak / reference median above this ...
    periodic_min_share: float = 1e-6   # ... and the peak holds at least this share of the AC power

    # --- seams: steps across inner window edges ---
    seam_reference_px: int = 12        # neighbouring rows/columns on each side (in lag units) ...
    seam_gap_px: int = 2               # ... starting this far (in lag units) from the edge
    seam_segment_px: int = 64          # the line is judged by the median of its segments
    seam_ratio: float = 4.0            # edge gradient / median neighbour gradient above this ...
    seam_min_step: float = 0.01        # ... and the step at least 1 % of the p2/p99.8 range

    # --- invented bright spots (needs the ground truth) ---
    # Judged for these organelles only: a nucleus stain is smooth at this scale, so a small bright
    # spot the truth lacks is an artefact (the nucleus VQGAN's nucleoli); in mitochondria and
    # tubulin, small bright structures are the stain itself and a misplaced one is a plain error.
    spot_organelles: tuple[str, ...] = ("nucleus",)
    spot_area_um2: tuple[float, float] = (0.1, 10.0)
    default_pixel_um: float = 0.1      # assumed when the file has no pixel size
    # Top-hat (prediction minus its grey opening) above this, in p2/p99.8-normalised units: a spot
    # a third of the image's range brighter than its surroundings.
    spot_contrast: float = 0.3
    # The opening's square is this many spot diameters (the largest spot area's) wide.
    background_diameters: float = 1.5
    # The ground truth has no spot there when its own top-hat, averaged over the spot, is below
    # this (a third of spot_contrast: a dark background) ...
    gt_spot_level: float = 0.1
    # ... or when it is darker over the spot than over a ring of ring_px around it by gt_dip (a dip
    # such as a nucleolus in a bright nucleus; the ring is thin so that a brighter neighbour a few
    # pixels away does not count).
    gt_dip: float = 0.05
    ring_px: int = 3
