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

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from .fourier import WORKERS, frequency_grid, gaussian_otf
from .parallel import for_each_band, thread_map


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
        cutoff = pupil_cutoff(optics)
        f = np.sqrt(f2)
        self.pupil = np.clip((cutoff - f) / (0.05 * cutoff) + 0.5, 0, 1).astype(np.float32)  # soft edge
        self.support = np.flatnonzero(self.pupil > 0)  # flat indices: much faster than a bool mask
        self.pupil_s = self.pupil.ravel()[self.support]
        self.phase_per_um = (2 * np.pi * (np.sqrt(np.clip(k * k - f2, 0, None)) - k)).astype(np.float32).ravel()[self.support]

    def __call__(self, z_um: float) -> np.ndarray:
        """The transfer function on the pupil's support only (flattened), complex64."""
        arg = np.float32(z_um) * self.phase_per_um
        return (self.pupil_s * (np.cos(arg) + 1j * np.sin(arg))).astype(np.complex64)


def pupil_cutoff(optics: TLOptics) -> float:
    """Highest spatial frequency (cycles/µm) the objective passes, before its soft edge."""
    # Oil objectives (NA > n) cannot collect more than the medium's propagating waves.
    return min(optics.na_objective, 0.98 * optics.n_medium) / optics.wavelength_um


def _coarse_shape(shape: tuple[int, int], pixel_size_um: float, optics: TLOptics) -> tuple[int, int]:
    """The smallest fast grid over the same field that holds the intensity without aliasing.

    The field is band-limited by the pupil (soft edge: 1.025 × cutoff), so its intensity by twice
    that: sampling the field on a grid whose Nyquist frequency exceeds 2.05 × cutoff gives the
    intensity exactly. With the NAs and 65-110 nm pixels simulated here that grid has 1.5-5x fewer
    pixels than the image (the least for high-NA objectives at large pixels).
    """
    need = 2.05 * pupil_cutoff(optics)
    out = []
    for n in shape:
        nyquist_n = 2 * int(np.ceil(need * n * pixel_size_um)) + 8   # samples for Nyquist > need, a margin
        out.append(n if nyquist_n >= n else sfft.next_fast_len(nyquist_n + nyquist_n % 2))
    return tuple(out)  # type: ignore[return-value]


def _centre_indices(n_coarse: int, n_full: int) -> np.ndarray:
    """Indices, in a length-n_full FFT axis, of the n_coarse frequencies a coarse grid holds."""
    k = sfft.fftfreq(n_coarse, 1.0 / n_coarse).astype(np.int64)   # -n/2 .. n/2-1 in FFT order
    return np.where(k < 0, k + n_full, k)


def _pc_ring(f2, optics: TLOptics) -> np.ndarray:
    ring = np.exp(-f2 / (2 * optics.pc_ring_cutoff ** 2))
    return (1 + (optics.pc_ring_amplitude * np.exp(1j * optics.pc_ring_phase) - 1) * ring).astype(np.complex64)


