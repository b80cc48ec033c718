"""python -m synthetic.heldout --out test/studies

The small fixed held-out set committed under test/studies/: three studies (BF, PC, DIC) with two
fields of view each, numbered 901-903 and drawn with seed 900001 (HELDOUT_SEED), which the
training command refuses. Each FOV keeps two slices of its 6-slice z-stack: every modality has
deviation 0 and three others, and the set as a whole covers deviations 0 to 5. Files are
zlib-compressed (with a horizontal predictor) to keep the set near 7 MB. EVALUATION_SET.json
markers (purpose "smoke") make every trainer, and the output calibration, refuse the set.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from preprocessing.evaluation_sets import write_marker
from preprocessing.layout import BESTZ_CSV, FieldOfView, FocusRecord, write_bestz_csv
from preprocessing.ome_io import write_ome_tiff

from .camera import Camera
from .config import SimulationConfig
from .fov import simulate_fov
from .generate import write_fov
from .seeds import HELDOUT_SEED
from .study import sample_study


@dataclass(frozen=True)
class HeldOutStudy:
    number: int
    modality: str
    organelles: tuple[str, ...]
    shape: tuple[int, int]
    plans: tuple[tuple[int, tuple[int, ...]], ...]   # per FOV: (best slice, slices written) of 6


# Actin in a non-DIC study, tubulin and mitochondria somewhere, nucleus in most, one non-square size.
# Deviations: BF {0, 5, 2, 3}, PC {0, 4, 5, 1}, DIC {0, 3, 4, 1}.
STUDIES = (
    HeldOutStudy(901, "BF", ("nucleus", "mitochondria", "actin"), (512, 512), ((0, (0, 5)), (2, (0, 5)))),
    HeldOutStudy(902, "PC", ("nucleus", "tubulin"), (512, 640), ((1, (1, 5)), (5, (0, 4)))),
    HeldOutStudy(903, "DIC", ("nucleus", "mitochondria"), (512, 512), ((0, (0, 3)), (4, (0, 5)))),
)
STACK_SLICES = 6
MADE_BY = "scripts/make_test_studies.sh (python -m synthetic.heldout)"


def write_compressed(path, array, *, channel_name, pixel_size_um=None) -> Path:
    """write_ome_tiff with zlib + horizontal predictor, which keeps the committed set small."""
    return write_ome_tiff(path, array, channel_name=channel_name, pixel_size_um=pixel_size_um,
                          compression="zlib")


def heldout_study(spec: HeldOutStudy, seed: int = HELDOUT_SEED):
    # profile v1: the committed test/studies were made with it and must regenerate bit for bit.
    study = sample_study(SimulationConfig(seed=seed, modalities=(spec.modality,), shapes=(spec.shape,),
                                          profile="v1"),
                         spec.number)
    # Lower-gain cameras than average: fewer noise bits per pixel, so the files compress ~2x.
    tl_camera = dataclasses.replace(study.tl_camera, photons=1500.0, gain=0.5)
    fl_camera = Camera(photons=1.0, gain=0.7, offset=100.0, read_noise=1.0)
    channels = {o: dataclasses.replace(c, camera=fl_camera) for o, c in study.channels.items()}
    return dataclasses.replace(study, organelles=spec.organelles, n_fovs=len(spec.plans), tl_camera=tl_camera,
                               channels=channels)


def make_heldout(out: Path, seed: int = HELDOUT_SEED) -> list[FieldOfView]:
    out = Path(out)
    fovs, all_records = [], []
    for spec in STUDIES:
        study = heldout_study(spec, seed)
        folder = out / f"Study_{spec.number}"
        records: list[FocusRecord] = []
        rng = np.random.default_rng([seed, spec.number, 999])
        for index, (best, keep) in enumerate(spec.plans):
            if not (0 <= best < STACK_SLICES and all(0 <= z < STACK_SLICES for z in keep)):
                raise ValueError(f"study {spec.number}: focus plan {(best, keep)} outside {STACK_SLICES} slices")
            offset = rng.uniform(-0.3, 0.3)
            defocus = [(z - best + offset) * study.z_step_um for z in keep]
            sim = simulate_fov(study, index, seed, defocus_um=defocus, best_z=best, z_indices=keep)
            fov, recs = write_fov(folder, sim, writer=write_compressed)
            fovs.append(fov)
            records += recs
        write_bestz_csv(folder / BESTZ_CSV, records)
        write_marker(folder, "smoke", seed, MADE_BY)
        all_records += records
    write_bestz_csv(out / BESTZ_CSV, sorted(all_records, key=lambda r: r.name))
    write_marker(out, "smoke", seed, MADE_BY)
    return fovs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synthetic.heldout", description=__doc__.split("\n\n")[1])
    parser.add_argument("--out", type=Path, default=Path("test/studies"))
    args = parser.parse_args(argv)
    fovs = make_heldout(args.out)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"wrote {len(fovs)} fields of view to {args.out} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
