"""Zero-shot: the shipped weights on real images, nucleus scored against the real target.

Each TL slice goes through the container's inference for the nucleus route (predict_image with the
manifest's route for the slice's modality; the other organelles have no ground truth here and are
not run) and is rounded to uint16 as process.py writes it; it is then scored with the challenge's
metrics beside the two baselines made from the same slice.
"""
from __future__ import annotations

import time

import numpy as np

from inference.pipeline import InferenceSettings, predict_image
from metrics.baselines import baseline_arrays
from metrics.challenge import score_image
from preprocessing.ome_io import to_uint16

from .data import RealPair


def score_sources(predictions: dict[str, np.ndarray], tl, gt: np.ndarray) -> dict[str, dict]:
    """Source name -> nucleus metrics, for the given predictions and both baselines of `tl`."""
    scores = {name: score_image(pred, gt, "nucleus") for name, pred in predictions.items()}
    scores.update({name: score_image(array, gt, "nucleus") for name, array in baseline_arrays(tl).items()})
    return scores


def predict_nucleus(pair: RealPair, manifest, store, settings: InferenceSettings) -> tuple[list, list[str], float]:
    """The shipped nucleus prediction (uint16, as written) of every TL slice; route; seconds."""
    start = time.perf_counter()
    predictions, route = [], []
    for image in pair.tl:
        prediction = predict_image(image, manifest, store, settings, organelles=("nucleus",))
        predictions.append(to_uint16(prediction.organelles["nucleus"] * 65535.0))
        route = prediction.models_used
    return predictions, route, time.perf_counter() - start


def zero_shot_regions(result: dict, pair_for, regions: dict[str, slice]) -> list[dict]:
    """`result` (zero_shot's, predictions included) scored again on column ranges of its field:
    one result-like dict per region (no predictions), rows for zero_shot_table. `pair_for(columns)`
    gives the pair restricted to those columns (data.isl). The predictions are the whole field's,
    cropped, so a region sees the same context as in the whole-field row."""
    parts = []
    for name, columns in regions.items():
        pair = pair_for(columns)
        slices = [score_sources({"shipped": p[:, columns]}, tl, pair.nucleus)
                  for p, tl in zip(result["predictions"], pair.tl)]
        parts.append({"image": f"{pair.name}, {name}", "pixel_size_um": pair.pixel_size_um,
                      "route": result["route"], "slices": slices})
    return parts


def zero_shot(pair: RealPair, manifest, store, settings: InferenceSettings) -> dict:
    predictions, route, seconds = predict_nucleus(pair, manifest, store, settings)
    slices = [score_sources({"shipped": p}, tl, pair.nucleus) for p, tl in zip(predictions, pair.tl)]
    return {"image": pair.name, "pixel_size_um": pair.pixel_size_um, "route": "+".join(route),
            "slices": slices, "seconds": round(seconds, 1), "predictions": predictions}
