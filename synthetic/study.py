"""Study-level variety: one draw of microscope, cell line, labels and camera per Study_<n>.

Everything a study shares (pixel size, image size, modality, labelled organelles, objective,
condenser, DIC shear angle, camera gain and offset, cell-line morphology) is drawn here from
`(seed, study number)`; each field of view then draws its own cells from `(seed, study, fov)`.
The label rules follow the real set: 1-3 organelles per study, never all four, nucleus nearly
always, mitochondria often, tubulin sometimes, actin rarely and never with DIC.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from preprocessing.ome_io import ORGANELLES

from .camera import Camera
from .config import SimulationConfig
from .fluorescence import FluorescenceChannel
from .optics import TLOptics
from .phantom import CellLine

# Probability that a study labels each organelle (before the 1..3 and no-DIC-actin rules).
LABEL_PROBABILITY = {"nucleus": 0.9, "mitochondria": 0.7, "tubulin": 0.2, "actin": 0.12}


@dataclass(frozen=True)
class StudyParams:
    number: int
    modality: str
    organelles: tuple[str, ...]          # the organelles with ground truth in this study
    pixel_size_um: float
    shape: tuple[int, int]               # (H, W) of every image of the study
    n_fovs: int
    z_step_um: float
    cell_line: CellLine
    optics: TLOptics
    tl_camera: Camera
    illumination: float                  # strength of uneven illumination
    channels: dict[str, FluorescenceChannel] = field(default_factory=dict)  # all four organelles
    profile: str = "v1"                  # config.PROFILES: how its fields draw focus and nuclei
    tl_bits: int = 16                    # 8: TL saved as 8-bit after a contrast stretch (camera.stretch_to_8bit)


def choose_organelles(modality: str, rng: np.random.Generator) -> tuple[str, ...]:
    """1 to 3 labelled organelles, never all four, no actin with DIC; in ORGANELLES order."""
    chosen = [o for o in ORGANELLES if rng.random() < LABEL_PROBABILITY[o]]
    if modality == "DIC" and "actin" in chosen:
        chosen.remove("actin")
    while len(chosen) > 3:
        chosen.remove(str(rng.choice([o for o in chosen if o != "nucleus"])))
    if not chosen:
        chosen = ["nucleus"]
    return tuple(chosen)


def _cell_line(rng: np.random.Generator) -> CellLine:
    u = rng.uniform
    return CellLine(
        cell_radius_um=u(7, 16), radius_spread=u(0.1, 0.3), elongation=u(1.0, 2.4),
        roughness=u(0.04, 0.2), confluence=u(0.25, 0.95), nucleus_fraction=u(0.32, 0.52),
        nucleus_offset=u(0.0, 0.4), height_um=u(2.5, 6.5), lamella_um=u(0.3, 0.9),
        mito_density=u(0.08, 0.3), mito_length_um=u(1.0, 5.0), mito_persistence_um=u(1.0, 5.0),
        microtubules_per_cell=u(50, 150), microtubule_persistence_um=u(8, 30), stress_fibres_per_cell=u(3, 25), fibre_spread_rad=u(0.05, 0.35),
        vesicle_density=u(0.03, 0.25), droplets_per_cell=u(0, 5), nucleoli_max=int(rng.integers(1, 6)),
        nucleus_dn=u(-0.003, 0.004))


def fluorescence_channels(rng: np.random.Generator, na_objective: float) -> dict[str, FluorescenceChannel]:
    """All four organelles' fluorescence (one camera for the study), drawn in this order from
    `rng`: every profile's sampler calls it at the same point of its stream."""
    u = rng.uniform
    camera = Camera(photons=1.0, gain=u(0.8, 3.0), offset=u(50, 500), read_noise=u(1, 3))
    return {o: FluorescenceChannel(o, na=na_objective, signal=u(300, 3000), background=u(10, 100),
                                   haze=u(0.3, 0.45) if o == "nucleus" else u(0.1, 0.3),
                                   haze_sigma_um=u(1.5, 3.0), camera=camera)
            for o in ORGANELLES}


def study_shape(config: SimulationConfig, rng: np.random.Generator) -> tuple[int, int]:
    h, w = config.shapes[int(rng.integers(len(config.shapes)))]
    if config.max_size is not None:  # crop, not resize: pixel size and cell size stay realistic
        h, w = min(h, config.max_size), min(w, config.max_size)
    return int(h), int(w)


def sample_study(config: SimulationConfig, number: int) -> StudyParams:
    """The parameters of Study_<number>, a pure function of (config.seed, config.profile, number).

    Profile "v1" is the code below, unchanged (its output is pinned by a digest in
    test/test_synthetic_profiles.py); the others are synthetic/profiles.py's."""
    if config.profile != "v1":
        from .profiles import sample_profiled_study
        return sample_profiled_study(config, number)
    rng = np.random.default_rng([config.seed, number])
    u = rng.uniform
    modality = str(rng.choice(config.modalities))
    organelles = choose_organelles(modality, rng)
    pixel = round(float(u(0.065, 0.110)), 4)
    # Smaller pixels come with higher-magnification, higher-NA objectives (100x/1.4 .. 40x/0.95).
    na_obj = float(np.clip(1.4 - (pixel - 0.065) / 0.045 * 0.45 + rng.normal(0, 0.04), 0.9, 1.45))
    na_cond = {"BF": u(0.1, 0.3), "PC": u(0.25, 0.45), "DIC": u(0.5, 0.9)}[modality]
    angle = np.deg2rad(rng.choice([45.0, 135.0, 225.0, 315.0]) + rng.normal(0, 8))
    optics = TLOptics(modality=modality, wavelength_um=u(0.5, 0.6), na_objective=na_obj,
                      na_condenser=min(na_cond, na_obj), pc_ring_cutoff=u(0.08, 0.2),
                      pc_ring_amplitude=u(0.35, 0.55), dic_shear_um=u(0.1, 0.25),
                      dic_shear_angle=float(angle), dic_bias=u(0.2, 0.5) * np.pi)
    photons = u(800, 8000)
    offset = u(50, 2000)
    gain = min(u(0.5, 4.0), (30000 - offset) / photons)  # keeps bright halos below saturation
    tl_camera = Camera(photons=photons, gain=gain, offset=offset, read_noise=u(1.5, 8))
    channels = fluorescence_channels(rng, na_obj)
    n_fovs = config.fovs_per_study or int(rng.integers(2, 7))
    # DIC sections optically (large condenser NA): its stacks are taken with finer steps.
    z_step = u(0.2, 0.6) if modality == "DIC" else u(0.3, 1.0)
    return StudyParams(number=number, modality=modality, organelles=organelles, pixel_size_um=pixel,
                       shape=study_shape(config, rng), n_fovs=n_fovs, z_step_um=z_step,
                       cell_line=_cell_line(rng), optics=optics, tl_camera=tl_camera,
                       illumination=u(0.03, 0.25), channels=channels)
