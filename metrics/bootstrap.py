"""Paired bootstrap intervals for "is the model better than a baseline on these images?".

Images of one study share cells, microscope and camera, so they are not independent: resampling
images would give intervals that are too narrow. The bootstrap here resamples whole clusters
(studies) with replacement and recomputes the mean over all images of the drawn clusters, the
paired difference model - baseline image by image (percentile interval; Efron & Tibshirani's
cluster bootstrap). With one cluster it degenerates to a zero-width interval, which says nothing;
the callers report the number of clusters beside it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_RESAMPLES = 2000
LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    mean: float       # mean of the paired differences over all images
    low: float
    high: float
    n_images: int
    n_clusters: int

    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def to_json(self) -> dict:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n_images": self.n_images,
                "n_clusters": self.n_clusters}


def cluster_bootstrap_mean(values, clusters, *, n_resamples: int = N_RESAMPLES, level: float = LEVEL,
                           seed: int = 0) -> Interval:
    """Interval of the mean of `values` (one per image) resampling the `clusters` labels."""
    values = np.asarray(values, dtype=np.float64)
    labels = np.asarray(clusters)
    if values.ndim != 1 or values.shape != labels.shape:
        raise ValueError(f"values {values.shape} and clusters {labels.shape} must be equal 1-D shapes")
    keep = np.isfinite(values)   # an undefined score (SSIM of two constants) cannot be averaged
    values, labels = values[keep], labels[keep]
    if values.size == 0:
        nan = float("nan")
        return Interval(nan, nan, nan, 0, 0)
    _, index = np.unique(labels, return_inverse=True)
    sums = np.bincount(index, weights=values)
    counts = np.bincount(index).astype(np.float64)
    k = sums.size
    rng = np.random.default_rng(seed)
    # Each resample draws k clusters with replacement: how often each is drawn is multinomial.
    draws = rng.multinomial(k, np.full(k, 1.0 / k), size=n_resamples)
    means = (draws @ sums) / (draws @ counts)
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return Interval(float(values.mean()), float(low), float(high), int(values.size), int(k))


def paired_difference(model, baseline, clusters, **kwargs) -> Interval:
    """Interval of mean(model - baseline), the pairs kept together and clusters resampled."""
    diff = np.asarray(model, dtype=np.float64) - np.asarray(baseline, dtype=np.float64)
    return cluster_bootstrap_mean(diff, clusters, **kwargs)
