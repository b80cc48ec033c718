"""Validation with the challenge's own metrics (metrics/challenge.py score_image).

A fixed list of (FOV, z-slice) items, drawn once from a seed, is predicted every N steps on a
centred window of the whole normalised image (at most `crop` pixels a side, a multiple of the
model's size divisor) so one validation costs the same at every step. The score that picks the
best checkpoint is the mean over organelles of (PCC + SSIM) / 2: the two metrics every organelle
has, each on a 0..1-ish scale, so no organelle or metric dominates.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from metrics.challenge import score_image
from preprocessing.layout import FieldOfView

from .dataset import ImageSource


@dataclass(frozen=True)
class ValItem:
    fov: FieldOfView
    z: int


def pick_slices(fovs: list[FieldOfView], max_items: int, seed: int) -> list[tuple[FieldOfView, int]]:
    """Up to max_items (FOV, z) pairs, the one choice of slices for validation, calibration and
    route comparison. Every FOV gives one slice before any gives a second (FOVs in random order,
    random slices), so a cap on items never drops whole studies."""
    rng = np.random.default_rng(seed)
    slices = [rng.permutation(sorted(fov.slices)) for fov in fovs]
    order = rng.permutation(len(fovs))
    rounds = max((len(s) for s in slices), default=0)
    return [(fovs[i], int(slices[i][r])) for r in range(rounds) for i in order if r < len(slices[i])][:max_items]


def validation_items(fovs: list[FieldOfView], max_items: int, seed: int) -> list[ValItem]:
    """The trainer's fixed validation list: pick_slices's (FOV, z) pairs."""
    return [ValItem(fov, z) for fov, z in pick_slices(fovs, max_items, seed)]


def _centre_window(shape: tuple[int, int], crop: int, divisor: int) -> tuple[slice, slice]:
    out = []
    for n in shape:
        side = min(crop, n) // divisor * divisor
        if side < divisor:
            raise ValueError(f"validation image side {n} is smaller than the model's size divisor {divisor}")
        start = (n - side) // 2
        out.append(slice(start, start + side))
    return out[0], out[1]


@torch.inference_mode()
def evaluate(model: nn.Module, items: list[ValItem], images: ImageSource, organelles: tuple[str, ...],
             *, crop: int, divisor: int, device: torch.device, amp_dtype: torch.dtype | None = None
             ) -> dict[str, float]:
    """Mean challenge metrics per organelle ("<organelle>/<metric>") and the overall "score"."""
    was_training = model.training
    model.eval()
    per_metric: dict[str, list[float]] = {}
    try:
        for item in items:
            tl, gts = images.pair(item.fov, item.z)   # arrays may be float16 memory maps
            wy, wx = _centre_window(tl.shape, crop, divisor)
            x = torch.from_numpy(np.array(tl[wy, wx], np.float32))[None, None].to(device)
            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                y = model(x)
            pred = y.float()[0].cpu().numpy()
            for k, organelle in enumerate(organelles):
                if organelle in gts:
                    scores = score_image(pred[k], np.array(gts[organelle][wy, wx], np.float32), organelle)
                    for metric, value in scores.items():
                        per_metric.setdefault(f"{organelle}/{metric}", []).append(value)
    finally:
        model.train(was_training)
    result = {key: float(np.nanmean(values)) for key, values in per_metric.items()}
    per_organelle = [(result[f"{o}/PCC"] + result[f"{o}/SSIM"]) / 2 for o in organelles
                     if f"{o}/PCC" in result]
    result["score"] = float(np.mean(per_organelle)) if per_organelle else float("nan")
    return result
