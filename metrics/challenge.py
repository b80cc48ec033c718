"""The Light My Cells per-image metrics, exactly as the challenge's evaluation container computes them.

For one organelle of one image (metrics/README.md gives the source, the organizers' published evaluation script):
1. ground truth and prediction are percentile-normalised SEPARATELY, (x - p2) / (p99.8 - p2) with
   numpy's default (linear) percentiles and no clipping; an image whose p2 equals its p99.8 is left
   as it is (raw values), which is what makes a constant prediction score without crashing;
2. PCC = scipy.stats.pearsonr of the flattened pair, NaN (a constant image) becomes 0;
3. SSIM = skimage.metrics.structural_similarity with its defaults (7x7 uniform window, sample
   covariance) and data_range = max(range(pred), range(gt)) after normalisation; two constant images
   give data_range 0 and an SSIM of NaN, as in the challenge;
4. nucleus and mitochondria also get MAE, E_dist (Euclidean norm of the difference) and C_dist
   (|1 - cosine similarity|, clipped to [0, 2] and with a zero vector's similarity taken as 0, which
   is what sklearn.metrics.pairwise.cosine_distances does).

Differences from the container, on purpose and within 1e-6 (absolute; relative for E_dist):
- everything is computed in float64. The container computes in the stored dtype: identical for
  uint16 files (numpy promotes them to float64); float32 files are normalised and scored in float32
  there (measured on a 2048^2 pair: |difference| <= 3e-7, E_dist 2e-7 relative);
- E_dist is the norm of the difference; sklearn's euclidean_distances expands
  |x|^2 - 2 x.y + |y|^2, which loses digits when x is close to y.
"""
from __future__ import annotations

import os
import warnings

import numpy as np
from scipy import stats
from skimage.metrics import structural_similarity

from preprocessing.ome_io import ORGANELLES

P_LOW, P_HIGH = 2.0, 99.8
# Metric names and order per organelle, as in the challenge's metrics_methods table.
METRICS_BY_ORGANELLE: dict[str, tuple[str, ...]] = {
    "nucleus": ("MAE", "PCC", "SSIM", "E_dist", "C_dist"),
    "mitochondria": ("MAE", "PCC", "SSIM", "E_dist", "C_dist"),
    "tubulin": ("PCC", "SSIM"),
    "actin": ("PCC", "SSIM"),
}
ALL_METRICS = ("MAE", "PCC", "SSIM", "E_dist", "C_dist")
LOWER_IS_BETTER = frozenset({"MAE", "E_dist", "C_dist"})
_DISTANCE_ORGANELLES = ("nucleus", "mitochondria")
# One line per metric for people reading a report (the formulas are the functions below). Every
# metric compares the two images after each is percentile-normalised on its own (p2 -> 0, p99.8 -> 1).
METRIC_DEFINITIONS: dict[str, str] = {
    "MAE": "mean absolute difference per pixel; 0 is a perfect match",
    "PCC": "Pearson correlation of the pixel values, -1 to 1 (a constant image counts as 0); 1 is a perfect match",
    "SSIM": "structural similarity (skimage defaults: 7x7 window, data range = the larger of the two ranges), "
            "up to 1; 1 is a perfect match",
    "E_dist": "Euclidean distance, the square root of the summed squared pixel differences (grows with the "
              "image size); 0 is a perfect match",
    "C_dist": "cosine distance |1 - cosine similarity| of the two images as vectors, 0 to 2; 0 is a perfect match",
}


def percentile_normalise(image: np.ndarray) -> np.ndarray:
    """(x - p2) / (p99.8 - p2) in float64, no clipping; unchanged (as float64) when p2 == p99.8."""
    x = np.asarray(image, dtype=np.float64)
    low, high = np.percentile(x, [P_LOW, P_HIGH])
    if low == high:
        return x
    return (x - low) / (high - low)


def pcc(gt: np.ndarray, pred: np.ndarray) -> float:
    """Pearson r of the flattened images; 0 where it is undefined (a constant image)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConstantInputWarning: exactly the NaN -> 0 case
        r = stats.pearsonr(gt.ravel(), pred.ravel()).statistic
    return 0.0 if np.isnan(r) else float(r)


def ssim(gt: np.ndarray, pred: np.ndarray) -> float:
    """skimage SSIM with defaults and the challenge's data_range (max of the two ranges)."""
    data_range = max(float(pred.max() - pred.min()), float(gt.max() - gt.min()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 0/0 for two constant images -> NaN, as in the challenge
        return float(structural_similarity(gt, pred, data_range=data_range))


def mae(gt: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.abs(gt - pred)))


def euclidean_distance(gt: np.ndarray, pred: np.ndarray) -> float:
    return float(np.linalg.norm((gt - pred).ravel()))


def cosine_distance(gt: np.ndarray, pred: np.ndarray) -> float:
    """|1 - cos(gt, pred)| on the flattened images, with sklearn's conventions (see module doc)."""
    a, b = gt.ravel(), pred.ravel()
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    # sklearn.preprocessing.normalize leaves a zero vector at zero: its similarity is 0.
    similarity = float(np.dot(a / (na if na else 1.0), b / (nb if nb else 1.0)))
    return abs(float(np.clip(1.0 - similarity, 0.0, 2.0)))


def score_image(pred: np.ndarray, gt: np.ndarray, organelle: str, *,
                source: str | os.PathLike | None = None) -> dict[str, float]:
    """The challenge's metrics for one organelle of one image, keys in the challenge's order.

    `source` (the prediction's file) only goes into error messages.
    """
    if organelle not in METRICS_BY_ORGANELLE:
        raise ValueError(f"unknown organelle {organelle!r}; expected one of {ORGANELLES}")
    pred, gt = np.asarray(pred), np.asarray(gt)
    if pred.shape != gt.shape:
        where = f"{source}: " if source is not None else ""
        raise ValueError(f"{where}{organelle} prediction shape {pred.shape} != ground-truth shape {gt.shape}")
    gt_n = percentile_normalise(gt)
    pred_n = percentile_normalise(pred)
    result = {"PCC": pcc(gt_n, pred_n), "SSIM": ssim(gt_n, pred_n)}
    if organelle in _DISTANCE_ORGANELLES:
        result["MAE"] = mae(gt_n, pred_n)
        result["E_dist"] = euclidean_distance(gt_n, pred_n)
        result["C_dist"] = cosine_distance(gt_n, pred_n)
    return result
