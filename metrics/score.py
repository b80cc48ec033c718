"""Score a prediction folder against ground truth, in parallel over images.

Each worker holds one image pair at a time (ground truth + prediction of one organelle, float64 while
the metrics run) and sends back only a few floats, so memory does not grow with the number of images.
A bad file (unreadable, wrong shape) is reported with its name and leaves that organelle empty; it
never stops the other images. With `ScoreConfig(strict=True)` the run instead stops, as the
organizers' evaluation does, on the first file it would stop on (metrics/strict.py): missing
predictions and images absent from the focus CSV before any image is scored, the rest as met.

Each results entry carries `job_name` and `image_name`, as the organizers' entries do. On the
platform they are the algorithm job's id and the input image's id + ".tiff"; here one image is one
job, so job_name is the image's name without its extension (image_1_BF_z0.ome.tiff -> image_1_BF_z0).
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from tqdm import tqdm

from preprocessing.ome_io import ORGANELLES, OmeReadError, read_ome_tiff

from .aggregate import build_metrics
from .challenge import score_image
from .pairing import ImageRecord, Pairing, pair
from .strict import EvaluationStopped, check_pairing, read_pair


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@dataclass
class ScoreConfig:
    workers: int = field(default_factory=default_workers)
    progress: bool = True
    strict: bool = False    # stop (EvaluationStopped) where the organizers' evaluation stops


@dataclass
class ScoreRun:
    metrics: dict                 # the challenge's metrics.json content
    pairing: Pairing
    errors: list[str]             # files that could not be scored, with the reason
    seconds: float

    @property
    def problems(self) -> list[str]:
        return self.pairing.problems + self.errors

    @property
    def ok(self) -> bool:
        return not self.problems


def job_name(image_name: str) -> str:
    """The local job name of an image: its name without the .tif/.tiff (and .ome) extension."""
    stem = Path(image_name).name
    for suffix in (".tiff", ".tif", ".ome"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
    return stem


def score_record(record: ImageRecord, strict: bool = False) -> tuple[dict, list[str]]:
    """The challenge's results entry for one image, and the errors met on the way.

    strict: read both files as the organizers do (plain tifffile.imread) and raise EvaluationStopped
    where they would stop, instead of reporting the file and leaving the organelle empty."""
    entry: dict = {"job_name": job_name(record.name), "image_name": record.name}
    errors: list[str] = []
    for organelle in ORGANELLES:
        entry[organelle] = {}
        gt_path, pred_path = record.ground_truth.get(organelle), record.predictions.get(organelle)
        if gt_path is None or pred_path is None:
            continue  # no ground truth: skipped as the challenge does; no prediction: reported by pair()
        try:
            if strict:
                pred, gt = read_pair(pred_path, gt_path, organelle)
            else:
                gt = read_ome_tiff(gt_path).array
                pred = read_ome_tiff(pred_path).array
            entry[organelle] = score_image(pred, gt, organelle, source=f"{pred_path} (ground truth {gt_path})")
        except (OmeReadError, ValueError) as exc:
            errors.append(str(exc))
        finally:
            gt = pred = None  # drop the pair before the next organelle is read
    return entry, errors


def score_records(records: list[ImageRecord], config: ScoreConfig) -> tuple[list[dict], list[str]]:
    bar = tqdm(total=len(records), desc="scoring", unit="image", disable=not config.progress)
    outputs: list[tuple[dict, list[str]]] = []
    score_one = partial(score_record, strict=config.strict)
    try:
        if config.workers <= 1 or len(records) <= 1:
            for record in records:
                outputs.append(score_one(record))
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=config.workers) as pool:
                try:
                    # map keeps the input order; chunksize 1 so a slow 2048^2 image does not hold back others
                    for output in pool.map(score_one, records, chunksize=1):
                        outputs.append(output)
                        bar.update()
                except EvaluationStopped:
                    pool.shutdown(cancel_futures=True)  # stop at once: nothing after it is scored
                    raise
    finally:
        bar.close()
    results = [entry for entry, _ in outputs]
    errors = [e for _, errs in outputs for e in errs]
    return results, errors


def score_pairing(pairing: Pairing, config: ScoreConfig | None = None) -> ScoreRun:
    """Score every image of PAIRING; strict: raise EvaluationStopped where the organizers would stop."""
    config = config or ScoreConfig()
    start = time.perf_counter()
    if config.strict:
        check_pairing(pairing)  # missing files and CSV rows first: they stop it before any pixel is read
    results, errors = score_records(pairing.images, config)
    metrics = build_metrics(results,
                            {r.name: r.modality for r in pairing.images},
                            {r.name: r.deviation for r in pairing.images})
    return ScoreRun(metrics=metrics, pairing=pairing, errors=errors, seconds=time.perf_counter() - start)


def score_folder(pred: str | os.PathLike, gt: str | os.PathLike, *, csv: str | os.PathLike | None = None,
                 inputs: str | os.PathLike | None = None, names: list[str] | None = None,
                 config: ScoreConfig | None = None) -> ScoreRun:
    """Pair PRED with GT (see pairing.pair) and score every image the challenge's way."""
    return score_pairing(pair(Path(pred), Path(gt), csv=csv, inputs=inputs, names=names), config)
