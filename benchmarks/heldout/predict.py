"""Predicting a benchmark set with the real container path: `process.py`, one image per run.

The platform runs one job per image, so each TL slice gets its own `process.main` call, with its
own model loading: the seconds recorded per image are what a job costs, and an interrupted run
resumes at the first image whose four outputs are missing. Predictions live under
WORK/<set>/predictions/<fingerprint>/, where the fingerprint covers the weights (manifest and
checkpoint hashes) and the inference settings.

The container's code (process.py, inference/, preprocessing/, models/) can change without changing
what it predicts (a refactor, a new input format). When it has changed since the stored
predictions were made, one image per modality is predicted again with the current code: if every
output pixel is identical the stored predictions stand, and the code's hash joins the list of code
they are known to match (run.json); otherwise they are all made again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from inference.settings import InferenceSettings
from preprocessing.atomic_write import write_json
from preprocessing.layout import OUTPUT_SUBDIRS

_REPO = Path(__file__).resolve().parents[2]
_CONTAINER_CODE = ("process.py", "inference", "preprocessing", "models")


@dataclass(frozen=True)
class PredictionRun:
    root: Path            # the prediction root (images/<organelle>-fluorescence-ome-tiff/ inside)
    fingerprint: str
    seconds: dict         # TL name -> wall seconds of its process.py run
    failed: list          # TL names whose run did not write four outputs


def code_fingerprint() -> str:
    digest = hashlib.sha256()
    for entry in _CONTAINER_CODE:
        path = _REPO / entry
        for file in sorted([path] if path.is_file() else path.rglob("*.py")):
            digest.update(str(file.relative_to(_REPO)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def run_fingerprint(weights: Path, tta: str, blend: str = InferenceSettings().blend) -> str:
    digest = hashlib.sha256()
    digest.update((Path(weights) / "manifest.json").read_bytes())  # holds every checkpoint's sha256
    digest.update(f"tta={tta}".encode())
    digest.update(f"blend={blend}".encode())
    return digest.hexdigest()[:16]


def has_outputs(root: Path, name: str) -> bool:
    return all((root / sub / name).is_file() for sub in OUTPUT_SUBDIRS.values())


def _run_one(process, path: Path, out: Path, weights: Path, tta: str, blend: str) -> tuple[int, float]:
    with tempfile.TemporaryDirectory(prefix="lmc_bench_in_") as tmp:
        os.link(path, Path(tmp) / path.name)
        start = time.perf_counter()
        code = process.main(["--input", tmp, "--output", str(out), "--weights", str(weights),
                             "--tta", tta, "--blend", blend, "--quiet"])
        return code, time.perf_counter() - start


def still_valid(process, root: Path, inputs: list[Path], weights: Path, tta: str, blend: str) -> bool:
    """Re-predict one stored image per modality with the current code; True if all pixels agree."""
    import numpy as np
    import tifffile

    from preprocessing.ome_io import read_ome_tiff

    done = [p for p in inputs if has_outputs(root, p.name)]
    by_modality: dict = {}
    for path in sorted(done, key=lambda p: (p.stat().st_size, p.name)):
        by_modality.setdefault(read_ome_tiff(path).modality, path)
    with tempfile.TemporaryDirectory(prefix="lmc_bench_check_") as tmp:
        for path in by_modality.values():
            code, _ = _run_one(process, path, Path(tmp), weights, tta, blend)
            if code != 0:
                return False
            for sub in OUTPUT_SUBDIRS.values():
                if not np.array_equal(tifffile.imread(Path(tmp) / sub / path.name),
                                      tifffile.imread(root / sub / path.name)):
                    return False
    return True


def adopt(root: Path, inputs: list[Path], other_work: Path, code: str) -> int:
    """Hard-link the outputs (and seconds) of images that another set's run with the same
    fingerprint already predicted with this code: the quick subset's images are development images."""
    other = other_work / root.name
    if not (other / "run.json").is_file() or code not in json.loads((other / "run.json").read_text())["code"]:
        return 0
    theirs = json.loads((other / "seconds.json").read_text()) if (other / "seconds.json").is_file() else {}
    ours_path = root / "seconds.json"
    ours = json.loads(ours_path.read_text()) if ours_path.is_file() else {}
    count = 0
    for path in inputs:
        if has_outputs(root, path.name) or not has_outputs(other, path.name) or path.name not in theirs:
            continue
        for sub in OUTPUT_SUBDIRS.values():
            (root / sub).mkdir(parents=True, exist_ok=True)
            os.link(other / sub / path.name, root / sub / path.name)
        ours[path.name] = theirs[path.name]
        count += 1
    write_json(ours_path, ours)
    return count


def predict_set(inputs: list[Path], work: Path, weights: Path, tta: str, progress: bool = True,
                adopt_from: Sequence[Path] = (), blend: str = InferenceSettings().blend) -> PredictionRun:
    """Run process.py on every TL file of `inputs` that has no four outputs yet (taking those that
    `adopt_from`, other runs' predictions folders of the same plan, already hold)."""
    import process  # the container's entry point, exactly as the platform runs it

    fingerprint = run_fingerprint(weights, tta, blend)
    root = Path(work) / fingerprint
    code = code_fingerprint()
    run_path, timing_path = root / "run.json", root / "seconds.json"
    known = json.loads(run_path.read_text())["code"] if run_path.is_file() else []
    if known and code not in known:
        if still_valid(process, root, inputs, weights, tta, blend):
            known.append(code)
        else:   # the container now predicts otherwise: nothing stored can be kept
            shutil.rmtree(root)
            known = []
    root.mkdir(parents=True, exist_ok=True)
    write_json(run_path, {"weights": str(weights), "tta": tta, "blend": blend, "fingerprint": fingerprint,
                          "code": known or [code]})
    for other in adopt_from:
        adopt(root, inputs, Path(other), code)
    seconds = json.loads(timing_path.read_text()) if timing_path.is_file() else {}
    todo = [p for p in inputs if not has_outputs(root, p.name)]
    failed = []
    from tqdm import tqdm
    quiet_process = logging.getLogger("process")
    level = quiet_process.level
    quiet_process.setLevel(logging.WARNING)   # one bar here instead of a line per image
    try:
        for path in tqdm(todo, desc="predicting (process.py)", unit="image", disable=not progress):
            status, elapsed = _run_one(process, path, root, weights, tta, blend)
            if status != 0 or not has_outputs(root, path.name):
                failed.append(path.name)
                continue
            seconds[path.name] = round(elapsed, 3)
            write_json(timing_path, seconds)
    finally:
        quiet_process.setLevel(level)
    return PredictionRun(root, fingerprint, seconds, failed)
