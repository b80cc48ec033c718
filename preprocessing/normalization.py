"""Intensity normalisation as a checkpoint declares it (`CheckpointSpec.input_norm`), and its inverse.

Specs:
  {"kind": "percentile", "low": 2.0, "high": 99.8}   p_low -> -1, p_high -> +1, no clipping
  {"kind": "range", "low": 0.0, "high": 65535.0}     fixed values low -> -1, high -> +1

A flat image (p_low == p_high) must not divide by zero: the span falls back to the full min..max
range, and a truly constant image maps to 0 everywhere. Output is always finite float32.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NORM_KINDS = ("percentile", "range")
# Spans below this (relative to the intensity level) count as flat: dividing by them would blow
# float noise up into the model's whole input range.
_FLAT_RELATIVE = 1e-6


@dataclass(frozen=True)
class Normalisation:
    """x -> (x - centre) / half_span, so `low` maps to -1 and `high` to +1."""

    low: float
    high: float

    @property
    def centre(self) -> float:
        return 0.5 * (self.low + self.high)

    @property
    def half_span(self) -> float:
        return 0.5 * (self.high - self.low)

    @property
    def _divisor(self) -> np.float32:
        # A constant image has half_span 0; x - centre is 0 there, so any divisor gives 0.
        return np.float32(self.half_span if self.half_span > 0 else 1.0)

    def apply(self, array: np.ndarray) -> np.ndarray:
        x = np.array(array, dtype=np.float32)   # one copy, then in place (images reach 4096²)
        x -= np.float32(self.centre)
        x /= self._divisor
        return x

    def invert(self, array: np.ndarray) -> np.ndarray:
        y = np.array(array, dtype=np.float32)
        y *= self._divisor
        y += np.float32(self.centre)
        return y


def _is_flat(low: float, high: float) -> bool:
    return not high - low > _FLAT_RELATIVE * max(1.0, abs(low), abs(high))


def fit_normalisation(array: np.ndarray, spec: dict) -> Normalisation:
    """The Normalisation a spec gives for this image. Raises ValueError for an unknown spec."""
    kind = spec.get("kind")
    try:
        low, high = float(spec["low"]), float(spec["high"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"input_norm {spec!r}: needs numeric 'low' and 'high'") from exc
    if kind == "range":
        if not high > low:
            raise ValueError(f"input_norm {spec!r}: 'high' must exceed 'low'")
        return Normalisation(low, high)
    if kind != "percentile":
        raise ValueError(f"input_norm {spec!r}: unknown kind; expected one of {NORM_KINDS}")
    if not 0.0 <= low < high <= 100.0:
        raise ValueError(f"input_norm {spec!r}: percentiles must satisfy 0 <= low < high <= 100")
    values = np.asarray(array, dtype=np.float32).ravel()
    if values.size == 0:
        return Normalisation(0.0, 0.0)
    p_low, p_high = (float(v) for v in np.percentile(values, [low, high]))
    if _is_flat(p_low, p_high):
        # Mostly flat with a few outliers (e.g. a blank frame with hot pixels): use the full range
        # so the outliers stay within a few units instead of being divided by ~0.
        p_low, p_high = float(values.min()), float(values.max())
        if _is_flat(p_low, p_high):
            return Normalisation(p_low, p_low)
    return Normalisation(p_low, p_high)


def normalise(array: np.ndarray, spec: dict) -> tuple[np.ndarray, Normalisation]:
    """(normalised float32 array, the fitted Normalisation for `invert`)."""
    fitted = fit_normalisation(array, spec)
    return fitted.apply(array), fitted
