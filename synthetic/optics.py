"""Transmitted-light image formation from a thin phase object, per modality.

The specimen is a complex transmittance t = exp(i·φ − μ) (φ: phase from the optical path
difference, μ: amplitude attenuation). Its spectrum passes the objective pupil (cut-off NA/λ) and
the defocus transfer function of angular-spectrum propagation. Partial coherence from the
condenser aperture is modelled as the incoherent sum of the images made by tilted plane waves:
at defocus z, each tilt shifts the image by z·tan θ, so the coherent intensity is blurred by the
projected source, a Gaussian of σ = |z| · NA_c / (2n). This conserves energy (light scattered by
a thick cell reappears nearby) and damps fine detail more the further from focus.
- BF: |field|². A pure phase object gives almost no contrast in focus; defocus converts phase
  to intensity (transport of intensity), with contrast growing with |z| and reversing with its sign.
- PC: the annular phase ring advances and dims the undiffracted light. The ring has a finite width
  in the back focal plane, so low object frequencies get the same treatment: that is the halo.
- DIC: two copies of the field sheared by `shear_um` along `shear_angle`, with a phase bias,
  interfere; the image is ≈ a directional derivative of the phase plus a grey bias: relief shading.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import scipy.fft as sfft

from .fourier import WORKERS, frequency_grid, gaussian_otf


@dataclass(frozen=True)
class TLOptics:
    modality: str                       # "BF" | "PC" | "DIC"
    wavelength_um: float = 0.55
    na_objective: float = 0.9
    na_condenser: float = 0.35          # BF: iris; PC: annulus; DIC: matched, large
    n_medium: float = 1.335
    pc_ring_cutoff: float = 0.12        # cycles/µm covered by the phase ring (sets the halo width)
    pc_ring_amplitude: float = 0.45     # amplitude transmission of the ring (≈ 20 % intensity)
    pc_ring_phase: float = -np.pi / 2   # -π/2: positive phase contrast, dense parts look dark
    dic_shear_um: float = 0.15
    dic_shear_angle: float = np.pi / 4  # rad, direction of the shear in the image (x right, y down)
    dic_bias: float = 0.35 * np.pi      # phase bias between the sheared beams

    def __post_init__(self):
        if self.modality not in ("BF", "PC", "DIC"):
            raise ValueError(f"unknown modality {self.modality!r}; expected BF, PC or DIC")


class _Transfer:
    """Pupil × defocus, on the pupil's support; the z-independent parts are computed once."""

    def __init__(self, optics: TLOptics, f2: np.ndarray):
        k = optics.n_medium / optics.wavelength_um
        # Oil objectives (NA > n) cannot collect more than the medium's propagating waves.
        cutoff = min(optics.na_objective, 0.98 * optics.n_medium) / optics.wavelength_um
        f = np.sqrt(f2)
        self.pupil = np.clip((cutoff - f) / (0.05 * cutoff) + 0.5, 0, 1).astype(np.float32)  # soft edge
        self.support = np.flatnonzero(self.pupil > 0)  # flat indices: much faster than a bool mask
        self.pupil_s = self.pupil.ravel()[self.support]
        self.phase_per_um = (2 * np.pi * (np.sqrt(np.clip(k * k - f2, 0, None)) - k)).astype(np.float32).ravel()[self.support]

    def __call__(self, z_um: float) -> np.ndarray:
        """The transfer function on the pupil's support only (flattened), complex64."""
        arg = np.float32(z_um) * self.phase_per_um
        return (self.pupil_s * (np.cos(arg) + 1j * np.sin(arg))).astype(np.complex64)


def _source_blur(images: np.ndarray, defocus_um, optics: TLOptics, pixel_size_um: float) -> None:
    """Blur each coherent intensity in place by the condenser source projected to its defocus."""
    fy, fx = frequency_grid(images.shape[1:], pixel_size_um, real=True)
    f2 = fy * fy + fx * fx
    for i, z in enumerate(defocus_um):
        sigma = abs(float(z)) * optics.na_condenser / (2 * optics.n_medium)
        if sigma * 4 < pixel_size_um:  # below a quarter pixel: nothing to blur
            continue
        spectrum = sfft.rfft2(images[i], workers=WORKERS) * gaussian_otf(f2, sigma)
        images[i] = sfft.irfft2(spectrum, s=images.shape[1:], workers=WORKERS)


def _pc_ring(f2, optics: TLOptics) -> np.ndarray:
    ring = np.exp(-f2 / (2 * optics.pc_ring_cutoff ** 2))
    return (1 + (optics.pc_ring_amplitude * np.exp(1j * optics.pc_ring_phase) - 1) * ring).astype(np.complex64)


def tl_intensity(phase: np.ndarray, absorption: np.ndarray, defocus_um: Sequence[float],
                 optics: TLOptics, pixel_size_um: float) -> np.ndarray:
    """Intensity images (n_z, H, W) float32, relative to an empty field of 1 (before the camera)."""
    shape = phase.shape
    field = np.exp((-absorption + 1j * phase).astype(np.complex64))
    spectrum = sfft.fft2(field, workers=WORKERS)
    fy, fx = frequency_grid(shape, pixel_size_um)
    f2 = fy * fy + fx * fx
    if optics.modality == "PC":
        spectrum *= _pc_ring(f2, optics)
    if optics.modality == "DIC":
        sy = np.sin(optics.dic_shear_angle) * optics.dic_shear_um / 2
        sx = np.cos(optics.dic_shear_angle) * optics.dic_shear_um / 2
        shift = np.exp(2j * np.pi * (fy * sy + fx * sx)).astype(np.complex64)
        bias = np.complex64(np.exp(0.5j * optics.dic_bias))
    transfer = _Transfer(optics, f2)
    support = transfer.support
    # Only the pupil's support (a disc, ~15-40 % of the plane) carries light: multiply there only.
    spec_s = spectrum.ravel()[support]
    if optics.modality == "DIC":
        shift_s = shift.ravel()[support]
    out = np.empty((len(defocus_um),) + shape, np.float32)
    buf = np.zeros(shape, np.complex64)
    flat = buf.reshape(-1)  # a view: writing into it fills buf
    for i, z in enumerate(defocus_um):
        h = transfer(float(z)) * spec_s
        if optics.modality == "DIC":
            # Beams at r ± s/2 interfere with a bias; the 1/sin² factor keeps the background at 1.
            flat[support] = h * shift_s
            plus = sfft.ifft2(buf, workers=WORKERS)
            flat[support] = h * np.conj(shift_s)
            minus = sfft.ifft2(buf, workers=WORKERS)
            plus *= bias
            minus *= np.conj(bias)
            plus -= minus
            np.abs(plus, out=out[i])
            out[i] *= out[i] / np.float32(4 * np.sin(optics.dic_bias / 2) ** 2)
        else:
            flat[support] = h
            np.abs(sfft.ifft2(buf, workers=WORKERS), out=out[i])
            np.square(out[i], out=out[i])
    _source_blur(out, defocus_um, optics, pixel_size_um)
    if optics.modality == "PC":
        out /= optics.pc_ring_amplitude ** 2  # the dimmed background, brought back to ~1
    return out
