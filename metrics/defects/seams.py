"""Seam steps: a jump across the border of a sliding window.

For every inner window edge (grid.py maps them onto the image) the mean absolute difference
across the edge is compared with the median of the same measure at the neighbouring rows/columns.
The difference spans `lag` pixels, one model-grid pixel on the image (at least 1): upsampling from
a coarser grid spreads a grid step over that many image pixels; the edge's value is the largest of
the lag-spanning differences that straddle it. The line is cut into segments of `seam_segment_px`
and the edge's ratio is the median over the segments that hold any signal: a seam runs along the
window border, while a cell edge that happens to lie along it (a nucleus's rim, a straight fibre)
raises only the segments it crosses. The price: a seam that shows only where it cuts one cell
(a few segments of the line) is outvoted by the segments of background around it.

The image is p2/p99.8-normalised first, and a finding needs the step itself (the edge's excess
over its neighbours, median over the segments) to be at least `seam_min_step` of that range too:
a relative jump in a background a hundredth as bright as the cells is a real seam, but not one a
person or the metrics notice.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metrics.challenge import percentile_normalise

from .config import DefectConfig


@dataclass(frozen=True)
class SeamEdge:
    axis: str              # "row" (a horizontal seam) or "column"
    position: int          # the edge lies between pixels position - 1 and position
    ratio: float           # median over segments of edge difference / neighbour median
    step: float            # median over segments of edge difference - neighbour median (normalised)
    finding: bool


@dataclass(frozen=True)
class SeamResult:
    edges: tuple[SeamEdge, ...]

    @property
    def finding(self) -> bool:
        return any(e.finding for e in self.edges)

    @property
    def worst_ratio(self) -> float:
        return max((e.ratio for e in self.edges), default=0.0)

    def findings(self) -> list[str]:
        bad = [e for e in self.edges if e.finding]
        if not bad:
            return []
        where = ", ".join(f"{e.axis} {e.position} ({e.ratio:.1f}x, step {100 * e.step:.1f} %)" for e in bad[:6])
        more = f" and {len(bad) - 6} more" if len(bad) > 6 else ""
        return [f"seams: a step at {len(bad)} window edge(s): {where}{more}"]


def segment_profiles(x: np.ndarray, lag: int, axis: int, segment: int) -> np.ndarray:
    """[n - lag, segments]: mean |x[i + lag] - x[i]| across `axis`, per segment of the line."""
    if axis == 1:
        x = x.T
    diff = np.abs(x[lag:] - x[:-lag])
    n = diff.shape[1]
    bounds = np.linspace(0, n, max(1, round(n / segment)) + 1).round().astype(int)
    return np.stack([diff[:, a:b].mean(axis=1) for a, b in zip(bounds[:-1], bounds[1:])], axis=1)


def edge_step(profiles: np.ndarray, edge: int, lag: int, config: DefectConfig) -> tuple[float, float]:
    """(ratio, step) of the edge between pixels edge-1 and edge; profiles[i] spans i .. i + lag."""
    size = profiles.shape[0]
    straddling = profiles[max(edge - lag, 0):min(edge, size)]
    gap, reach = config.seam_gap_px * lag, (config.seam_gap_px + config.seam_reference_px) * lag
    near = np.r_[edge - reach:edge - gap - lag + 1, edge + gap:edge + reach - lag + 1]
    near = near[(near >= 0) & (near < size)]
    if straddling.shape[0] == 0 or near.size == 0:
        return 0.0, 0.0
    value = straddling.max(axis=0)
    reference = np.median(profiles[near], axis=0)
    signal = (value > 0) | (reference > 0)
    if not signal.any():
        return 0.0, 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = np.where(reference > 0, value / np.where(reference > 0, reference, 1.0), np.inf)
    return float(np.median(ratios[signal])), float(np.median((value - reference)[signal]))


def check_seams(image: np.ndarray, edges: tuple[tuple[int, ...], tuple[int, ...]],
                lags: tuple[int, int], config: DefectConfig = DefectConfig()) -> SeamResult:
    """`edges`: inner window edges per axis (rows, columns); `lags`: image px per grid px per axis."""
    x = percentile_normalise(image)
    found = []
    for axis, (positions, lag) in enumerate(zip(edges, lags)):
        lag = max(1, int(lag))
        if not positions or x.shape[axis] <= lag:
            continue
        profiles = segment_profiles(x, lag, axis, config.seam_segment_px)
        for position in positions:
            ratio, step = edge_step(profiles, position, lag, config)
            found.append(SeamEdge("row" if axis == 0 else "column", position, ratio, step,
                                  ratio > config.seam_ratio and step >= config.seam_min_step))
    return SeamResult(tuple(found))
