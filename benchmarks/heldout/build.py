"""Writing a benchmark set to disk: the planned studies, simulated, in the Light My Cells layout.

WORK/<purpose>/studies/Study_<n>/ holds the TL slices the plan keeps and the field's ground truth;
bestz.csv (root and per study) gives each slice's deviation; EVALUATION_SET.json markers (root and
per study) make the trainers refuse the folder. `set.json` records the plan's fingerprint and the
simulator's: a folder made from another plan or another simulator is rebuilt, never mixed.
A study is written only when its files are all missing or stale, so an interrupted build resumes.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from preprocessing.evaluation_sets import write_marker
from preprocessing.layout import BESTZ_CSV, FocusRecord, read_bestz_csv, write_bestz_csv
from synthetic.config import SimulationConfig
from synthetic.fov import simulate_fov
from synthetic.generate import write_fov
from synthetic.study import StudyParams, sample_study

from .plan import SetPlan, StudyPlan

MADE_BY = "python -m benchmarks.heldout"
_SYNTHETIC = Path(__file__).resolve().parents[2] / "synthetic"


def simulator_fingerprint() -> str:
    """A hash of the simulator's source: a changed simulator means changed images."""
    digest = hashlib.sha256()
    for path in sorted(_SYNTHETIC.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def study_params(plan: SetPlan, study: StudyPlan) -> StudyParams:
    """The simulator's own draw for this study number, with the plan's modality, labels, size and
    the real acquisition's pixel size and NA (the condenser NA never exceeds the objective's)."""
    # Profile v1: the development and test sets' reported tables were measured on its images.
    drawn = sample_study(SimulationConfig(seed=plan.seed, modalities=(study.modality,),
                                          shapes=(study.shape,), profile="v1"), study.number)
    na = study.acquisition.na
    optics = dataclasses.replace(drawn.optics, na_objective=na,
                                 na_condenser=min(drawn.optics.na_condenser, 0.95 * na))
    channels = {o: dataclasses.replace(c, na=na) for o, c in drawn.channels.items()}
    return dataclasses.replace(drawn, organelles=study.organelles, pixel_size_um=study.pixel_size_um,
                               n_fovs=1, optics=optics, channels=channels)


def _write_study(folder: Path, plan: SetPlan, study: StudyPlan) -> list[FocusRecord]:
    params = study_params(plan, study)
    rng = np.random.default_rng([plan.seed, study.number, 999])
    offset = rng.uniform(-0.3, 0.3)   # the true focal plane lies within ±0.3 step of best_z
    keep = [s.z for s in study.slices]
    defocus = [(z - study.best_z + offset) * params.z_step_um for z in keep]
    sim = simulate_fov(params, 0, plan.seed, defocus_um=defocus, best_z=study.best_z, z_indices=keep)
    _, records = write_fov(folder, sim)
    write_bestz_csv(folder / BESTZ_CSV, records)
    write_marker(folder, plan.purpose, plan.seed, MADE_BY)
    return records


def _study_complete(folder: Path, study: StudyPlan) -> bool:
    csv = folder / BESTZ_CSV
    if not csv.is_file():
        return False
    records = read_bestz_csv(csv)
    return (len(records) == len(study.slices)
            and all((folder / name).is_file() for name in records)
            and len(list(folder.glob("image_*_*[a-z].ome.tiff"))) == len(study.organelles))


def build_set(plan: SetPlan, root: Path, numbers: tuple[int, ...] | None = None,
              progress: bool = True) -> Path:
    """Simulate the planned studies (all, or only `numbers`) under ROOT; returns ROOT."""
    root = Path(root)
    stamp = {"purpose": plan.purpose, "seed": plan.seed, "plan": plan.fingerprint,
             "simulator": simulator_fingerprint()}
    stamp_path = root / "set.json"
    if stamp_path.is_file() and json.loads(stamp_path.read_text()) != stamp:
        shutil.rmtree(root)   # another plan or simulator: every image would differ
    root.mkdir(parents=True, exist_ok=True)
    stamp_path.write_text(json.dumps(stamp, indent=2) + "\n")
    write_marker(root, plan.purpose, plan.seed, MADE_BY)
    todo = [s for s in plan.studies if numbers is None or s.number in numbers]
    from tqdm import tqdm
    for study in tqdm(todo, desc=f"simulating {plan.purpose}", unit="study", disable=not progress):
        folder = root / f"Study_{study.number}"
        if not _study_complete(folder, study):
            shutil.rmtree(folder, ignore_errors=True)
            _write_study(folder, plan, study)
    records = {}
    for folder in sorted(root.glob("Study_*")):
        if (folder / BESTZ_CSV).is_file():
            records.update(read_bestz_csv(folder / BESTZ_CSV))
    write_bestz_csv(root / BESTZ_CSV, sorted(records.values(), key=lambda r: r.name))
    return root