def tl_intensity(phase: np.ndarray, absorption: np.ndarray, defocus_um: Sequence[float],
                 optics: TLOptics, pixel_size_um: float) -> np.ndarray:
    """Intensity images (n_z, H, W) float32, relative to an empty field of 1 (before the camera).

    Per slice: the defocused field on the coarse band-limited grid (_coarse_shape), its intensity,
    the condenser blur, then Fourier interpolation back to H x W: exact, as every step stays inside
    the band the pupil lets through. Slices are independent and run on a thread per core (the FFTs
    and ufuncs release the GIL); the result does not depend on the thread count.
    """
    shape = phase.shape
    field = np.empty(shape, np.complex64)

    def transmittance(rows: slice) -> None:
        # The complex exponential runs one element at a time (~40 ns each): a band per core.
        field[rows] = np.exp((-absorption[rows] + 1j * phase[rows]).astype(np.complex64))

    for_each_band(transmittance, shape[0])
    spectrum = sfft.fft2(field, workers=WORKERS)
    coarse = _coarse_shape(shape, pixel_size_um, optics)
    rows, cols = (_centre_indices(c, n) for c, n in zip(coarse, shape))
    # The coarse grid covers the same field with fewer, larger pixels: same frequencies, fewer of them.
    spectrum = spectrum[np.ix_(rows, cols)] * np.float32(coarse[0] * coarse[1] / (shape[0] * shape[1]))
    coarse_px = (shape[0] * pixel_size_um / coarse[0], shape[1] * pixel_size_um / coarse[1])
    fy, fx = frequency_grid(coarse, coarse_px)
    f2 = fy * fy + fx * fx
    if optics.modality == "PC":
        spectrum *= _pc_ring(f2, optics)
    transfer = _Transfer(optics, f2)
    support = transfer.support
    # Only the pupil's support (a disc) carries light: multiply there only.
    spec_s = spectrum.ravel()[support]
    if optics.modality == "DIC":
        sy = np.sin(optics.dic_shear_angle) * optics.dic_shear_um / 2
        sx = np.cos(optics.dic_shear_angle) * optics.dic_shear_um / 2
        shift_s = np.exp(2j * np.pi * (fy * sy + fx * sx)).astype(np.complex64).ravel()[support]
        bias = np.complex64(np.exp(0.5j * optics.dic_bias))
    # Intensity spectra: the coarse grid's rfft layout, embedded in the full grid's for the way back.
    _, rfx = frequency_grid(coarse, coarse_px, real=True)
    f2_real = fy * fy + rfx * rfx
    scale = np.float32(shape[0] * shape[1] / (coarse[0] * coarse[1]))
    if optics.modality == "PC":
        scale /= np.float32(optics.pc_ring_amplitude ** 2)  # the dimmed background, brought back to ~1
    if optics.modality == "DIC":
        scale /= np.float32(4 * np.sin(optics.dic_bias / 2) ** 2)  # keeps the background at 1

    out = np.empty((len(defocus_um),) + shape, np.float32)
    # Each thread keeps its two zero-padded spectra from slice to slice: every slice writes the
    # same entries (the pupil's support, the coarse grid's rows and columns), so the rest stays
    # zero, and allocating and zeroing them anew cost a third of an FFT per slice.
    scratch = threading.local()

    def one_slice(i: int) -> None:
        z = float(defocus_um[i])
        h = transfer(z) * spec_s
        if not hasattr(scratch, "buf"):
            scratch.buf = np.zeros(coarse, np.complex64)
            scratch.full = np.zeros((shape[0], shape[1] // 2 + 1), np.complex64)
        buf, full = scratch.buf, scratch.full
        flat = buf.reshape(-1)  # a view: writing into it fills buf
        if optics.modality == "DIC":
            # Beams at r ± s/2 interfere with a bias.
            flat[support] = h * shift_s
            plus = sfft.ifft2(buf, workers=1)
            flat[support] = h * np.conj(shift_s)
            minus = sfft.ifft2(buf, workers=1)
            plus *= bias
            minus *= np.conj(bias)
            plus -= minus
            amplitude = plus
        else:
            flat[support] = h
            amplitude = sfft.ifft2(buf, workers=1)
        intensity = np.abs(amplitude)
        np.square(intensity, out=intensity)
        spec_i = sfft.rfft2(intensity, workers=1)
        # The condenser: each tilt of the illumination shifts a defocused image by z tan θ, so the
        # coherent intensity is blurred by the projected source, σ = |z| NA_c / (2n).
        sigma = abs(z) * optics.na_condenser / (2 * optics.n_medium)
        spec_i *= gaussian_otf(f2_real, sigma) * scale
        # Into the full grid's rfft layout (the same rows as the crop), back to H x W.
        full[rows, :spec_i.shape[1]] = spec_i
        out[i] = sfft.irfft2(full, s=shape, workers=1)

    thread_map(one_slice, range(len(defocus_um)))
    return out
