"""Score a prediction folder against ground truth, in parallel over images.

Each worker holds one image pair at a time (ground truth + prediction of one organelle, float64 while
the metrics run) and sends back only a few floats, so memory does not grow with the number of images.
A bad file (unreadable, wrong shape) is reported with its name and leaves that organelle empty; it
never stops the other images.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from preprocessing.ome_io import ORGANELLES, OmeReadError, read_ome_tiff

from .aggregate import build_metrics
from .challenge import score_image
from .pairing import ImageRecord, Pairing, pair


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@dataclass
class ScoreConfig:
    workers: int = field(default_factory=default_workers)
    progress: bool = True


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


def score_record(record: ImageRecord) -> tuple[dict, list[str]]:
    """The challenge's results entry for one image, and the errors met on the way."""
    entry: dict = {"image_name": record.name}
    errors: list[str] = []
    for organelle in ORGANELLES:
        entry[organelle] = {}
        gt_path, pred_path = record.ground_truth.get(organelle), record.predictions.get(organelle)
        if gt_path is None or pred_path is None:
            continue  # no ground truth: skipped as the challenge does; no prediction: reported by pair()
        try:
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
    if config.workers <= 1 or len(records) <= 1:
        for record in records:
            outputs.append(score_record(record))
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=config.workers) as pool:
            # map keeps the input order; chunksize 1 so a slow 2048^2 image does not hold back others
            for output in pool.map(score_record, records, chunksize=1):
                outputs.append(output)
                bar.update()
    bar.close()
    results = [entry for entry, _ in outputs]
    errors = [e for _, errs in outputs for e in errs]
    return results, errors


def score_pairing(pairing: Pairing, config: ScoreConfig | None = None) -> ScoreRun:
    config = config or ScoreConfig()
    start = time.perf_counter()
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
