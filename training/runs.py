"""A finished (or stopped) training run read back: its checkpoint, spec and generator.

One loader for everything that consumes a run folder: export (training/export.py), calibration
(training/calibrate.py) and the real-image benchmarks. It takes best.pt, or last.pt when the run
was too short to validate, and builds the inference spec the export will write.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from models.registry import CheckpointSpec, LoadedCheckpoint, build_model, sha256_file

from .checkpointing import load_module_state, load_training_checkpoint
from .trainer import BEST, LAST


@dataclass
class LoadedRun:
    path: Path                 # the checkpoint file read (RUN/best.pt or RUN/last.pt)
    state: dict                # its training checkpoint dict
    spec: CheckpointSpec       # the inference spec an export writes (no calibration yet)
    model: nn.Module           # the generator, eval mode, on the CPU
    train_config: dict         # RUN/run.json's "train" (TrainConfig as saved)

    @property
    def step(self) -> int:
        return int(self.state["step"])

    def as_checkpoint(self) -> LoadedCheckpoint:
        """For inference code (inference.pipeline.run_checkpoint): uncalibrated."""
        return LoadedCheckpoint(self.path.parent.name, self.path, sha256_file(self.path), self.spec, self.model)


def spec_from_run(state: dict, *, window: int | None = None, note: str | None = None) -> CheckpointSpec:
    steps = state["step"]
    # "steps" are those of this run only: a warm-started run's note says what came before.
    default_note = (f"{state['arch']}, {steps} steps in its last training run, on "
                    f"{', '.join(state['modalities'])} ({state.get('note') or 'data not described'})")
    return CheckpointSpec(arch=state["arch"], config=state["model_config"],
                          organelles=tuple(state["organelles"]), modalities=tuple(state["modalities"]),
                          input_norm=dict(state["input_norm"]), pixel_size_um=state["pixel_size_um"],
                          window=int(window or state["window"]), size_divisor=int(state["size_divisor"]),
                          note=note or default_note)


def load_run(run: str | Path, which: str = "best", *, window: int | None = None,
             note: str | None = None) -> LoadedRun:
    """RUN/best.pt (falling back to last.pt when there is none) or RUN/last.pt. FileNotFoundError
    naming the folder when it holds neither."""
    run = Path(run)
    path = run / (BEST if which == "best" else LAST)
    if which == "best" and not path.exists():
        path = run / LAST
    if not path.exists():
        raise FileNotFoundError(f"{run}: no {BEST} or {LAST}; is this a training run folder?")
    state = load_training_checkpoint(path)
    spec = spec_from_run(state, window=window, note=note)
    model = build_model(spec.arch, spec.config)
    load_module_state(model, state["generator"])
    model.eval()
    run_json = run / "run.json"
    train_config = json.loads(run_json.read_text())["train"] if run_json.is_file() else {}
    return LoadedRun(path, state, spec, model, train_config)
