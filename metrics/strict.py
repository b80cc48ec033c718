"""Strict mode: stop where the organizers' evaluation stops, before anything is written.

The organizers' published evaluation script (grand-challenge, phase 1; see metrics/README.md,
"Strict mode") raises, and so ends the whole evaluation with no metrics.json, when
- any of an image's four prediction files is missing (it checks all four, with or without ground truth);
- a prediction's array, read with plain `tifffile.imread`, differs in shape from the ground truth's,
  read the same way. Both reads are compared as they are, no squeezing: an OME-TIFF written as
  TCZYX with T=C=Z=1 reads as (H, W); a non-OME TIFF of a (1, 1, 1, H, W) array reads as
  (1, 1, 1, H, W) and differs from an (H, W) ground truth. Equal shapes that are not 2D stop it too:
  its SSIM (7x7 window, no channel axis) refuses arrays with singleton axes;
- a nucleus or mitochondria prediction holds NaN or inf: its MAE and distances go through
  scikit-learn's input checks (`Input contains NaN`);
- a scored image has no row in the CSV of modality and z (a KeyError while it aggregates).
A missing ground truth is not an error there (that organelle's entry is {}), nor here.

One deliberate difference: a non-finite tubulin or actin prediction stops strict mode too. The
organizers compute no distance for those two, so their script would carry on and score it PCC 0
and SSIM NaN, and that NaN makes the organelle's mean NaN on the leaderboard.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from .challenge import METRICS_BY_ORGANELLE
from .pairing import Pairing

# keyed by "does this organelle get MAE and the distances", which go through scikit-learn
_NON_FINITE_CONSEQUENCE = {
    True: "scikit-learn's input checks in the organizers' MAE and distances refuse it",
    False: "the organizers' script would score it SSIM NaN and make the organelle's mean NaN",
}


class EvaluationStopped(Exception):
    """What the organizers' evaluation would stop on; the message is one line naming the file.

    Not a ValueError on purpose: the forgiving scorer reports ValueErrors per file and goes on, and
    the CLI turns ValueErrors into "bad arguments" (exit 2); this must end the run (exit 1).
    """


def check_pairing(pairing: Pairing) -> None:
    """Refuse a pairing with a missing prediction file or an image absent from the focus CSV."""
    if pairing.missing_files:
        more = len(pairing.missing_files) - 1
        raise EvaluationStopped(f"{pairing.missing_files[0]}: missing prediction; the organizers' evaluation "
                                "stops when any of an image's four outputs is missing"
                                + (f" ({more} more missing)" if more else ""))
    absent = [r for r in pairing.images if not r.in_csv]
    if absent:
        where = ", ".join(str(p) for p in pairing.csv_paths) or "no CSV given (--csv) or found beside the ground truth"
        more = len(absent) - 1
        first = absent[0].input_path or absent[0].name
        raise EvaluationStopped(f"{first}: not in the CSV of modality and z (name,modality,image_z,best_z: {where}); "
                                "the organizers' evaluation stops on it" + (f" ({more} more absent)" if more else ""))


def _plain_read(path: Path) -> np.ndarray:
    try:
        return tifffile.imread(path)
    except Exception as exc:  # tifffile raises many kinds for truncated or foreign files
        raise EvaluationStopped(f"{path}: unreadable TIFF ({type(exc).__name__}: {exc})") from exc


def read_pair(pred_path: Path, gt_path: Path, organelle: str) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, ground truth) exactly as the organizers read them, or EvaluationStopped."""
    gt = _plain_read(gt_path)
    pred = _plain_read(pred_path)
    if pred.shape != gt.shape:
        raise EvaluationStopped(f"{pred_path}: {organelle} prediction shape {pred.shape} (plain tifffile.imread) "
                                f"!= ground-truth shape {gt.shape} ({gt_path}); the organizers' evaluation stops on it")
    if pred.ndim != 2:
        raise EvaluationStopped(f"{pred_path}: {organelle} prediction reads as {pred.shape}, not one 2D plane; "
                                "the organizers' SSIM (7x7 window) refuses it")
    for path, array, what in ((pred_path, pred, "prediction"), (gt_path, gt, "ground truth")):
        if array.dtype.kind not in "uifb":
            raise EvaluationStopped(f"{path}: {organelle} {what} has pixel type {array.dtype}, not numbers")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            bad = int(array.size - np.count_nonzero(np.isfinite(array)))
            raise EvaluationStopped(f"{path}: {organelle} {what} has {bad} NaN or infinite pixel(s); "
                                    + _NON_FINITE_CONSEQUENCE["MAE" in METRICS_BY_ORGANELLE[organelle]])
    return pred, gt
