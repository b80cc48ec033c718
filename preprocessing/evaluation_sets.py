"""Evaluation sets that training must never read, and the marker that says so.

A folder made to judge models (the CI smoke set `test/studies`, the benchmark's development and
test sets) carries a small JSON marker, EVALUATION_SET.json, in its root and in every Study_<n>
folder, so that pointing a trainer at the set or at one of its studies is refused:

    {"purpose": "development" | "test" | "smoke", "seed": 910001, "made_by": "python -m benchmarks.heldout"}

What each use may read:
- "training" (the trainers): no evaluation set at all;
- "calibration" (output calibration and route choice, which are decisions): the development set
  only; the test and smoke sets judge those decisions and must stay unseen by them.
A folder without a marker is ordinary data (the real data set, simulated training studies).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

MARKER = "EVALUATION_SET.json"
PURPOSES = ("development", "test", "smoke")
USES = {"training": frozenset(), "calibration": frozenset({"development"})}


class EvaluationSetError(ValueError):
    """A use asked to read an evaluation set it must not see."""


def write_marker(folder: str | os.PathLike, purpose: str, seed: int | None, made_by: str) -> Path:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown evaluation purpose {purpose!r}; expected one of {PURPOSES}")
    path = Path(folder) / MARKER
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"purpose": purpose, "seed": seed, "made_by": made_by}, indent=2) + "\n")
    return path


def read_marker(folder: str | os.PathLike) -> dict | None:
    """The marker of FOLDER itself, or None. An unreadable marker counts as a test set: a guard
    that fails open would let a damaged marker leak the test set into training."""
    path = Path(folder) / MARKER
    if not path.is_file():
        return None
    try:
        marker = json.loads(path.read_text())
        if marker.get("purpose") in PURPOSES:
            return marker
    except (OSError, ValueError, AttributeError):
        pass
    return {"purpose": "test", "seed": None, "made_by": f"unreadable marker {path}"}


def markers_under(root: str | os.PathLike) -> dict[Path, dict]:
    """Markers of ROOT, of the folders above it (a study given directly) and of its Study_* folders."""
    root = Path(root).resolve()
    found = {}
    for folder in [root, *root.parents, *sorted(p for p in root.glob("Study*") if p.is_dir())]:
        if (marker := read_marker(folder)) is not None:
            found[folder] = marker
    return found


def check_usable(root: str | os.PathLike, use: str) -> None:
    """Raise EvaluationSetError when ROOT holds an evaluation set that `use` must not read."""
    if use not in USES:
        raise ValueError(f"unknown use {use!r}; expected one of {sorted(USES)}")
    for folder, marker in markers_under(root).items():
        if marker["purpose"] not in USES[use]:
            allowed = ", ".join(sorted(USES[use])) or "none"
            raise EvaluationSetError(
                f"{folder} is the {marker['purpose']} evaluation set ({MARKER}, made by "
                f"{marker.get('made_by')}); {use} may read only these evaluation sets: {allowed}")
