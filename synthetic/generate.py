"""Writing simulated studies to disk in the Light My Cells layout."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from preprocessing.layout import (
    BESTZ_CSV,
    FieldOfView,
    FocusRecord,
    gt_file_name,
    read_bestz_csv,
    tl_file_name,
    write_bestz_csv,
)
from preprocessing.ome_io import ORGANELLE_FILE_NAMES, write_ome_tiff

from .config import SimulationConfig
from .fov import SimulatedFOV, simulate_fov
from .study import StudyParams, sample_study


def image_id(study: int, fov: int) -> str:
    """Digits only and unique across studies: the FOV index always takes the last 4 digits."""
    if not 0 <= fov < 10000:
        raise ValueError(f"FOV index {fov} out of range 0..9999")
    return f"{study}{fov:04d}"


from .seeds import HELDOUT_SEED, refuse_reserved  # noqa: E402, F401  (HELDOUT_SEED: re-exported)

Writer = Callable[..., Path]  # write_ome_tiff's signature: (path, array, *, channel_name, pixel_size_um)


def write_fov(folder: Path, sim: SimulatedFOV, writer: Writer = write_ome_tiff
              ) -> tuple[FieldOfView, list[FocusRecord]]:
    study = sim.study
    pixel = (study.pixel_size_um, study.pixel_size_um)
    iid = image_id(study.number, sim.index)
    fov = FieldOfView(folder.name, iid, study.optics.modality)
    records = []
    for z, plane in zip(sim.z, sim.tl):
        name = tl_file_name(iid, study.optics.modality, z)
        fov.slices[z] = writer(folder / name, plane, channel_name=study.optics.modality, pixel_size_um=pixel)
        records.append(FocusRecord(name, study.optics.modality, z, sim.best_z))
    for organelle, image in sim.organelles.items():
        fov.ground_truth[organelle] = writer(folder / gt_file_name(iid, organelle), image,
                                             channel_name=ORGANELLE_FILE_NAMES[organelle], pixel_size_um=pixel)
    return fov, records


def generate_study(out: Path, study: StudyParams, config: SimulationConfig
                   ) -> tuple[list[FieldOfView], list[FocusRecord]]:
    folder = Path(out) / f"Study_{study.number}"
    fovs, records = [], []
    for index in range(study.n_fovs):
        sim = simulate_fov(study, index, config.seed, max_slices=config.max_slices)
        fov, recs = write_fov(folder, sim)
        fovs.append(fov)
        records += recs
    write_bestz_csv(folder / BESTZ_CSV, records)
    return fovs, records


def generate_studies(out: Path, config: SimulationConfig) -> list[FieldOfView]:
    """Simulate and write `config.studies` studies under `out`; returns their fields of view.

    OUT/bestz.csv lists every TL file under OUT: rows already there from other studies are kept.
    The evaluation sets' seeds (synthetic/seeds.py) are refused, so no training set can reproduce
    one by accident.
    """
    refuse_reserved(config.seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    numbers = range(config.first_study, config.first_study + config.studies)
    progress = None
    if not config.quiet:
        from tqdm import tqdm
        progress = tqdm(numbers, desc="studies", unit="study")
    fovs: list[FieldOfView] = []
    root_csv = out / BESTZ_CSV
    merged = read_bestz_csv(root_csv) if root_csv.exists() else {}
    for number in (progress if progress is not None else numbers):
        study = sample_study(config, number)
        study_fovs, records = generate_study(out, study, config)
        fovs += study_fovs
        merged.update({r.name: r for r in records})
    write_bestz_csv(root_csv, sorted(merged.values(), key=lambda r: r.name))
    return fovs
