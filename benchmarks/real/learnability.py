"""Learnability: can the trainer learn real nuclei from real phase contrast, and does simulated
pre-training help?

The ISL field is split at a fixed column (data.ISL_SPLIT_COLUMN): its left three quarters become a
small training set in the data set's layout (six fields of 512 x 256 px, each with the 13 slices
and the DAPI tile; one field is the trainer's validation split), its right quarter is only scored.
Two pix2pix `small` runs with the same recipe and step budget train on it: one from scratch, one
warm-started from the shipped PC pix2pix (trained on simulated cells only). Both are scored on the
right quarter's 13 slices with the challenge's metrics, beside the baselines and the shipped
weights' zero-shot prediction of the same region.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inference.pipeline import InferenceSettings, run_checkpoint
from preprocessing.layout import gt_file_name, tl_file_name
from preprocessing.ome_io import to_uint16, write_ome_tiff

from .data import ISL_SPLIT_COLUMN, RealPair

TILE = (512, 256)          # (H, W) of the training fields cut from the left three quarters
WARM_START = "p2p_pc_small"


@dataclass(frozen=True)
class Recipe:
    steps: int = 300
    seed: int = 0
    crop: int = 128
    batch_size: int = 8
    pixel_size_um: float = 0.2      # the shipped models' grid, so the warm start sees its own scale


def write_training_fields(pair: RealPair, root: Path) -> Path:
    """ROOT/Study_1/: the training part of the field as 512 x 256 tiles with all 13 slices each."""
    h, w = pair.nucleus.shape
    if w > ISL_SPLIT_COLUMN:
        raise ValueError(f"training fields must come from columns < {ISL_SPLIT_COLUMN}, got width {w}")
    folder = Path(root) / "Study_1"
    pixel = (pair.pixel_size_um, pair.pixel_size_um)
    index = 0
    for top in range(0, h - TILE[0] + 1, TILE[0]):
        for left in range(0, w - TILE[1] + 1, TILE[1]):
            window = (slice(top, top + TILE[0]), slice(left, left + TILE[1]))
            image_id = f"1{index:04d}"
            for z, image in enumerate(pair.tl):
                write_ome_tiff(folder / tl_file_name(image_id, "PC", z), to_uint16(image.array[window]),
                               channel_name="PC", pixel_size_um=pixel)
            write_ome_tiff(folder / gt_file_name(image_id, "nucleus"), to_uint16(pair.nucleus[window]),
                           channel_name="Nucleus", pixel_size_um=pixel)
            index += 1
    return Path(root)


def _finished(run: Path, steps: int) -> bool:
    log = run / "train_log.csv"
    if not (run / "best.pt").is_file() or not log.is_file():
        return False
    with open(log, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return bool(rows) and int(rows[-1]["step"]) >= steps


def train_run(data: Path, out: Path, recipe: Recipe, init_from: Path | None = None) -> Path:
    """One pix2pix small run (L1 only, as the shipped recipe) unless OUT already finished it."""
    from training.train_pix2pix import main as train_pix2pix

    if _finished(out, recipe.steps):
        return out
    argv = ["--data", str(data), "--out", str(out), "--preset", "small", "--modalities", "PC",
            "--pixel-size", str(recipe.pixel_size_um), "--crop", str(recipe.crop),
            "--batch-size", str(recipe.batch_size), "--steps", str(recipe.steps), "--gan-weight", "0",
            "--val-fraction", "0.17", "--val-every", str(max(1, recipe.steps // 3)), "--val-items", "6",
            "--val-crop", "256", "--seed", str(recipe.seed), "--quiet"]
    if init_from is not None:
        argv += ["--init-from", str(init_from)]
    if (out / "last.pt").is_file():
        argv.append("--resume")
    train_pix2pix(argv)
    return out


def predict_run(run: Path, pair: RealPair, settings: InferenceSettings) -> list[np.ndarray]:
    """The run's best checkpoint on every TL slice of `pair`, nucleus channel, uint16 as written."""
    from training.runs import load_run

    checkpoint = load_run(run).as_checkpoint()
    channel = checkpoint.spec.channel("nucleus")
    return [to_uint16(run_checkpoint(checkpoint, image, settings)[channel] * 65535.0) for image in pair.tl]
