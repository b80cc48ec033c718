"""A run folder is never overwritten or silently changed by a repeated command.

Training twice into the same `--out` used to restart at step 0, overwrite best.pt and append a
second 10...30 sequence to train_log.csv; a resume with another crop, batch or schedule was
accepted without a word (a larger --steps even sent the decayed learning rate back up). Now:
- an `--out` that holds a run is refused unless `--resume` (continue it) or `--force` (start over:
  its run files are removed first, so no log mixes two runs);
- a resume whose settings differ from the saved run.json in anything that defines the run (model,
  data, crop, batch, schedule, losses) is refused, naming each change, unless `--force`.
Settings that only affect how fast or how verbosely it runs (threads, workers, progress, the
stop/time limits of this invocation) may change freely.
"""
from __future__ import annotations

import json
from pathlib import Path

RUN_FILES = ("last.pt", "best.pt", "train_log.csv", "val_log.csv", "run.json", "train_curves.png")
# TrainConfig fields a resume may change: they steer this invocation, not what is learned.
FREE_ON_RESUME = frozenset({"out", "stop_after", "time_limit_min", "val_every", "ckpt_every", "log_every",
                            "cache_gb", "amp", "device", "threads", "workers", "prefetch", "resume",
                            "init_from", "progress", "note", "force"})


class RunFolderError(ValueError):
    """A user mistake about the run folder: one line, never a traceback."""


def existing_run_files(out: Path) -> list[str]:
    return [name for name in RUN_FILES if (out / name).exists()]


def guard_run_folder(out: Path, *, resume: bool, force: bool) -> None:
    """Refuse to start over an existing run without --force; with it, clear the old run's files."""
    found = existing_run_files(out)
    if not found or resume:
        return
    if not force:
        raise RunFolderError(f"{out} already holds a run ({', '.join(found)}); pass --resume to continue "
                             "it or --force to start over (its files are deleted)")
    for name in found:
        (out / name).unlink()


def resume_changes(saved_train: dict, current_train: dict) -> list[str]:
    """'field: saved -> now' for every run-defining field that differs (JSON round-trip for both,
    so tuples and lists compare alike)."""
    saved = json.loads(json.dumps(saved_train, default=str))
    now = json.loads(json.dumps(current_train, default=str))
    changes = []
    for key in sorted(set(saved) | set(now)):
        if key in FREE_ON_RESUME or saved.get(key) == now.get(key):
            continue
        changes.append(f"{key}: {saved.get(key)!r} -> {now.get(key)!r}")
    return changes


def guard_resume(out: Path, current_train: dict, *, force: bool) -> None:
    """Refuse a resume that changes what the run is, unless forced."""
    run_json = out / "run.json"
    if not run_json.exists():
        return
    try:
        saved = json.loads(run_json.read_text())["train"]
    except (ValueError, KeyError) as exc:
        raise RunFolderError(f"{run_json}: unreadable run description ({exc}); --force to resume anyway") from exc
    changes = [] if force else resume_changes(saved, current_train)
    if changes:
        raise RunFolderError(f"{out}: resuming with changed settings ({'; '.join(changes)}); use the run's "
                             "settings, a new --out, or --force")
