"""Choose a route on calibration data: score candidate checkpoints, alone and averaged, for one
(modality, organelle) pair.

    python -m training.compare_routes --weights weights --data data/shipped_calibration \\
        --modality BF --organelle nucleus --candidate p2p_bf_small --candidate vq_nucleus_small \\
        --candidate p2p_bf_small+vq_nucleus_small

Each candidate is one checkpoint of the manifest in --weights, or several joined by '+', averaged
as inference averages a route that lists several (each checkpoint with its own output calibration).
Items are whole slices within --max-defocus of best focus, picked as training.calibrate picks them;
each checkpoint runs once per item, exactly as inference runs it. Candidates are ranked by the
calibration objective (training.calibrate.objective: worst-case plus mean margin over the better
of the two baselines). Like calibration, never point it at test/studies: it makes a choice.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from inference.pipeline import route_average, run_checkpoint
from inference.settings import InferenceSettings
from metrics.challenge import METRICS_BY_ORGANELLE
from models.manifest import Manifest, ModelStore
from preprocessing.ome_io import MODALITIES, ORGANELLES, read_ome_tiff

from .calibrate import baseline_scores, margins, mean_scores, objective
from .dataset import load_fovs
from .validation import pick_slices


def parse_candidate(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split("+"))
    if not all(names):
        raise ValueError(f"candidate {text!r}: checkpoint names joined by '+', none empty")
    return names


def compare(manifest: Manifest, store: ModelStore, data: str, modality: str, organelle: str,
            candidates: list[tuple[str, ...]], max_items: int, seed: int = 0, max_defocus: int | None = 5,
            settings: InferenceSettings | None = None) -> dict:
    """Scores, margins and objective of every candidate, best first, and the baselines."""
    settings = settings or InferenceSettings()
    names = list(dict.fromkeys(n for c in candidates for n in c))
    for name in names:
        if organelle not in manifest.spec(name).organelles:
            raise ValueError(f"checkpoint {name} does not predict {organelle}")
    fovs = load_fovs(data, modalities=(modality,), organelles=(organelle,), max_defocus=max_defocus,
                     use="calibration")
    if not fovs:
        raise ValueError(f"{data}: no {modality} field of view with {organelle} ground truth")
    tls, gts, predictions = [], [], {name: [] for name in names}
    for fov, z in pick_slices(fovs, max_items, seed):
        image = read_ome_tiff(fov.slices[int(z)])
        tls.append(image.array)
        gts.append(read_ome_tiff(fov.ground_truth[organelle]).array)
        prepared: dict = {}   # as inference does: one normalised input per (norm, pixel size)
        for name in names:
            checkpoint = store.get(name)
            channels = run_checkpoint(checkpoint, image, settings, prepared)
            predictions[name].append(channels[checkpoint.spec.channel(organelle)])
    baselines = baseline_scores(tls, gts, organelle)
    rows = []
    for candidate in candidates:
        averaged = (route_average(np.sum([predictions[n][i] for n in candidate], axis=0, dtype=np.float32),
                                  len(candidate)) for i in range(len(gts)))
        scores = mean_scores((p, g, organelle) for p, g in zip(averaged, gts))
        m = margins(scores, list(baselines.values()))
        rows.append({"candidate": "+".join(candidate), "scores": scores, "margins": m, "objective": objective(m)})
    rows.sort(key=lambda r: r["objective"], reverse=True)
    return {"data": str(data), "modality": modality, "organelle": organelle, "items": len(gts),
            "metrics": list(METRICS_BY_ORGANELLE[organelle]), "candidates": rows, "baselines": baselines}


def table(result: dict) -> str:
    metrics = result["metrics"]
    where = f"{result['items']} slices of {result['data']}"
    lines = [f"{result['modality']} {result['organelle']} on {where} (best first)",
             f"  {'candidate':40s} {'objective':>9s}" + "".join(f" {m:>8s}" for m in metrics)]
    for row in result["candidates"]:
        lines.append(f"  {row['candidate']:40s} {row['objective']:9.4f}"
                     + "".join(f" {row['scores'][m]:8.4f}" for m in metrics))
    for label, scores in result["baselines"].items():
        lines.append(f"  {label:40s} {'':9s}" + "".join(f" {scores[m]:8.4f}" for m in metrics))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--weights", required=True, type=Path, help="folder with manifest.json and the checkpoints")
    p.add_argument("--data", required=True, help="calibration studies (never test/studies)")
    p.add_argument("--modality", required=True, choices=MODALITIES)
    p.add_argument("--organelle", required=True, choices=ORGANELLES)
    p.add_argument("--candidate", required=True, action="append", type=parse_candidate,
                   help="a checkpoint name, or names joined by '+' (averaged); repeat")
    p.add_argument("--items", type=int, default=40, help="slices to predict")
    p.add_argument("--max-defocus", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        manifest = Manifest.load(args.weights / "manifest.json")
        settings = InferenceSettings()
        result = compare(manifest, ModelStore(manifest, device=settings.torch_device()), args.data,
                         args.modality, args.organelle, args.candidate, args.items, args.seed,
                         args.max_defocus, settings)
    except (OSError, ValueError) as exc:
        print(f"compare_routes: {exc}", file=sys.stderr)
        return 1
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
