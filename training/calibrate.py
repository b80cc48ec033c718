"""Fit the per-organelle output calibration (models/calibration.py) of a run.

    python -m training.calibrate --run runs/p2p_bf_ft [--items 48]              # its validation split
    python -m training.calibrate --run runs/p2p_bf_ft --all --data data/calib   # a calibration set

Items are whole TL slices (within the run's max_defocus of best focus) of the run's own validation
FOVs (the same split_by_study as training, from run.json) or, with `--all --data DIR`, of every
FOV of a calibration set simulated apart from the training data (more studies, none trained on).
Never the held-out test/studies: they must not tune anything. Each slice is predicted exactly as
inference does (run_checkpoint: resampling, sliding window, TTA); each organelle with ground truth
is scored with the challenge's metrics at every point of the grid floor_quantile x floor_fraction
x gamma, with quantile matching to the median normalised ground truth of these items, and for the
two baselines of metrics/baselines (a zero image; the normalised TL input).

The choice, per organelle: the grid point with the best worst-case margin over the better baseline
(per metric, on the scores averaged over items: the fraction of that baseline's gap to a perfect
score the candidate closes) plus the mean margin, so no metric is sacrificed to another. The
identity is on the grid, so calibration never does worse on these items than none.
Writes RUN/calibration.json (chosen parameters and the table); training.export puts the
parameters in the exported checkpoint's spec.
"""
from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing as mp
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from inference.pipeline import run_checkpoint
from inference.settings import InferenceSettings
from metrics.challenge import LOWER_IS_BETTER, METRICS_BY_ORGANELLE, percentile_normalise, score_image
from models.calibration import (
    IDENTITY,
    QUANTILE_KEYS,
    QUANTILE_LEVELS,
    calibrate,
    is_quantile_match,
    reference_quantiles,
)
from models.registry import LoadedCheckpoint
from preprocessing.ome_io import read_ome_tiff

from . import runs
from .dataset import load_fovs, read_exclusion_list, split_by_study
from .export import CALIBRATION_FILE
from .validation import pick_slices

FLOOR_QUANTILES = (0.0, 0.5, 0.8)
FLOOR_FRACTIONS = (0.0, 0.1, 0.2, 0.3)
GAMMAS = (1.0, 1.5, 2.0, 3.0)


@dataclass
class Item:
    name: str
    tl: np.ndarray                       # the TL slice, raw
    predictions: dict[str, np.ndarray]   # organelle -> prediction in [0, 1] (uncalibrated)
    ground_truth: dict[str, np.ndarray]  # organelle -> raw ground truth


def predicted_items(checkpoint: LoadedCheckpoint, config: dict, data: str | None, max_items: int,
                     seed: int, settings: InferenceSettings, use_all: bool = False) -> list[Item]:
    """Whole slices of the run's validation FOVs (or of every FOV of `data` when `use_all`: a set
    made for calibration that the run never trained on), predicted as inference does."""
    exclude = read_exclusion_list(config["exclude"]) if config.get("exclude") else None
    fovs = load_fovs(data or config["data"], modalities=tuple(config["modalities"]) or None,
                     organelles=tuple(config["organelles"]), exclude=exclude,
                     max_defocus=config.get("max_defocus"), use="calibration")
    val = fovs if use_all else split_by_study(fovs, config["val_fraction"], config["seed"])[1]
    if not val:
        raise ValueError(f"{data or config['data']}: the run's split has no validation FOVs")
    items = []
    organelles = checkpoint.spec.organelles
    for fov, z in pick_slices(val, max_items, seed):
        image = read_ome_tiff(fov.slices[int(z)])
        channels = run_checkpoint(checkpoint, image, settings)
        wanted = [o for o in fov.ground_truth if o in organelles]
        items.append(Item(image.path.name, image.array,
                          {o: channels[organelles.index(o)] for o in wanted},
                          {o: read_ome_tiff(fov.ground_truth[o]).array for o in wanted}))
    return items


def baseline_scores(tls: list[np.ndarray], gts: list[np.ndarray], organelle: str) -> dict[str, dict]:
    """Mean challenge scores of the two baselines: a zero image and the normalised TL input."""
    return {
        "constant": mean_scores((np.zeros(g.shape, np.uint16), g, organelle) for g in gts),
        "tl_input": mean_scores((percentile_normalise(tl), g, organelle) for tl, g in zip(tls, gts)),
    }


def mean_scores(pairs) -> dict[str, float]:
    """Challenge scores of (prediction, ground truth, organelle) triples, averaged (NaN skipped)."""
    rows = [score_image(pred, gt, organelle) for pred, gt, organelle in pairs]
    return {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}


def margins(scores: dict[str, float], baselines: list[dict[str, float]]) -> dict[str, float]:
    """Per metric: the fraction of the better baseline's gap to a perfect score that `scores`
    closes (positive = better than both baselines, 1 = perfect). Distances and MAE are perfect at
    0, PCC and SSIM at 1. One scale for every metric, so the mean in `objective` weighs them alike
    (dividing PCC by its baseline, which is about 0, let PCC alone decide the mean)."""
    out = {}
    for metric, value in scores.items():
        if metric in LOWER_IS_BETTER:
            best = min(b[metric] for b in baselines)
            out[metric] = (best - value) / max(best, 1e-6)
        else:
            best = max(b[metric] for b in baselines)
            out[metric] = (value - best) / max(1.0 - best, 1e-6)
    return out


