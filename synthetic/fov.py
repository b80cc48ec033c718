"""One field of view: its phantom, TL z-stack and best-focus fluorescence, in memory."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .camera import expose_stack, illumination_field
from .fluorescence import fluorescence_images
from .optics import tl_intensity
from .phantom import Phantom, make_phantom
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


def simulate_fov(study: StudyParams, index: int, seed: int, *, max_slices: int = 11,
                 organelles: Sequence[str] | None = None, defocus_um: Sequence[float] | None = None,
                 best_z: int | None = None, z_indices: Sequence[int] | None = None,
                 keep_phantom: bool = False) -> SimulatedFOV:
    """Simulate FOV `index` of `study`; a pure function of (seed, study.number, index).

    `organelles` defaults to the study's labelled ones; `defocus_um`/`best_z` override the drawn
    z-stack (the montage, the held-out set and the tests use that to image chosen focus planes);
    `z_indices` then names the slice index of each defocus value (default 0, 1, 2, ...).
    """
    rng = np.random.default_rng([seed, study.number, index])
    phantom = make_phantom(study.shape, study.pixel_size_um, study.cell_line, rng)
    best, defocus = draw_focus(max_slices, study.z_step_um, rng)
    if defocus_um is not None:
        defocus = np.asarray(defocus_um, np.float32)
        best = int(np.argmin(np.abs(defocus))) if best_z is None else best_z
    if z_indices is not None and len(z_indices) != len(defocus):
        raise ValueError(f"{len(z_indices)} z indices for {len(defocus)} defocus values")
    optics = study.optics
    light = tl_intensity(phantom.phase(optics.wavelength_um), phantom.absorption, defocus, optics,
                         study.pixel_size_um)
    lamp = illumination_field(study.shape, study.illumination, rng)
    tl = expose_stack((phantom.fov(plane) * lamp for plane in light), study.tl_camera, rng)
    excitation = illumination_field(study.shape, 0.5 * study.illumination, rng)
    wanted = study.organelles if organelles is None else tuple(organelles)
    fluo = fluorescence_images({o: phantom.organelles[o] for o in wanted}, study.channels,
                               study.pixel_size_um, rng, excitation, crop=phantom.crop)
    return SimulatedFOV(study, index, tl, best, defocus, fluo, phantom if keep_phantom else None,
                        None if z_indices is None else tuple(int(z) for z in z_indices))
