"""metrics.json in the challenge's layout: results, agregate (sic), transmitted_light, z_deviation.

    {"results": [{"job_name": JOB, "image_name": NAME, "nucleus": {"PCC": .., "SSIM": .., "MAE": .., ...},
                  "mitochondria": {...}, "tubulin": {}, "actin": {...}}, ...],   # {} = no ground truth
     "agregate": {organelle: {metric: mean}},                  # organelles with at least one score
     "transmitted_light": {"BF"|"DIC"|"PC": {organelle: {metric: mean or NaN}}},   # all 3 x 4 x metrics
     "z_deviation": {organelle: {deviation: {metric: mean}}}}  # deviation = |image_z - best_z|

Means are plain means over images (np.mean), so one NaN score (two constant images give an SSIM of
NaN) makes its mean NaN, as in the challenge. NaN is written as the bare token `NaN`, which is what
Python's json module (and so the challenge) writes; json.load reads it back, strict JSON parsers do
not. z_deviation keys are ints in memory and strings in the file, as json.dump makes them, and in
first-seen order (the order of `results`), as the challenge writes them; the tables sort them.
Images whose modality or focus is unknown count in `agregate` but not in the other two tables.
Entries are matched to their modality and focus by `image_name`; `job_name` (see metrics/score.py)
is carried along, and files written before it existed read back the same.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from preprocessing.ome_io import MODALITIES

from .challenge import METRICS_BY_ORGANELLE

# The organelle order of the challenge's aggregate loops.
AGGREGATE_ORGANELLES = ("nucleus", "mitochondria", "actin", "tubulin")
TL_ORDER = ("BF", "DIC", "PC")
assert set(TL_ORDER) == set(MODALITIES)


def _scored(entry: Mapping, organelle: str) -> Mapping | None:
    scores = entry.get(organelle)
    return scores if scores else None


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def aggregate_organelles(results: list[dict]) -> dict[str, dict[str, float]]:
    collected: dict[str, dict[str, list[float]]] = {}
    for entry in results:
        for organelle in AGGREGATE_ORGANELLES:
            if (scores := _scored(entry, organelle)) is not None:
                per_metric = collected.setdefault(organelle, {m: [] for m in METRICS_BY_ORGANELLE[organelle]})
                for metric in per_metric:
                    per_metric[metric].append(scores[metric])
    return {o: {m: _mean(v) for m, v in per_metric.items()} for o, per_metric in collected.items()}


def aggregate_modalities(results: list[dict], modality_of: Mapping[str, str | None]) -> dict:
    """Every modality x organelle x metric, NaN where no image of that modality has that organelle."""
    table = {}
    for tl in TL_ORDER:
        table[tl] = {}
        for organelle in AGGREGATE_ORGANELLES:
            values = {m: [] for m in METRICS_BY_ORGANELLE[organelle]}
            for entry in results:
                scores = _scored(entry, organelle)
                if scores is not None and modality_of.get(entry["image_name"]) == tl:
                    for metric in values:
                        values[metric].append(scores[metric])
            table[tl][organelle] = {m: _mean(v) for m, v in values.items()}
    return table


def aggregate_deviations(results: list[dict], deviation_of: Mapping[str, int | None]) -> dict:
    collected: dict[str, dict[int, dict[str, list[float]]]] = {}
    for entry in results:
        deviation = deviation_of.get(entry["image_name"])
        if deviation is None:
            continue
        for organelle in AGGREGATE_ORGANELLES:
            if (scores := _scored(entry, organelle)) is not None:
                per_metric = collected.setdefault(organelle, {}).setdefault(
                    int(deviation), {m: [] for m in METRICS_BY_ORGANELLE[organelle]})
                for metric in per_metric:
                    per_metric[metric].append(scores[metric])
    return {o: {d: {m: _mean(v) for m, v in per_metric.items()} for d, per_metric in by_dev.items()}
            for o, by_dev in collected.items()}


def build_metrics(results: list[dict], modality_of: Mapping[str, str | None],
                  deviation_of: Mapping[str, int | None]) -> dict:
    return {"results": results,
            "agregate": aggregate_organelles(results),
            "transmitted_light": aggregate_modalities(results, modality_of),
            "z_deviation": aggregate_deviations(results, deviation_of)}


def write_metrics_json(path: str | os.PathLike, metrics: Mapping) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics, indent=4))  # allow_nan=True (the default): NaN as the challenge
    return path


def read_metrics_json(path: str | os.PathLike) -> dict:
    """Load a metrics.json (ours or the challenge's); z_deviation keys become ints again."""
    path = Path(path)
    try:
        metrics = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a readable metrics.json ({exc})") from exc
    missing = {"results", "agregate"} - set(metrics)
    if missing:
        raise ValueError(f"{path}: not a metrics.json, missing key(s) {sorted(missing)}")
    metrics["z_deviation"] = {o: {int(d): v for d, v in by_dev.items()}
                              for o, by_dev in metrics.get("z_deviation", {}).items()}
    return metrics
