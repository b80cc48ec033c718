"""Predicting a benchmark set with the real container path: `process.py`, one image per run.

The platform runs one job per image, so each TL slice gets its own `process.main` call, with its
own model loading: the seconds recorded per image are what a job costs, and an interrupted run
resumes at the first image whose four outputs are missing. Predictions live under
WORK/<purpose>/predictions/<fingerprint>/, where the fingerprint covers the weights (manifest and
checkpoint hashes), the inference settings and the source of everything the container runs
(process.py, inference/, preprocessing/, models/): a change to any of them means new predictions.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

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


def run_fingerprint(weights: Path, tta: str) -> str:
    digest = hashlib.sha256()
    digest.update((Path(weights) / "manifest.json").read_bytes())  # holds every checkpoint's sha256
    digest.update(f"tta={tta};code={code_fingerprint()}".encode())
    return digest.hexdigest()[:16]


def has_outputs(root: Path, name: str) -> bool:
    return all((root / sub / name).is_file() for sub in OUTPUT_SUBDIRS.values())


def predict_set(inputs: list[Path], work: Path, weights: Path, tta: str, progress: bool = True
                ) -> PredictionRun:
    """Run process.py on every TL file of `inputs` that has no four outputs yet."""
    import process  # the container's entry point, exactly as the platform runs it

    fingerprint = run_fingerprint(weights, tta)
    root = Path(work) / fingerprint
    root.mkdir(parents=True, exist_ok=True)
    timing_path = root / "seconds.json"
    seconds = json.loads(timing_path.read_text()) if timing_path.is_file() else {}
    write_json(root / "run.json", {"weights": str(weights), "tta": tta, "code": code_fingerprint(),
                                   "fingerprint": fingerprint})
    todo = [p for p in inputs if not has_outputs(root, p.name)]
    failed = []
    from tqdm import tqdm
    quiet_process = logging.getLogger("process")
    level = quiet_process.level
    quiet_process.setLevel(logging.WARNING)   # one bar here instead of a line per image
    try:
        for path in tqdm(todo, desc="predicting (process.py)", unit="image", disable=not progress):
            with tempfile.TemporaryDirectory(prefix="lmc_bench_in_") as tmp:
                os.link(path, Path(tmp) / path.name)
                start = time.perf_counter()
                code = process.main(["--input", tmp, "--output", str(root), "--weights", str(weights),
                                     "--tta", tta, "--quiet"])
                elapsed = time.perf_counter() - start
            if code != 0 or not has_outputs(root, path.name):
                failed.append(path.name)
                continue
            seconds[path.name] = round(elapsed, 3)
            write_json(timing_path, seconds)
    finally:
        quiet_process.setLevel(level)
    return PredictionRun(root, fingerprint, seconds, failed)
