"""Where a report's numbers come from: weights, code, date and the settings the predictions were made with.

A reader has to be able to tell two reports apart and to redo one, so each fact says "unknown"
(with the reason) rather than being left out when it cannot be found.
- weights: the sha256 of the weights folder's manifest.json. The manifest lists every checkpoint's
  own sha256, so its hash pins all of them at once;
- code: the git commit of this checkout (`+ local changes` when the tree differs from it);
- settings: RUN_INFO (a JSON object of settings) in the prediction folder, which process.py
  writes at the start of every run; unknown for predictions made any other way.
"""
from __future__ import annotations

import datetime
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from models.checkpoint import sha256_file

RUN_INFO = "run_info.json"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WEIGHTS = PROJECT_ROOT / "weights"


@dataclass
class Provenance:
    weights: str                  # the weights folder as given
    manifest_sha256: str          # or "unknown (...)"
    commit: str                   # or "unknown"
    date: str                     # UTC, ISO 8601, to the second
    settings: dict[str, str] = field(default_factory=dict)   # empty: unknown
    settings_source: str = ""     # where the settings were read, or why they are unknown
    inputs: dict[str, str] = field(default_factory=dict)     # the report's own arguments

    def rows(self) -> list[tuple[str, str]]:
        rows = [("weights folder", self.weights), ("manifest.json sha256", self.manifest_sha256),
                ("code commit", self.commit), ("report date (UTC)", self.date),
                *self.inputs.items()]
        if self.settings:
            rows += [(f"setting: {k}", v) for k, v in self.settings.items()]
        rows.append(("prediction settings source", self.settings_source))
        return rows


def manifest_sha256(weights_dir: Path) -> str:
    manifest = weights_dir / "manifest.json"
    if not manifest.is_file():
        return f"unknown (no {manifest})"
    return sha256_file(manifest)


def git_commit(repo: Path = PROJECT_ROOT) -> str:
    """HEAD of the checkout the code runs from; "unknown" outside git (the container has no .git)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                              check=True, timeout=10).stdout.strip()
    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit} + local changes" if dirty else commit


def read_settings(pred_root: Path) -> tuple[dict[str, str], str]:
    """(settings, where from / why unknown). A RUN_INFO that is not a JSON object is a clear error."""
    path = pred_root / RUN_INFO
    if not path.is_file():
        return {}, f"unknown (no {RUN_INFO} in {pred_root})"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not readable as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of settings, got {type(data).__name__}")
    return {str(k): json.dumps(v) if not isinstance(v, str) else v for k, v in data.items()}, str(path)


def collect(pred_root: Path, weights_dir: Path, inputs: dict[str, str] | None = None,
            now: datetime.datetime | None = None) -> Provenance:
    settings, source = read_settings(pred_root)
    now = now or datetime.datetime.now(datetime.UTC)
    return Provenance(weights=str(weights_dir), manifest_sha256=manifest_sha256(weights_dir),
                      commit=git_commit(), date=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      settings=settings, settings_source=source, inputs=dict(inputs or {}))
