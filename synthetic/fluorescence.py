"""Best-focus widefield fluorescence of one organelle: density ⊛ PSF + haze + background, camera.

The in-focus PSF is the Gaussian approximation of the Airy disc, σ = 0.21 λ_em / NA, sampled at
the study's pixel size. Widefield images also carry out-of-focus light from the cell's thickness:
a fraction of the signal blurred by a few µm.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from .camera import Camera, expose
from .fourier import WORKERS, frequency_grid, gaussian_otf
from .parallel import thread_map
from .phantom import STRUCTURE_WIDTH_UM

# Emission wavelengths (µm) of typical dyes: Hoechst/DAPI, MitoTracker red, tubulin-GFP/Alexa 488,
# phalloidin-Alexa 568.
EMISSION_UM = {"nucleus": 0.46, "mitochondria": 0.60, "tubulin": 0.52, "actin": 0.60}


@dataclass(frozen=True)
class FluorescenceChannel:
    organelle: str
    na: float = 1.2
    signal: float = 800.0              # photo-electrons at density 1 (in focus)
    background: float = 30.0           # photo-electrons of the empty field
    haze: float = 0.25                 # fraction of the signal spread as out-of-focus light
    haze_sigma_um: float = 2.0
    camera: Camera = Camera(photons=1.0, gain=1.5, offset=100.0, read_noise=1.5)


def psf_sigma_um(organelle: str, na: float) -> float:
    return 0.21 * EMISSION_UM[organelle] / na


def blurred_density(density: np.ndarray, channel: FluorescenceChannel, pixel_size_um: float,
                    width_um: float = 0.0, workers: int = WORKERS) -> np.ndarray:
    """Noise-free image of a density map: in-focus PSF plus out-of-focus haze (float32).

    `width_um` is the Gaussian σ of the structure itself (a tube's cross-section); Gaussians
    compose by adding variances, so one blur applies both.
    """
    fy, fx = frequency_grid(density.shape, pixel_size_um, real=True)
    f2 = fy * fy + fx * fx
    width2 = width_um ** 2
    sharp = np.sqrt(psf_sigma_um(channel.organelle, channel.na) ** 2 + width2)
    otf = ((1 - channel.haze) * gaussian_otf(f2, sharp)
           + channel.haze * gaussian_otf(f2, np.sqrt(channel.haze_sigma_um ** 2 + width2)))
    spectrum = sfft.rfft2(density, workers=workers) * otf
    return sfft.irfft2(spectrum, s=density.shape, workers=workers).astype(np.float32)


def fluorescence_image(density: np.ndarray, channel: FluorescenceChannel, pixel_size_um: float,
                       rng: np.random.Generator, illumination: np.ndarray | float = 1.0,
                       crop: tuple[slice, slice] | None = None, width_um: float | None = None,
                       workers: int = WORKERS) -> np.ndarray:
    """uint16 image of one organelle from its sharp density map (canvas), cropped to the FOV.

    `width_um` defaults to the organelle's physical width (phantom.STRUCTURE_WIDTH_UM).
    """
    width = STRUCTURE_WIDTH_UM[channel.organelle] if width_um is None else width_um
    image = blurred_density(density, channel, pixel_size_um, width, workers=workers)
    if crop is not None:
        image = image[crop]
    electrons = channel.background + channel.signal * np.maximum(image, 0) * illumination
    return expose(electrons.astype(np.float32), channel.camera, rng, exact_poisson=True)


def fluorescence_images(densities: dict[str, np.ndarray], channels: dict[str, FluorescenceChannel],
                        pixel_size_um: float, rng: np.random.Generator,
                        illumination: np.ndarray | float = 1.0,
                        crop: tuple[slice, slice] | None = None) -> dict[str, np.ndarray]:
    """fluorescence_image for several organelles, on a thread per core: each draws its noise from
    its own child of `rng` (Generator.spawn), so the result does not depend on the thread count."""
    names = list(densities)

    def one(pair) -> np.ndarray:
        name, child = pair
        return fluorescence_image(densities[name], channels[name], pixel_size_um, child, illumination,
                                  crop, workers=1)

    return dict(zip(names, thread_map(one, zip(names, rng.spawn(len(names))))))
