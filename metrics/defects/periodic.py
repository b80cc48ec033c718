"""Periodic energy: a checkerboard or block pattern at a period the models can create.

A stride-2 upsampling layer leaves energy at periods of 2 and 4 model-grid pixels, the VQGAN's
8-pixel blocks at 8, a window-border defect at the window step. On the image each period is
`period x image/grid pixels` long (see grid.py). Two spectra are measured, both Hann-windowed:
- the image's (p2/p99.8-normalised, mean-removed), at the frequency vectors (f, 0), (0, f), (f, f)
  and (f, -f): a checkerboard, or a shading that repeats in every block;
- its edges' (|dy| + |dx|, mean-removed), along the axes: blocks whose borders repeat every P
  pixels while their offsets are random have no peak in the image's spectrum, but their borders do.
At each vector: the largest power within `peak_radius_bins` (the Hann main lobe, plus the spread of
resampling) against the larger of two references, the median power of an annulus at the same
radius (natural spectra fall smoothly with the radius, alike in every direction) and the median
along the same direction at nearby radii (a straight line along an axis or a diagonal puts a
streak through the whole direction, a periodic pattern a point). A finding needs a high ratio
and a minimum share of the spectrum's AC power, so that the noise floor of a flat image cannot
trigger it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from metrics.challenge import percentile_normalise

from .config import DefectConfig


@dataclass(frozen=True)
class PeriodTarget:
    label: str                       # e.g. "2 grid px (p2p_bf_small)", "window step (...)"
    period_px: tuple[float, float]   # (y, x) image pixels


@dataclass(frozen=True)
class PeriodicPeak:
    label: str
    signal: str                # "image" or "edges"
    vector: str                # "(f,0)", "(0,f)", "(f,f)" or "(f,-f)"
    period_px: tuple[float, float]
    ratio: float               # peak power / the larger reference median
    share: float               # power in the peak's neighbourhood / all AC power of that spectrum
    finding: bool

    def describe(self) -> str:
        py, px = self.period_px
        return (f"periodic: {self.label} ({py:.2f} x {px:.2f} image px) in the {self.signal} at "
                f"{self.vector}: {self.ratio:.0f}x its surroundings, {self.share:.1e} of the AC power")


@dataclass(frozen=True)
class PeriodicResult:
    peaks: tuple[PeriodicPeak, ...]

    @property
    def finding(self) -> bool:
        return any(p.finding for p in self.peaks)

    @property
    def worst_ratio(self) -> float:
        return max((p.ratio for p in self.peaks), default=0.0)

    def findings(self) -> list[str]:
        return [p.describe() for p in self.peaks if p.finding]


def _vectors(target: PeriodTarget, shape: tuple[int, int], config: DefectConfig) -> list[tuple[str, float, float]]:
    """(name, fy, fx) in cycles per pixel for the components of the period the image can show."""
    (py, px), (h, w) = target.period_px, shape
    ok_y = py >= config.min_period_px and h / py >= config.min_cycles
    ok_x = px >= config.min_period_px and w / px >= config.min_cycles
    vectors = []
    if ok_y:
        vectors.append(("(f,0)", 1.0 / py, 0.0))
    if ok_x:
        vectors.append(("(0,f)", 0.0, 1.0 / px))
    if ok_y and ok_x:
        vectors += [("(f,f)", 1.0 / py, 1.0 / px), ("(f,-f)", 1.0 / py, -1.0 / px)]
    return vectors


def _neighbourhood(fy: float, fx: float, shape: tuple[int, int], radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays of the bins within `radius` of the frequency (fy, fx)."""
    h, w = shape
    offsets = np.arange(-radius, radius + 1)
    rows = (round(fy * h) + offsets) % h
    cols = (round(fx * w) + offsets) % w
    return np.repeat(rows, offsets.size), np.tile(cols, offsets.size)


