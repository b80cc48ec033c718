"""How real do simulated images look? Statistics of nucleus ground truth and TL images, measured
the same way on simulated fields and on real references (synthetic/realism_report.py).

Nuclei are found the same way everywhere: Gaussian smoothing (sigma 1 px), Otsu's threshold,
holes filled, objects under MIN_NUCLEUS_PX pixels or touching the border dropped. Per image:
- diameter_um / diameter_px: median equivalent diameter of the nuclei (µm only with a pixel size);
- brightness_cv: coefficient of variation of the nuclei's mean intensities above the background
  (the image's median outside the nuclei): how much nuclei differ in brightness from cell to cell;
- solidity: median area / convex-hull area (1 for a convex blob, lower for lobed or irregular ones);
- slope_texture, slope_shape: log-log slopes of the radially averaged power spectrum of the
  percentile-normalised image over wavelengths 0.5-1.4 µm (chromatin texture) and 2-8 µm (nucleus
  shapes); steeper (more negative) means smoother. Only with a pixel size;
- background_fraction: the fraction of pixels under Otsu's threshold;
- q50, q90, q99: quantiles of the image after the challenge's p2/p99.8 normalisation;
for TL images:
- noise_fraction: the pixel noise (median absolute difference of horizontal neighbours, as sigma)
  over the p2-p99.8 range; how grainy the image is.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu
from skimage.measure import regionprops
from skimage.segmentation import clear_border

MIN_NUCLEUS_PX = 30
TEXTURE_BAND_UM = (0.5, 1.4)
SHAPE_BAND_UM = (2.0, 8.0)


def normalised(image: np.ndarray) -> np.ndarray:
    """The challenge's p2 -> 0, p99.8 -> 1, unclipped (a constant image stays at 0)."""
    x = np.asarray(image, dtype=np.float64)
    low, high = np.percentile(x, [2.0, 99.8])
    return (x - low) / (high - low) if high > low else np.zeros_like(x)


def nucleus_labels(image: np.ndarray) -> tuple[np.ndarray, float]:
    """(labelled nuclei, Otsu threshold of the smoothed image)."""
    smooth = ndimage.gaussian_filter(np.asarray(image, dtype=np.float64), 1.0)
    if np.ptp(smooth) == 0:
        return np.zeros(smooth.shape, np.int32), float(smooth.flat[0])
    threshold = float(threshold_otsu(smooth))
    mask = ndimage.binary_fill_holes(smooth > threshold)
    labels, _ = ndimage.label(mask)
    labels = clear_border(labels)
    sizes = np.bincount(labels.ravel())
    small = np.flatnonzero(sizes < MIN_NUCLEUS_PX)
    labels[np.isin(labels, small[small > 0])] = 0
    labels, _ = ndimage.label(labels > 0)
    return labels, threshold


def spectrum_slope(image: np.ndarray, pixel_size_um: float, band_um: tuple[float, float]) -> float:
    """Log-log slope of the radially averaged power spectrum between wavelengths band_um (µm);
    NaN when the band is not resolved (shorter than 2 pixels) or the image is too small for it."""
    x = normalised(image)
    x = x - x.mean()
    h, w = x.shape
    window = np.outer(np.hanning(h), np.hanning(w))      # no spectral leakage from the edges
    power = np.abs(np.fft.fftshift(np.fft.fft2(x * window))) ** 2
    fy = np.fft.fftshift(np.fft.fftfreq(h, d=pixel_size_um))
    fx = np.fft.fftshift(np.fft.fftfreq(w, d=pixel_size_um))
    radius = np.hypot(*np.meshgrid(fy, fx, indexing="ij"))
    low, high = 1.0 / band_um[1], 1.0 / band_um[0]       # cycles per µm
    nyquist = 0.5 / pixel_size_um
    lowest = 1.0 / (min(h, w) * pixel_size_um)
    if high > nyquist or low < 2 * lowest:
        return math.nan
    edges = np.geomspace(low, high, 9)
    centres, means = [], []
    for a, b in zip(edges[:-1], edges[1:]):
        ring = (radius >= a) & (radius < b)
        if ring.any():
            centres.append(math.sqrt(a * b))
            means.append(power[ring].mean())
    if len(centres) < 3 or min(means) <= 0:
        return math.nan
    return float(np.polyfit(np.log(centres), np.log(means), 1)[0])


def nucleus_statistics(image: np.ndarray, pixel_size_um: float | None) -> dict[str, float]:
    """The statistics above of one nucleus image; NaN where they are undefined (no nuclei, no
    pixel size)."""
    image = np.asarray(image, dtype=np.float64)
    labels, threshold = nucleus_labels(image)
    props = regionprops(labels, intensity_image=image)
    background = float(np.median(image[labels == 0])) if (labels == 0).any() else 0.0
    means = np.array([p.intensity_mean - background for p in props])
    diameters = np.array([p.equivalent_diameter_area for p in props])
    norm = normalised(image)
    stats = {
        "nuclei": float(len(props)),
        "diameter_px": float(np.median(diameters)) if len(props) else math.nan,
        "brightness_cv": float(means.std() / means.mean()) if len(props) >= 2 and means.mean() > 0 else math.nan,
        "solidity": float(np.median([p.solidity for p in props])) if len(props) else math.nan,
        "background_fraction": float(np.mean(ndimage.gaussian_filter(image, 1.0) <= threshold)),
        **{f"q{q}": float(np.percentile(norm, q)) for q in (50, 90, 99)},
    }
    stats["diameter_um"] = stats["diameter_px"] * pixel_size_um if pixel_size_um else math.nan
    for name, band in (("slope_texture", TEXTURE_BAND_UM), ("slope_shape", SHAPE_BAND_UM)):
        stats[name] = spectrum_slope(image, pixel_size_um, band) if pixel_size_um else math.nan
    return stats


def noise_fraction(image: np.ndarray) -> float:
    """Pixel noise as a fraction of the p2-p99.8 range: horizontal neighbour differences are
    2 sigma^2 in variance for white noise, and their median absolute value resists edges."""
    x = np.asarray(image, dtype=np.float64)
    sigma = np.median(np.abs(np.diff(x, axis=1))) / (0.6745 * math.sqrt(2.0))
    low, high = np.percentile(x, [2.0, 99.8])
    return float(sigma / (high - low)) if high > low else math.nan
