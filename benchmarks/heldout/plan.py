"""What the benchmark's development and test sets hold: studies, fields, slices, sizes and labels.

Each set is a pure function of its reserved seed (synthetic/seeds.py): 64 studies of one field of
view each, 2 or 3 TL slices per field (160 TL images), drawn so that every question the report asks
has enough images to answer it:
- modalities: 26 BF, 20 PC, 18 DIC studies (the real set is 79 % BF; per-modality rows need more
  PC and DIC than that);
- acquisitions: each study copies the modality, pixel size and objective NA of one of the 30 real
  studies of its modality (synthetic/acquisitions.py): pixel sizes 60-162 nm, NA 0.6-1.43;
- sizes: the real set's shapes, 512x512 to 2048x2048 and non-square, weighted towards the
  smaller ones to bound the CPU time (`SHAPE_WEIGHTS`);
- focus: deviations 0-5 balanced within each modality (`TWO_SLICE_PATTERNS`, `THREE_SLICE_PATTERNS`)
  in an 11-slice stack, above or below the best slice;
- labels: 1-3 organelles per study, never all four, no actin with DIC (as in the real set), with
  actin and tubulin far more common than in the real set so that each has at least 30 images.
The cameras, cell lines and everything else come from the simulator's own per-study draws, so the
sets look like the simulator's training data apart from the settings above.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np

from preprocessing.ome_io import ORGANELLES
from synthetic.acquisitions import Acquisition, acquisitions_of
from synthetic.seeds import BENCHMARK_DEV_SEED, BENCHMARK_TEST_SEED

PURPOSES = ("development", "test")
SEEDS = {"development": BENCHMARK_DEV_SEED, "test": BENCHMARK_TEST_SEED}
FIRST_STUDY = {"development": 1001, "test": 2001}
MODALITY_STUDIES = {"BF": 26, "PC": 20, "DIC": 18}
STACK_SLICES = 11
# Relative frequency of each real shape (H, W); the total CPU time grows with the area.
SHAPE_WEIGHTS: dict[tuple[int, int], float] = {
    (512, 512): 5, (512, 640): 2, (980, 1016): 2, (966, 1296): 2, (1024, 1024): 3, (1200, 1200): 1,
    (1024, 1344): 1, (1300, 1624): 1, (2044, 2048): 1, (2048, 2048): 2,
}
# Every deviation 0-5 appears equally often in each list; study k of a modality takes pattern k.
TWO_SLICE_PATTERNS = ((0, 3), (1, 4), (2, 5), (0, 5), (1, 3), (2, 4), (0, 4), (1, 5), (2, 3))
THREE_SLICE_PATTERNS = ((0, 2, 4), (1, 3, 5), (0, 3, 5), (1, 2, 4), (0, 1, 5), (2, 3, 4))
LABEL_PROBABILITY = {"nucleus": 0.85, "mitochondria": 0.55, "tubulin": 0.35, "actin": 0.45}
# The quick subset: the cheapest fields that together cover every organelle, modality and
# deviation this many times, topped up with the next cheapest to about this many images.
QUICK_MIN_PER_GROUP = 4
QUICK_IMAGES = 30


@dataclass(frozen=True)
class SlicePlan:
    z: int
    deviation: int


@dataclass(frozen=True)
class StudyPlan:
    number: int
    modality: str
    organelles: tuple[str, ...]
    shape: tuple[int, int]
    acquisition: Acquisition       # the real study whose pixel size and NA this one copies
    best_z: int
    slices: tuple[SlicePlan, ...]

    @property
    def pixel_size_um(self) -> float:
        return self.acquisition.pixel_size_nm / 1000.0


@dataclass(frozen=True)
class SetPlan:
    purpose: str
    seed: int
    studies: tuple[StudyPlan, ...]

    @cached_property
    def fingerprint(self) -> str:
        """Changes whenever any planned study changes (used to refuse a stale folder)."""
        text = json.dumps([asdict(s) for s in self.studies], sort_keys=True)
        return hashlib.sha256(f"{self.purpose}:{self.seed}:{text}".encode()).hexdigest()[:16]

    @property
    def n_images(self) -> int:
        return sum(len(s.slices) for s in self.studies)


def _labels(modality: str, rng: np.random.Generator) -> tuple[str, ...]:
    chosen = [o for o in ORGANELLES if rng.random() < LABEL_PROBABILITY[o]]
    if modality == "DIC" and "actin" in chosen:
        chosen.remove("actin")
    while len(chosen) > 3:  # never all four, as in the real set; nucleus is kept
        chosen.remove(str(rng.choice([o for o in chosen if o != "nucleus"])))
    return tuple(chosen) or ("nucleus",)


def _slices(deviations: tuple[int, ...], rng: np.random.Generator) -> tuple[int, tuple[SlicePlan, ...]]:
    """A best slice in the stack and, per deviation, a slice above or below it that exists."""
    best = int(rng.integers(0, STACK_SLICES))
    planned = []
    for d in deviations:
        sides = [z for z in {best - d, best + d} if 0 <= z < STACK_SLICES]
        planned.append(SlicePlan(int(sides[int(rng.integers(len(sides)))]), d))
    return best, tuple(sorted(planned, key=lambda s: s.z))


def plan_set(purpose: str) -> SetPlan:
    """The development or test set's plan, a pure function of its seed."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown benchmark set {purpose!r}; expected one of {PURPOSES}")
    seed = SEEDS[purpose]
    rng = np.random.default_rng([seed, 0])
    modalities = [m for m, n in MODALITY_STUDIES.items() for _ in range(n)]
    rng.shuffle(modalities)
    shapes = list(SHAPE_WEIGHTS)
    weights = np.array([SHAPE_WEIGHTS[s] for s in shapes], dtype=float)
    seen = {m: 0 for m in MODALITY_STUDIES}
    studies = []
    for i, modality in enumerate(modalities):
        k = seen[modality]
        seen[modality] += 1
        # Alternate 3- and 2-slice fields within each modality: 160 images in all.
        patterns = THREE_SLICE_PATTERNS if k % 2 == 0 else TWO_SLICE_PATTERNS
        best, slices = _slices(patterns[(k // 2) % len(patterns)], rng)
        real = acquisitions_of(modality)
        studies.append(StudyPlan(
            number=FIRST_STUDY[purpose] + i, modality=modality, organelles=_labels(modality, rng),
            shape=shapes[int(rng.choice(len(shapes), p=weights / weights.sum()))],
            acquisition=real[int(rng.integers(len(real)))], best_z=best, slices=slices))
    return SetPlan(purpose, seed, tuple(studies))


def model_grid_pixels(study: StudyPlan, grid_um: float = 0.2) -> int:
    """Pixels of one slice on the shipped models' grid: what inference time follows."""
    h, w = study.shape
    return round(h * study.pixel_size_um / grid_um) * round(w * study.pixel_size_um / grid_um)


def quick_subset(plan: SetPlan) -> tuple[int, ...]:
    """Study numbers of the quick subset: the cheapest studies that cover every organelle,
    modality and deviation QUICK_MIN_PER_GROUP times, then the next cheapest up to QUICK_IMAGES."""
    order = sorted(plan.studies, key=lambda s: (model_grid_pixels(s) * len(s.slices), s.number))

    def groups(study: StudyPlan) -> list[str]:
        return ([f"organelle:{o}" for o in study.organelles for _ in study.slices]
                + [f"modality:{study.modality}"] * len(study.slices)
                + [f"deviation:{s.deviation}" for s in study.slices])

    wanted = ([f"organelle:{o}" for o in ORGANELLES] + [f"modality:{m}" for m in MODALITY_STUDIES]
              + [f"deviation:{d}" for d in range(6)])
    have = {g: 0 for g in wanted}
    chosen: list[StudyPlan] = []
    while any(n < QUICK_MIN_PER_GROUP for n in have.values()):
        short = {g for g, n in have.items() if n < QUICK_MIN_PER_GROUP}
        study = next(s for s in order if s not in chosen and short & set(groups(s)))
        chosen.append(study)
        for g in groups(study):
            have[g] = have.get(g, 0) + 1
    for study in order:
        if sum(len(s.slices) for s in chosen) >= QUICK_IMAGES:
            break
        if study not in chosen:
            chosen.append(study)
    return tuple(sorted(s.number for s in chosen))
