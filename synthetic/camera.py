"""Illumination and the camera: photons, shot noise, read noise, gain and offset to uint16."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .parallel import thread_map


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
    electrons = np.maximum(intensity, 0, dtype=np.float32)
    electrons *= np.float32(camera.photons)
    noise = rng.standard_normal(electrons.shape, dtype=np.float32)
    # adu = gain * (e + sqrt(e + r²) * noise) + offset, in as few passes over the image as possible.
    adu = electrons + np.float32(camera.read_noise ** 2)
    np.sqrt(adu, out=adu)
    adu *= noise
    adu += electrons
    if exact_poisson:
        dim = electrons < 15
        adu[dim] = rng.poisson(electrons[dim]) + camera.read_noise * noise[dim]
    adu *= np.float32(camera.gain)
    adu += np.float32(camera.offset + 0.5)  # + 0.5 then truncation = rounding
    np.clip(adu, 0, 65535, out=adu)
    return adu.astype(np.uint16)


def stretch_to_8bit(stack: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.5) -> np.ndarray:
    """A TL stack as an 8-bit export writes it: each plane stretched from its `low_pct` to its
    `high_pct` percentile onto 0..255, clipped and rounded (kept in uint16 like every TL file)."""
    out = np.empty(stack.shape, np.uint16)
    for i, plane in enumerate(stack):
        lo, hi = np.percentile(plane, (low_pct, high_pct))
        scaled = (plane.astype(np.float32) - np.float32(lo)) * np.float32(255.0 / max(float(hi - lo), 1.0))
        out[i] = np.clip(np.rint(scaled), 0, 255)
    return out


def expose_stack(stack, camera: Camera, rng: np.random.Generator) -> np.ndarray:
    """Expose every plane of `stack` (a sequence of H x W intensities): (n, H, W) uint16.

    Each plane draws its noise from its own child of `rng` (Generator.spawn: independent
    streams fixed by the parent's seed), so the planes run on a thread per core, drawing included
    (a 1024² plane's Gaussian draws cost as much as the rest of its exposure), and the result does
    not depend on the number of threads."""
    stack = list(stack)
    if not stack:
        raise ValueError("expose_stack needs at least one plane")
    children = rng.spawn(len(stack))
    return np.stack(thread_map(lambda pair: expose(pair[0], camera, pair[1]), zip(stack, children)))
