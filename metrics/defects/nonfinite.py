"""Non-finite values: NaN and infinities, which the challenge's scorer refuses outright."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NonFiniteResult:
    nan: int
    posinf: int
    neginf: int

    @property
    def finding(self) -> bool:
        return bool(self.nan or self.posinf or self.neginf)

    def findings(self) -> list[str]:
        if not self.finding:
            return []
        return [f"non-finite: {self.nan} NaN, {self.posinf} +inf, {self.neginf} -inf pixel(s)"]


def count_nonfinite(image: np.ndarray) -> NonFiniteResult:
    x = np.asarray(image)
    if x.dtype.kind != "f":
        return NonFiniteResult(0, 0, 0)
    return NonFiniteResult(int(np.isnan(x).sum()), int(np.isposinf(x).sum()), int(np.isneginf(x).sum()))


def finite_copy(image: np.ndarray) -> np.ndarray:
    """float64 copy with every non-finite pixel set to the median of the finite ones (0 if none),
    so that the other detectors measure the rest of the image."""
    x = np.asarray(image, dtype=np.float64).copy()
    bad = ~np.isfinite(x)
    if bad.any():
        x[bad] = float(np.median(x[~bad])) if (~bad).any() else 0.0
    return x