def objective(m: dict[str, float]) -> float:
    values = list(m.values())
    return min(values) + float(np.mean(values))


# The items being scored, for forked worker processes (set just before the pool starts).
_SHARED: dict = {}


def _score_candidate(params: dict) -> dict[str, float]:
    have, gts, organelle = _SHARED["have"], _SHARED["gts"], _SHARED["organelle"]
    return mean_scores((calibrate(it.predictions[organelle], params), g, organelle)
                        for it, g in zip(have, gts))


def quantile_match_params(gts: list[np.ndarray]) -> dict:
    """Quantile matching onto the median percentile-normalised ground truth of these items."""
    normalised = (percentile_normalise(g) for g in gts)
    return dict(zip(QUANTILE_KEYS, (list(QUANTILE_LEVELS), reference_quantiles(normalised))))


def fit_organelle(items: list[Item], organelle: str, workers: int = 1) -> dict:
    """The chosen parameters and the validation table for one organelle."""
    have = [it for it in items if organelle in it.ground_truth]
    gts = [it.ground_truth[organelle] for it in have]
    baselines = baseline_scores([it.tl for it in have], gts, organelle)
    grid = [{"floor_quantile": q, "floor_fraction": f, "gamma": gamma}
            for q, f, gamma in itertools.product(FLOOR_QUANTILES, FLOOR_FRACTIONS, GAMMAS)]
    grid.append(quantile_match_params(gts))
    _SHARED.update(have=have, gts=gts, organelle=organelle)
    try:
        if workers > 1 and "fork" in mp.get_all_start_methods():
            with mp.get_context("fork").Pool(workers) as pool:
                all_scores = pool.map(_score_candidate, grid)
        else:
            all_scores = [_score_candidate(params) for params in grid]
    finally:
        _SHARED.clear()
    candidates = []
    for params, scores in zip(grid, all_scores):
        m = margins(scores, list(baselines.values()))
        candidates.append({"params": params, "scores": scores, "margins": m, "objective": objective(m)})
    best = max(candidates, key=lambda c: c["objective"])
    identity = next(c for c in candidates if c["params"] == IDENTITY)
    matched = {k: v for k, v in candidates[-1].items() if k != "params"}   # its params: in "chosen" if kept
    return {"params": best["params"], "items": len(have), "chosen": best, "uncalibrated": identity,
            "quantile_match": matched, "baselines": baselines,
            "metrics": list(METRICS_BY_ORGANELLE[organelle])}


def fit(run: Path, data: str | None = None, max_items: int = 48, seed: int = 0,
        settings: InferenceSettings | None = None, workers: int = 1, use_all: bool = False) -> dict:
    settings = settings or InferenceSettings()
    loaded = runs.load_run(run)
    if not loaded.train_config:
        raise FileNotFoundError(f"{run}: no run.json; is this a training run folder?")
    checkpoint, config, step = loaded.as_checkpoint(), loaded.train_config, loaded.step
    checkpoint.model.to(settings.torch_device())   # run_checkpoint predicts on the model's device
    if use_all and (data is None or Path(data).resolve() == Path(config["data"]).resolve()):
        raise ValueError("--all needs --data: a calibration set the run did not train on")
    items = predicted_items(checkpoint, config, data, max_items, seed, settings, use_all)
    organelles = [o for o in checkpoint.spec.organelles if any(o in it.ground_truth for it in items)]
    grid = {"floor_quantile": FLOOR_QUANTILES, "floor_fraction": FLOOR_FRACTIONS, "gamma": GAMMAS,
            "quantile_match": True}
    result = {"run": str(run), "step": step, "items": len(items), "data": str(data or config["data"]),
              "split": "all" if use_all else "validation", "grid": grid,
              "organelles": {o: fit_organelle(items, o, workers) for o in organelles}}
    return result


def describe(params: dict) -> str:
    if is_quantile_match(params):
        return f"quantile matching ({len(params['quantile_levels'])} levels)"
    return ", ".join(f"{k} {v}" for k, v in params.items())


def summary(result: dict) -> str:
    lines = [f"calibration of {result['run']} on {result['items']} slices ({result['split']} of {result['data']})"]
    for organelle, r in result["organelles"].items():
        lines.append(f"{organelle} ({r['items']} items): " + describe(r["params"]))
        rows = [("uncalibrated", r["uncalibrated"]["scores"]), ("calibrated", r["chosen"]["scores"]),
                ("quantile match", r["quantile_match"]["scores"]), *r["baselines"].items()]
        for label, scores in rows:
            lines.append(f"  {label:14s}" + "".join(f" {m} {scores[m]:.4f}" for m in r["metrics"]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", required=True, type=Path, help="run folder with best.pt and run.json")
    p.add_argument("--data", default=None, help="the run's data folder, if it moved (default: run.json's)")
    p.add_argument("--all", action="store_true",
                   help="use every FOV of --data (a calibration set made apart from the training data)")
    p.add_argument("--items", type=int, default=48, help="validation slices to predict")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads for the predictions")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                   help="processes scoring the grid (default: one per core)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        result = fit(args.run, args.data, args.items, args.seed, workers=args.workers, use_all=args.all)
    except (OSError, ValueError) as exc:
        print(f"calibrate: {exc}", file=sys.stderr)
        return 1
    (args.run / CALIBRATION_FILE).write_text(json.dumps(result, indent=2))
    print(summary(result))
    print(f"wrote {args.run / CALIBRATION_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
