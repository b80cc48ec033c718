"""Training checkpoints that resume bit-for-bit.

A run is fixed by: the weights (parameters AND buffers, including non-persistent ones such as the
quantiser's code-usage average, which a plain state_dict leaves out), both optimisers, the AMP
grad scaler, the step, every random generator that is drawn from (torch CPU and CUDA, numpy's
global one, Python's `random`) and each rank's sampler state. All of it goes into one file,
written atomically so a run killed mid-save still has its previous checkpoint.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from preprocessing.atomic_write import atomic_target


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": np.random.get_state(),
            "python": random.getstate()}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available() and state.get("cuda"):
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def module_state(module: nn.Module) -> dict:
    """state_dict plus the non-persistent buffers (training state that resume must restore)."""
    state = {"params": module.state_dict()}
    persistent = set(module.state_dict())
    state["extra_buffers"] = {name: buf.detach().clone() for name, buf in module.named_buffers()
                              if name not in persistent}
    return state


def load_module_state(module: nn.Module, state: dict) -> None:
    module.load_state_dict(state["params"], strict=True)
    buffers = dict(module.named_buffers())
    for name, value in state.get("extra_buffers", {}).items():
        if name not in buffers:
            raise KeyError(f"checkpoint has buffer {name!r} that the model lacks")
        buffers[name].copy_(value)


def atomic_save(obj: dict, path: Path) -> Path:
    path = Path(path)
    with atomic_target(path) as tmp, open(tmp, "wb") as f:   # a file object: see save_checkpoint
        torch.save(obj, f)
    return path


def load_training_checkpoint(path: Path) -> dict:
    """The dict saved by the trainer; a clear error naming the file when it is not one."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many kinds for truncated files
        raise ValueError(f"{path}: not a readable training checkpoint ({type(exc).__name__}: {exc})") from exc
    missing = {"step", "arch", "model_config", "generator"} - set(state if isinstance(state, dict) else ())
    if missing:
        raise ValueError(f"{path}: not a training checkpoint (missing {sorted(missing)})")
    return state


def load_init_checkpoint(path: Path) -> dict:
    """What a warm start needs (arch, model_config, generator) from a training checkpoint or from a
    shipped checkpoint (weights/<name>.pt, models.registry's format), so a run can start from the
    shipped weights as well as from another run's best.pt."""
    from models.checkpoint import CheckpointError, load_checkpoint, read_spec

    path = Path(path)
    try:
        read_spec(path)
    except CheckpointError:
        return load_training_checkpoint(path)
    shipped = load_checkpoint(path)   # strict load; fp16 weights come back as the fp32 model's
    return {"step": 0, "arch": shipped.spec.arch, "model_config": shipped.spec.config,
            "generator": module_state(shipped.model)}
