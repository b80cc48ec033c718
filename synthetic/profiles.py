"""The simulator's profiles beyond "v1": what an "lmc" or "new-site" study draws.

"v1" (synthetic/study.py: sample_study's own code) is the simulator every existing table was made
with and stays bit for bit. "lmc" is calibrated to the 30 real training studies: each simulated
study takes one real study as its template (modality, pixel size, objective NA and label set, from
synthetic/acquisitions.py and the organizers' file lists), so modality shares (10/8/12 of 30),
pixel sizes (60-162 nm, 9 values), NAs (0.6-1.43) and label sets follow the real marginals; fields
draw their z-slice count from the real fields' distribution (median 21, max 33); nuclei are
10-18 µm across, vary in DNA content from cell to cell, have fractal chromatin, dark nucleoli,
irregular or lobed outlines and a few mitotic figures. "new-site" keeps lmc's biology model but
draws acquisitions no real study has (20x/0.45-0.8 at 130-200 nm, 150x/1.45 at 43 nm), cell lines
with smaller or larger nuclei, and another camera, for a test of transfer to an unseen site.
"low-mag" keeps lmc's biology too but images it as a screening or culture microscope does: 10x-20x
dry objectives (NA 0.25-0.5) at 0.3-0.65 µm pixels, cell lines with 9-19 µm nuclei, cultures from
sparse to confluent with debris (dead cells, some with a bright pyknotic nucleus), and half its
studies saved as 8-bit, contrast-stretched TL (as a TL image exported for a figure or a web page
is). Users bring such images to the models; the real training set has none, so the default profile
never draws them.

The real marginals are constants here (the simulator never reads ../shared at run time);
test/test_synthetic_profiles.py checks them against the file lists when ../shared/real is present.
Each profile draws from its own random stream (PROFILE_STREAM), so lmc's Study_<n> is not v1's.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from preprocessing.ome_io import ORGANELLES

from .acquisitions import REAL_ACQUISITIONS, Acquisition
from .camera import Camera
from .config import SimulationConfig
from .optics import TLOptics
from .phantom import CellLine

# The third seed word of a study's generator: v1 draws from [seed, study] alone.
PROFILE_STREAM = {"lmc": 1, "new-site": 2, "low-mag": 3}
# The fourth seed word of a field's nucleus-biology generator [seed, study, fov, 1]: a stream of its
# own, so the calibrated biology never shifts the draws of the phantom's other parts.
BIOLOGY_STREAM = 1

# Organelles with ground truth in any field of each real study (file lists, Study<N>.tsv).
REAL_LABELS: dict[int, tuple[str, ...]] = {
    1: ("nucleus", "mitochondria"), 2: ("nucleus", "mitochondria"), 3: ("nucleus", "mitochondria", "actin"),
    4: ("nucleus", "mitochondria", "tubulin"), 5: ("nucleus", "actin"), 6: ("nucleus", "actin"),
    7: ("nucleus", "tubulin"), 8: ("nucleus", "mitochondria"), 9: ("nucleus", "mitochondria"),
    10: ("nucleus", "mitochondria"), 11: ("nucleus",), 12: ("nucleus", "mitochondria"),
    13: ("nucleus", "mitochondria"), 14: ("nucleus", "mitochondria"), 15: ("nucleus", "mitochondria"),
    16: ("mitochondria",), 17: ("nucleus", "tubulin"), 18: ("nucleus", "mitochondria"),
    19: ("nucleus", "mitochondria"), 20: ("nucleus", "mitochondria", "tubulin"), 21: ("nucleus", "tubulin"),
    22: ("nucleus", "mitochondria"), 23: ("nucleus", "mitochondria"), 24: ("nucleus", "mitochondria", "tubulin"),
    25: ("nucleus", "mitochondria"), 26: ("nucleus",), 27: ("nucleus", "mitochondria"),
    28: ("nucleus", "mitochondria"), 29: ("nucleus", "tubulin"), 30: ("nucleus", "tubulin"),
}
# z-slices per real field of view -> number of fields (2,574 fields; median 21, max 33).
REAL_SLICES_PER_FIELD: dict[int, int] = {
    1: 62, 3: 6, 5: 23, 8: 1, 9: 162, 10: 1, 11: 12, 12: 13, 13: 11, 14: 1, 15: 1, 17: 1, 18: 2, 19: 19,
    20: 141, 21: 1297, 22: 589, 24: 10, 26: 9, 27: 63, 28: 1, 29: 27, 30: 33, 31: 41, 32: 9, 33: 39,
}
_SLICE_VALUES = np.array(sorted(REAL_SLICES_PER_FIELD))
_SLICE_CDF = np.cumsum([REAL_SLICES_PER_FIELD[n] for n in _SLICE_VALUES]) / sum(REAL_SLICES_PER_FIELD.values())
MAX_REAL_SLICES = int(_SLICE_VALUES[-1])

# Acquisitions outside the real table: other magnifications, NAs and pixel sizes (any modality).
NEW_SITE_ACQUISITIONS: tuple[tuple[float, int, float], ...] = (   # (pixel nm, magnification, NA)
    (200, 20, 0.45), (172, 20, 0.8), (130, 20, 0.75), (160, 20, 0.5), (43, 150, 1.45),
)
# Low magnification: (pixel nm, magnification, NA) of common 10x and 20x dry objectives on 6.5 µm
# (sCMOS) or 4.54 µm (CCD) camera pixels, some binned 2x2.
LOW_MAG_ACQUISITIONS: tuple[tuple[float, int, float], ...] = (
    (325, 20, 0.45), (325, 20, 0.5), (454, 10, 0.3), (650, 10, 0.3), (650, 20, 0.4), (454, 20, 0.4),
    (650, 10, 0.25),
)
# The share of low-mag studies whose TL is 8-bit and contrast-stretched.
LOW_MAG_8BIT_SHARE = 0.5


def draw_real_slices(cap: int | None, rng: np.random.Generator) -> int:
    """A field's z-slice count from the real fields' distribution, at most `cap`."""
    n = int(_SLICE_VALUES[min(int(np.searchsorted(_SLICE_CDF, rng.random(), side="right")), _SLICE_VALUES.size - 1)])
    return n if cap is None else max(1, min(n, cap))


def draw_centred_focus(cap: int | None, z_step_um: float, rng: np.random.Generator) -> tuple[int, np.ndarray]:
    """(best_z, defocus per slice) with the real slice counts. Real stacks are taken around the
    focus, so the best slice lies near the middle (an assumption: the file lists do not say)."""
    n = draw_real_slices(cap, rng)
    best = int(np.clip(round((n - 1) / 2 + rng.normal(0, (n - 1) / 6 + 1e-9)), 0, n - 1))
    defocus = (np.arange(n) - best + rng.uniform(-0.3, 0.3)) * z_step_um
    return best, defocus.astype(np.float32)


def _cell_line(rng: np.random.Generator, nucleus_um: tuple[float, float]) -> CellLine:
    """A cell line whose nuclei are `nucleus_um` across (mean diameter of the line); the cell is
    sized from its nucleus, so the nucleus always fits inside its cell."""
    u = rng.uniform
    fraction = u(0.4, 0.55)
    return CellLine(
        cell_radius_um=u(*nucleus_um) / 2 / fraction, radius_spread=u(0.1, 0.25), elongation=u(1.0, 2.2),
        roughness=u(0.04, 0.2), confluence=u(0.3, 0.9), nucleus_fraction=fraction,
        nucleus_offset=u(0.0, 0.35), height_um=u(3.0, 7.0), lamella_um=u(0.3, 0.9),
        mito_density=u(0.08, 0.3), mito_length_um=u(1.0, 5.0), mito_persistence_um=u(1.0, 5.0),
        microtubules_per_cell=u(50, 150), microtubule_persistence_um=u(8, 30),
        stress_fibres_per_cell=u(3, 25), fibre_spread_rad=u(0.05, 0.35),
        vesicle_density=u(0.03, 0.25), droplets_per_cell=u(0, 5), nucleoli_max=int(rng.integers(1, 5)),
        nucleus_dn=u(-0.003, 0.004),
        # The calibrated nucleus (phantom.CellLine says what each does).
        # Flat-topped nuclei (spread cells flatten them) with a sharp rim, as widefield DAPI shows.
        nucleus_roughness=u(0.07, 0.13), lobed_fraction=u(0.1, 0.35), nucleolus_radius_um=(0.5, 1.3),
        nucleolus_dna=0.85, nucleolus_dark_um=1.0, dna_spread=u(0.22, 0.35), mitotic_fraction=u(0.01, 0.05),
        chromatin_slope=u(-3.6, -2.8), chromatin_contrast=u(0.2, 0.32), nucleus_flatness=4)


def _acquisition(config: SimulationConfig, rng: np.random.Generator) -> tuple[str, tuple[str, ...], float, float]:
    """(modality, labelled organelles, pixel µm, objective NA) of one study."""
    if config.profile == "lmc":
        templates: list[Acquisition] = [a for a in REAL_ACQUISITIONS if a.modality in config.modalities]
        real = templates[int(rng.integers(len(templates)))]
        labels = tuple(o for o in ORGANELLES if o in REAL_LABELS[real.study])
        return real.modality, labels, real.pixel_size_nm / 1000, real.na
    from .study import choose_organelles  # study.py imports this module lazily: no cycle
    modality = str(rng.choice(config.modalities))
    table = LOW_MAG_ACQUISITIONS if config.profile == "low-mag" else NEW_SITE_ACQUISITIONS
    pixel_nm, _, na = table[int(rng.integers(len(table)))]
    return modality, choose_organelles(modality, rng), pixel_nm / 1000, na


def sample_profiled_study(config: SimulationConfig, number: int):
    """Study_<number> of an "lmc", "new-site" or "low-mag" configuration, a pure function of
    (seed, number)."""
    from .study import StudyParams, fluorescence_channels, study_shape
    rng = np.random.default_rng([config.seed, number, PROFILE_STREAM[config.profile]])
    u = rng.uniform
    modality, organelles, pixel, na_obj = _acquisition(config, rng)
    na_cond = {"BF": u(0.1, 0.3), "PC": u(0.25, 0.45), "DIC": u(0.5, 0.9)}[modality]
    angle = np.deg2rad(rng.choice([45.0, 135.0, 225.0, 315.0]) + rng.normal(0, 8))
    optics = TLOptics(modality=modality, wavelength_um=u(0.5, 0.6), na_objective=na_obj,
                      na_condenser=min(na_cond, 0.95 * na_obj), pc_ring_cutoff=u(0.08, 0.2),
                      pc_ring_amplitude=u(0.35, 0.55), dic_shear_um=u(0.1, 0.25),
                      dic_shear_angle=float(angle), dic_bias=u(0.2, 0.5) * np.pi)
    if config.profile in ("lmc", "low-mag"):   # low-mag: lmc's cameras
        photons, offset, read_noise = u(800, 8000), u(50, 2000), u(1.5, 8)
        # lmc: measured (Otsu) diameters then fall at 10-17 µm, as the references; low-mag adds
        # culture and screening lines with smaller nuclei (neurons among them).
        nucleus_um = (12.0, 19.0) if config.profile == "lmc" else (9.0, 19.0)
    else:   # another camera (an EMCCD-like dim, noisy one) and nuclei outside lmc's range
        photons, offset, read_noise = u(200, 1200), u(100, 600), u(8, 20)
        nucleus_um = (7.0, 10.0) if rng.random() < 0.5 else (18.0, 23.0)
    gain = min(u(0.5, 4.0), (30000 - offset) / photons)  # keeps bright halos below saturation
    tl_camera = Camera(photons=photons, gain=gain, offset=offset, read_noise=read_noise)
    channels = fluorescence_channels(rng, na_obj)
    n_fovs = config.fovs_per_study or int(rng.integers(2, 7))
    # Real z-steps are not in the file lists: steps that make a 21-slice stack span 3-10 µm,
    # finer for DIC, which sections optically.
    z_step = u(0.15, 0.35) if modality == "DIC" else u(0.2, 0.5)
    shape = study_shape(config, rng)
    cell_line = _cell_line(rng, nucleus_um)
    tl_bits = 16
    if config.profile == "low-mag":   # drawn last, so lmc and new-site draw as they did before it
        z_step *= 2.5                 # a dry low-NA objective has a deep focus: coarser z-steps
        tl_bits = 8 if rng.random() < LOW_MAG_8BIT_SHARE else 16
        # Cultures from sparse to confluent, and debris: dead cells and clumps in the medium.
        cell_line = replace(cell_line, confluence=u(0.05, 0.9), debris_per_mm2=u(20, 400),
                            debris_dna_fraction=u(0.1, 0.6))
    return StudyParams(number=number, modality=modality, organelles=organelles, pixel_size_um=round(pixel, 4),
                       shape=shape, n_fovs=n_fovs, z_step_um=z_step,
                       cell_line=cell_line, optics=optics, tl_camera=tl_camera,
                       illumination=u(0.03, 0.25), channels=channels, profile=config.profile,
                       tl_bits=tl_bits)


__all__ = ["BIOLOGY_STREAM", "LOW_MAG_8BIT_SHARE", "LOW_MAG_ACQUISITIONS", "MAX_REAL_SLICES", "NEW_SITE_ACQUISITIONS", "PROFILE_STREAM",
           "REAL_LABELS", "REAL_SLICES_PER_FIELD", "draw_centred_focus", "draw_real_slices",
           "sample_profiled_study"]
