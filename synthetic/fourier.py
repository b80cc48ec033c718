"""Frequency grids and Fourier-domain filters shared by the phantom, the optics and the fluorescence.

Every blur in the simulator is a multiplication in Fourier space: one FFT pair per map, whatever the
kernel size, which keeps a 1024×1024 field of view with its z-stack well under a second.
"""
from __future__ import annotations

import numpy as np
import scipy.fft as sfft

WORKERS = -1  # scipy.fft threads: all cores; results do not depend on the count


def frequency_grid(shape: tuple[int, int], pixel_size_um: float | tuple[float, float], *,
                   real: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(fy, fx) in cycles/µm, broadcastable; `real=True` gives the half-plane of rfft2.
    `pixel_size_um` is one size or (y, x) sizes (a resampled grid can have non-square pixels)."""
    py, px = (pixel_size_um, pixel_size_um) if np.isscalar(pixel_size_um) else pixel_size_um
    fy = sfft.fftfreq(shape[0], d=py).astype(np.float32)[:, None]
    fx = (sfft.rfftfreq if real else sfft.fftfreq)(shape[1], d=px).astype(np.float32)[None, :]
    return fy, fx


def gaussian_otf(f2: np.ndarray, sigma_um: float) -> np.ndarray:
    """Fourier transform of a unit-sum Gaussian of std `sigma_um`, given |f|² in (cycles/µm)²."""
    return np.exp(np.float32(-2.0 * np.pi ** 2 * sigma_um ** 2) * f2)


def fast_shape(shape: tuple[int, int], margin: int) -> tuple[int, int]:
    """A canvas at least `shape + 2*margin` whose sides FFT quickly (products of small primes)."""
    return tuple(sfft.next_fast_len(int(n) + 2 * margin, real=True) for n in shape)  # type: ignore[return-value]
