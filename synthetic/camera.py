"""Illumination and the camera: photons, shot noise, read noise, gain and offset to uint16."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np



@dataclass(frozen=True)
class Camera:
    photons: float = 3000.0             # expected photo-electrons per pixel for intensity 1
    gain: float = 2.0                   # ADU per electron
    offset: float = 100.0               # ADU of a dark pixel
    read_noise: float = 2.0             # electrons (rms)


def illumination_field(shape: tuple[int, int], strength: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth multiplicative field: off-centre vignetting plus a tilt, mean ≈ 1."""
    h, w = shape
    y = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    x = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    cy, cx = rng.uniform(-0.5, 0.5, 2)
    gy, gx = rng.normal(0, 0.5, 2)
    field = 1 - strength * (0.5 * ((y - cy) ** 2 + (x - cx) ** 2) - gy * y * 0.5 - gx * x * 0.5)
    return (field / field.mean()).astype(np.float32)


def expose(intensity: np.ndarray, camera: Camera, rng: np.random.Generator, *,
           exact_poisson: bool = False) -> np.ndarray:
    """Relative intensity → uint16 counts with shot and read noise.

    Shot and read noise are one Gaussian draw with variance = electrons + read_noise² where the
    mean is large (indistinguishable from Poisson there, and several times faster);
    `exact_poisson` draws true Poisson counts for dim pixels (< 15 e⁻), as fluorescence needs.
    """
    electrons = np.maximum(intensity, 0, dtype=np.float32) * np.float32(camera.photons)
    noise = rng.standard_normal(electrons.shape, dtype=np.float32)
    if exact_poisson:
        dim = electrons < 15
        counts = electrons + np.sqrt(electrons + np.float32(camera.read_noise ** 2)) * noise
        counts[dim] = rng.poisson(electrons[dim]) + camera.read_noise * noise[dim]
    else:
        counts = electrons + np.sqrt(electrons + np.float32(camera.read_noise ** 2)) * noise
    adu = counts
    adu *= np.float32(camera.gain)
    adu += np.float32(camera.offset + 0.5)  # + 0.5 then truncation = rounding
    np.clip(adu, 0, 65535, out=adu)
    return adu.astype(np.uint16)
