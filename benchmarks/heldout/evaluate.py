"""Per-image numbers of a benchmark set: the model (by the challenge's scorer), both baselines,
the ceilings and the defect findings, one record per TL image.

The ground truth is scanned for defects too, with the same detectors, periods and window geometry
as the predictions of its field: a finding there is a false alarm of the detectors, the control
that says whether the predictions' counts mean anything.

The model is scored by `metrics.score.score_folder` on the prediction files, in strict mode, exactly
as `python -m metrics score --strict` scores them (a missing output, a shape mismatch or a
non-finite value stops the benchmark, as it would stop the organizers' evaluation). The baselines are the scorer's own trivial predictions
(metrics/baselines.py) and the ceilings are perfect predictions after resampling
(metrics/ceiling.py), scored with the same `score_image`. Ceilings depend only on a field's ground
truth, so they are computed once per field and organelle and given to each of its slices.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from metrics.baselines import baseline_arrays
from metrics.ceiling import WINNER_SIDE, through_grid, through_resize
from metrics.challenge import score_image
from metrics.defects.grid import WindowGeometry
from metrics.defects.report import find_defects
from metrics.defects.scan import scan_predictions
from metrics.score import ScoreConfig, score_folder
from preprocessing.layout import FieldOfView, index_studies
from preprocessing.ome_io import ORGANELLES, read_ome_tiff

REFERENCE_GRID_UM = 0.1   # a finer grid than the shipped models', for comparison


@dataclass
class ImageRecord:
    name: str
    study: str
    modality: str
    deviation: int
    shape: tuple[int, int]
    pixel_size_um: float | None
    routes: dict[str, str]                        # organelle -> checkpoint names joined by "+" (all four)
    model: dict[str, dict] = field(default_factory=dict)      # organelle -> metric -> value
    baselines: dict[str, dict] = field(default_factory=dict)  # baseline -> organelle -> metrics
    ceilings: dict[str, dict] = field(default_factory=dict)   # ceiling -> organelle -> metrics
    defects: dict[str, dict] = field(default_factory=dict)    # organelle -> DefectReport.to_json() (all four)
    gt_defects: dict[str, list] = field(default_factory=dict)  # organelle -> detectors that fired on the truth
    field_key: str | None = None                  # the field of view (its slices share the truth)
    seconds: float | None = None

    def to_json(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class _FieldJob:
    fov: FieldOfView
    names: tuple[str, ...]                     # the TL slices of this field to evaluate
    route_geometries: dict[str, tuple[WindowGeometry, ...]]  # organelle -> its route's checkpoints' geometry

    def grids(self, organelle: str) -> tuple[float, ...]:
        """Pixel sizes of the route's checkpoints; one on the image's own grid (None) resamples
        nothing and has no ceiling."""
        return tuple(float(g.pixel_size_um) for g in self.route_geometries[organelle] if g.pixel_size_um is not None)


def ceiling_names(grids: set[float]) -> list[str]:
    return [f"grid {g:g} um" for g in sorted(grids)] + [f"resize {WINNER_SIDE}"]


def _one_thread() -> None:
    import torch
    torch.set_num_threads(1)   # the pool's processes already fill the cores


def _field_numbers(job: _FieldJob) -> dict[str, tuple[dict, dict, dict]]:
    """TL name -> (baselines, ceilings, ground-truth defect findings) for one field of view."""
    ceilings: dict[str, dict] = {}
    gts, gt_defects = {}, {}
    for organelle, path in job.fov.ground_truth.items():
        gt_image = read_ome_tiff(path)
        gts[organelle] = gt_image.array
        gt_defects[organelle] = list(find_defects(gt_image.array, pixel_size_um=gt_image.pixel_size_um,
                                                  geometry=job.route_geometries[organelle],
                                                  organelle=organelle).flagged)
        grids = sorted({*job.grids(organelle), REFERENCE_GRID_UM})
        for grid in grids:
            perfect = through_grid(gt_image.array, gt_image.pixel_size_um, grid)
            ceilings.setdefault(f"grid {grid:g} um", {})[organelle] = score_image(perfect, gt_image.array, organelle)
        perfect = through_resize(gt_image.array)
        ceilings.setdefault(f"resize {WINNER_SIDE}", {})[organelle] = score_image(perfect, gt_image.array, organelle)
    out = {}
    for path in job.fov.slices.values():
        if path.name not in job.names:
            continue
        tl = read_ome_tiff(path)
        baselines = {name: {o: score_image(array, gt, o) for o, gt in gts.items()}
                     for name, array in baseline_arrays(tl).items()}
        out[path.name] = (baselines, ceilings, gt_defects)
    return out


def evaluate_set(studies: Path, inputs: Path, predictions: Path, weights: Path, seconds: dict,
                 workers: int = 2, progress: bool = True) -> list[ImageRecord]:
    """One record per TL image under `inputs`, with everything the report needs."""
    from inference.settings import InferenceSettings
    from models.registry import Manifest

    manifest = Manifest.load(Path(weights) / "manifest.json")
    overlap = InferenceSettings().overlap   # what the predictions were made with (process.py's default)
    run = score_folder(predictions, studies, csv=Path(studies) / "bestz.csv", inputs=inputs,
                       config=ScoreConfig(workers=workers, progress=progress, strict=True))
    if run.problems:
        raise ValueError("the scorer could not score every prediction:\n  " + "\n  ".join(run.problems))
    by_name = {r.name: r for r in run.pairing.images}
    scores = {entry["image_name"]: entry for entry in run.metrics["results"]}
    fov_of = {p.name: fov for fov in index_studies(studies) for p in fov.slices.values()}
    records, jobs = {}, {}
    for name, pair_record in by_name.items():
        fov = fov_of[name]
        image = read_ome_tiff(pair_record.input_path)
        modality, _ = manifest.effective_modality(image.modality)
        routes = {o: manifest.resolve(modality, o) for o in ORGANELLES}
        records[name] = ImageRecord(
            name=name, study=fov.study, modality=pair_record.modality, deviation=pair_record.deviation,
            shape=image.shape, pixel_size_um=image.pixel_size_um[0] if image.pixel_size_um else None,
            routes={o: "+".join(names) for o, names in routes.items()},
            model={o: scores[name][o] for o in fov.ground_truth}, seconds=seconds.get(name), field_key=fov.key)
        geometries = {o: tuple(WindowGeometry.from_spec(manifest.spec(n), overlap, n) for n in routes[o])
                      for o in fov.ground_truth}
        job = jobs.setdefault(fov.key, _FieldJob(fov, (), geometries))
        jobs[fov.key] = _FieldJob(fov, job.names + (name,), geometries)
    from tqdm import tqdm
    bar = tqdm(total=len(jobs), desc="baselines and ceilings", unit="field", disable=not progress)
    # spawn, not fork: a forked child of a process whose torch thread pool has run deadlocks in
    # its first torch call (the ceilings resample with torch).
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=multiprocessing.get_context("spawn"),
                             initializer=_one_thread) as pool:
        for numbers in pool.map(_field_numbers, jobs.values()):
            for name, (baselines, ceilings, gt_defects) in numbers.items():
                records[name].baselines, records[name].ceilings = baselines, ceilings
                records[name].gt_defects = gt_defects
            bar.update()
    bar.close()
    # Every prediction is scanned, with or without ground truth: a defect shows either way.
    for found in scan_predictions(predictions, studies, inputs, weights, progress=progress):
        records[found.name].defects[found.organelle] = (
            found.report.to_json() if found.report is not None else {"error": found.error, "flagged": ["error"]})
    return [records[n] for n in sorted(records)]
