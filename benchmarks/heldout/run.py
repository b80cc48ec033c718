"""One benchmark run: plan -> simulate -> stage -> process.py -> score -> summary.

Folders under WORK (default data/benchmark), each stage reused when it is still valid:
    WORK/development/studies/      the simulated set (benchmarks/heldout/build.py)
    WORK/<set>/input/images/organelles-transmitted-light-ome-tiff/   hard links to its TL slices
    WORK/<set>/predictions/<fingerprint>/    process.py's outputs and seconds.json
    WORK/<set>/summary.json        per-image records and the summary
`<set>` is development, test or quick, or one of them restricted to one modality's studies
(`development-BF`: for a decision about that modality's routes at a third of the cost); the quick
subset's and a restricted set's images are part of their full set, predicted in folders of their
own, and the folders of one set lend each other the predictions they share.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from inference.settings import InferenceSettings
from preprocessing.atomic_write import write_json
from preprocessing.layout import INPUT_SUBDIR, index_studies

from .build import build_set, simulator_fingerprint
from .evaluate import evaluate_set
from .plan import MODALITY_STUDIES, SetPlan, plan_set, quick_subset
from .predict import predict_set
from .summary import summarise

SETS = ("development", "test", "quick")


@dataclass(frozen=True)
class BenchmarkOptions:
    set_name: str = "quick"
    work: Path = Path("data/benchmark")
    weights: Path = Path("weights")
    tta: str = "rot4"
    workers: int = 2
    resamples: int = 2000
    progress: bool = True
    modality: str | None = None     # only this modality's studies of the set
    blend: str = InferenceSettings().blend   # process.py --blend


def folder_name(set_name: str, modality: str | None = None) -> str:
    """WORK/<this>/ holds the run: the set's name, with the modality when restricted to one."""
    return set_name if modality is None else f"{set_name}-{modality}"


def _purpose(set_name: str) -> str:
    """The plan a set draws from: the quick subset is part of the development set."""
    if set_name not in SETS:
        raise ValueError(f"unknown benchmark set {set_name!r}; expected one of {SETS}")
    return "development" if set_name == "quick" else set_name


def resolve(set_name: str, modality: str | None = None) -> tuple[SetPlan, tuple[int, ...] | None]:
    """The plan a set draws from and the numbers of the studies the run takes (None: all)."""
    plan = plan_set(_purpose(set_name))
    numbers = quick_subset(plan) if set_name == "quick" else None
    if modality is not None:
        if modality not in MODALITY_STUDIES:
            raise ValueError(f"unknown modality {modality!r}; expected one of {tuple(MODALITY_STUDIES)}")
        numbers = tuple(s.number for s in plan.studies
                        if s.modality == modality and (numbers is None or s.number in numbers))
    return plan, numbers


def sibling_predictions(work: Path, set_name: str, modality: str | None) -> list[Path]:
    """The prediction folders of the runs whose images are images of this one's plan."""
    family = [s for s in SETS if _purpose(s) == _purpose(set_name)]
    names = [folder_name(s, m) for s in family for m in (None, *MODALITY_STUDIES)]
    return [work / name / "predictions" for name in names if name != folder_name(set_name, modality)]


def stage(studies: Path, numbers: tuple[int, ...] | None, out: Path) -> list[Path]:
    """Hard links to the TL slices of the chosen studies in the container's input layout."""
    target = out / INPUT_SUBDIR
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    staged = []
    for fov in index_studies(studies):
        if numbers is not None and int(fov.study.split("_")[-1]) not in numbers:
            continue
        for path in fov.slices.values():
            os.link(path, target / path.name)
            staged.append(target / path.name)
    return sorted(staged)


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True, cwd=Path(__file__).parent).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def run_benchmark(options: BenchmarkOptions) -> dict:
    start = time.perf_counter()
    plan, numbers = resolve(options.set_name, options.modality)
    work = Path(options.work)
    name = folder_name(options.set_name, options.modality)
    studies = build_set(plan, work / plan.purpose / "studies", numbers, options.progress)
    inputs = stage(studies, numbers, work / name / "input")
    # The quick subset's and a one-modality run's images belong to their full set: whichever ran
    # first lends the others its predictions (same weights, settings and code).
    predictions = predict_set(inputs, work / name / "predictions", Path(options.weights),
                              options.tta, options.progress,
                              adopt_from=sibling_predictions(work, options.set_name, options.modality),
                              blend=options.blend)
    if predictions.failed:
        raise RuntimeError(f"process.py wrote no four outputs for {len(predictions.failed)} image(s): "
                           + ", ".join(predictions.failed))
    records = evaluate_set(studies, inputs[0].parent, predictions.root, Path(options.weights),
                           predictions.seconds, options.workers, options.progress)
    summary = summarise(records, n_resamples=options.resamples)
    result = {
        "set": name, "purpose": plan.purpose, "seed": plan.seed, "plan": plan.fingerprint,
        "simulator": simulator_fingerprint(), "predictions": predictions.fingerprint,
        "weights": str(options.weights), "tta": options.tta, "blend": options.blend, "commit": _commit(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores", "date": time.strftime("%Y-%m-%d"),
        "wall_seconds": round(time.perf_counter() - start, 1),
        "summary": summary, "images": [r.to_json() for r in records],
    }
    write_json(work / name / "summary.json", json.loads(json.dumps(result, default=str)))
    return result
