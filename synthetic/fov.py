"""One field of view: its phantom, TL z-stack and best-focus fluorescence, in memory."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .camera import expose_stack, illumination_field, stretch_to_8bit
from .fluorescence import fluorescence_images
from .optics import tl_intensity
from .phantom import CANVAS_MARGIN_PX, Phantom, make_phantom
from .study import StudyParams


@dataclass
class SimulatedFOV:
    study: StudyParams
    index: int
    tl: np.ndarray                       # (n_z, H, W) uint16
    best_z: int
    defocus_um: np.ndarray               # (n_z,) true defocus of each slice
    organelles: dict[str, np.ndarray]    # organelle → (H, W) uint16
    phantom: Phantom | None = None
    z_indices: tuple[int, ...] | None = None   # z index of each plane of `tl`; None: 0, 1, 2, ...

    @property
    def z(self) -> tuple[int, ...]:
        return self.z_indices if self.z_indices is not None else tuple(range(self.tl.shape[0]))

    @property
    def deviations(self) -> np.ndarray:
        return np.abs(np.asarray(self.z) - self.best_z)


def draw_focus(max_slices: int, z_step_um: float, rng: np.random.Generator) -> tuple[int, np.ndarray]:
    """(best_z, defocus per slice): 1..max_slices slices, best focus somewhere inside.

    The true focal plane lies within ±0.3 step of the best slice, as a focus score would pick it.
    """
    n = min(max_slices, 1 + int(rng.binomial(max_slices - 1, 0.7))) if max_slices > 1 else 1
    best = int(rng.integers(0, n))
    defocus = (np.arange(n) - best + rng.uniform(-0.3, 0.3)) * z_step_um
    return best, defocus.astype(np.float32)


V1_MAX_SLICES = 11


def draw_study_focus(study: StudyParams, max_slices: int | None, rng: np.random.Generator
                     ) -> tuple[int, np.ndarray]:
    """A field's drawn z-stack in its study's profile: v1's binomial count up to `max_slices`
    (None: 11), or the real fields' slice counts up to `max_slices` (None: the real maximum, 33)."""
    if study.profile == "v1":
        return draw_focus(V1_MAX_SLICES if max_slices is None else max_slices, study.z_step_um, rng)
    from .profiles import draw_centred_focus
    return draw_centred_focus(max_slices, study.z_step_um, rng)


def _margin_px(study: StudyParams, defocus: np.ndarray) -> int:
    """Canvas margin that holds the condenser blur (σ = |z|·NA_c/2n) of the deepest slice, so the
    periodic FFTs do not wrap one edge of the field into the other (at least v1's margin)."""
    sigma_um = float(np.max(np.abs(defocus), initial=0.0)) * study.optics.na_condenser / (2 * study.optics.n_medium)
    return int(min(max(CANVAS_MARGIN_PX, np.ceil(sigma_um / study.pixel_size_um)), 4 * CANVAS_MARGIN_PX))


def simulate_fov(study: StudyParams, index: int, seed: int, *, max_slices: int | None = None,
                 organelles: Sequence[str] | None = None, defocus_um: Sequence[float] | None = None,
                 best_z: int | None = None, z_indices: Sequence[int] | None = None,
                 keep_phantom: bool = False) -> SimulatedFOV:
    """Simulate FOV `index` of `study`; a pure function of (seed, study.number, index).

    `organelles` defaults to the study's labelled ones; `defocus_um`/`best_z` override the drawn
    z-stack (the montage, the held-out set and the tests use that to image chosen focus planes);
    `z_indices` then names the slice index of each defocus value (default 0, 1, 2, ...).
    `max_slices` caps the drawn stack (None: the profile's own cap, draw_study_focus).
    """
    rng = np.random.default_rng([seed, study.number, index])
    if study.profile == "v1":   # v1's order of draws, kept bit for bit
        phantom = make_phantom(study.shape, study.pixel_size_um, study.cell_line, rng)
        best, defocus = draw_study_focus(study, max_slices, rng)
    else:                       # the stack first: its depth sets the canvas margin
        best, defocus = draw_study_focus(study, max_slices, rng)
    if defocus_um is not None:
        defocus = np.asarray(defocus_um, np.float32)
        best = int(np.argmin(np.abs(defocus))) if best_z is None else best_z
    if study.profile != "v1":
        from .profiles import BIOLOGY_STREAM
        biology = np.random.default_rng([seed, study.number, index, BIOLOGY_STREAM])
        phantom = make_phantom(study.shape, study.pixel_size_um, study.cell_line, rng, biology_rng=biology,
                               margin_px=_margin_px(study, defocus))
    if z_indices is not None and len(z_indices) != len(defocus):
        raise ValueError(f"{len(z_indices)} z indices for {len(defocus)} defocus values")
    optics = study.optics
    light = tl_intensity(phantom.phase(optics.wavelength_um), phantom.absorption, defocus, optics,
                         study.pixel_size_um)
    lamp = illumination_field(study.shape, study.illumination, rng)
    tl = expose_stack((phantom.fov(plane) * lamp for plane in light), study.tl_camera, rng)
    if study.tl_bits == 8:
        tl = stretch_to_8bit(tl)
    excitation = illumination_field(study.shape, 0.5 * study.illumination, rng)
    wanted = study.organelles if organelles is None else tuple(organelles)
    fluo = fluorescence_images({o: phantom.organelles[o] for o in wanted}, study.channels,
                               study.pixel_size_um, rng, excitation, crop=phantom.crop)
    return SimulatedFOV(study, index, tl, best, defocus, fluo, phantom if keep_phantom else None,
                        None if z_indices is None else tuple(int(z) for z in z_indices))