def _radial_floor(power: np.ndarray, fy: float, fx: float, config: DefectConfig) -> float:
    """Median power along the frequency's direction, `radial_gap_bins` beyond its neighbourhood and
    `radial_reach_bins` further, inwards and outwards (each sample the largest of its 3 x 3 bins).
    The gap leaves out the flanks of a peak that resampling and a small patterned area widen."""
    h, w = power.shape
    by, bx = fy * h, fx * w
    norm = np.hypot(by, bx)
    first = config.peak_radius_bins + config.radial_gap_bins
    steps = np.arange(first, first + config.radial_reach_bins + 1)
    offsets = np.concatenate([-steps, steps])
    offsets = offsets[norm + offsets >= 1.0]   # stay off the DC bin
    if offsets.size == 0:
        return 0.0
    ys = np.rint(by + offsets * by / norm).astype(int)
    xs = np.rint(bx + offsets * bx / norm).astype(int)
    around = np.arange(-1, 2)
    return float(np.median([power[np.ix_((y + around) % h, (x + around) % w)].max() for y, x in zip(ys, xs)]))


def _hann_power(x: np.ndarray) -> np.ndarray:
    h, w = x.shape
    x = (x - x.mean()) * (np.hanning(h)[:, None] * np.hanning(w)[None, :])
    return (np.abs(np.fft.fft2(x)) ** 2).astype(np.float32)


def spectra(image: np.ndarray) -> dict[str, np.ndarray]:
    """The two power spectra the detector reads (unshifted, float32)."""
    x = percentile_normalise(image)
    edges = np.zeros_like(x)
    edges[1:, :] += np.abs(np.diff(x, axis=0))
    edges[:, 1:] += np.abs(np.diff(x, axis=1))
    return {"image": _hann_power(x), "edges": _hann_power(edges)}


def _measure(power: np.ndarray, vectors: list[tuple[PeriodTarget, str, float, float]], signal: str,
             config: DefectConfig) -> list[PeriodicPeak]:
    shape = power.shape
    total = float(power.sum() - power[0, 0])
    radius = np.hypot(np.fft.fftfreq(shape[0])[:, None], np.fft.fftfreq(shape[1])[None, :]).astype(np.float32)
    # Every target's neighbourhood (and its conjugate) stays out of every annulus: they are tested.
    excluded = np.zeros(shape, dtype=bool)
    for _, _, fy, fx in vectors:
        for sign in (1, -1):
            excluded[_neighbourhood(sign * fy, sign * fx, shape, config.peak_radius_bins)] = True
    half_width = config.annulus_half_width_bins / min(shape)
    peaks = []
    for target, name, fy, fx in vectors:
        near = power[_neighbourhood(fy, fx, shape, config.peak_radius_bins)]
        ring = (np.abs(radius - np.hypot(fy, fx)) <= half_width) & ~excluded
        floor = max(float(np.median(power[ring])) if ring.any() else 0.0, _radial_floor(power, fy, fx, config))
        peak = float(near.max())
        ratio = peak / floor if floor > 0 else (float("inf") if peak > 0 else 0.0)
        share = float(near.sum()) / total if total > 0 else 0.0
        peaks.append(PeriodicPeak(target.label, signal, name, target.period_px, ratio, share,
                                  ratio > config.periodic_ratio and share >= config.periodic_min_share))
    return peaks


def check_periodic(image: np.ndarray, targets: list[PeriodTarget],
                   config: DefectConfig = DefectConfig()) -> PeriodicResult:
    shape = tuple(np.shape(image))
    vectors = [(t, *v) for t in targets for v in _vectors(t, shape, config)]
    if not vectors:
        return PeriodicResult(())
    power = spectra(image)
    axes = [v for v in vectors if v[1] in ("(f,0)", "(0,f)")]
    return PeriodicResult(tuple(_measure(power["image"], vectors, "image", config)
                                + _measure(power["edges"], axes, "edges", config)))
