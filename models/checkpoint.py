"""Self-describing checkpoints: one file holds what a model is, what it predicts, and its weights.

File layout (torch.save of plain containers only, so `torch.load(weights_only=True)` reads it
and no code from the file is ever executed):

    {"format": "lmc-checkpoint", "format_version": 1,
     "spec": CheckpointSpec as a dict (architecture, config, organelles, input normalisation, ...),
     "weights_dtype": "float32" | "float16",
     "state_dict": {name: tensor}}

Loading is strict: every key present, no extra keys, every shape equal, every value finite.
Anything else raises CheckpointError with the file name and what is wrong, never a partial load.
fp16 files are restored into the fp32 model, so they run exactly like the fp16-rounded weights.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models.architectures import ARCHITECTURES, build_model, config_to_dict, make_config
from models.calibration import canonical_params, check_params
from preprocessing.atomic_write import atomic_target
from preprocessing.ome_io import MODALITIES, ORGANELLES

FORMAT = "lmc-checkpoint"
FORMAT_VERSION = 1
INPUT_NORM_KINDS = ("percentile",)


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and what is wrong."""


@dataclass
class CheckpointSpec:
    arch: str                          # key of ARCHITECTURES
    config: dict                       # dataclasses.asdict of the model config
    organelles: tuple[str, ...]        # output channel order (names from ORGANELLES)
    modalities: tuple[str, ...]        # TL modalities it was trained on
    input_norm: dict                   # {"kind": "percentile", "low": 2.0, "high": 99.8}: p_low -> -1, p_high -> +1, no clipping
    output_range: tuple[float, float] = (-1.0, 1.0)   # model output range; mapped linearly to [0, 1] fluorescence
    pixel_size_um: float | None = None  # pixel size of its training data; None = no resampling
    window: int = 256                  # preferred inference window at the model's pixel size
    size_divisor: int = 4              # H, W fed to the model must be multiples of this
    note: str = ""                     # what it was trained on, or plainly that it is untrained
    # organelle -> {"floor_quantile", "floor_fraction", "gamma"} or {"quantile_levels",
    # "reference_quantiles"} fitted by training.calibrate (models/calibration.py);
    # organelles not listed are written as the model predicts them.
    output_calibration: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.organelles = tuple(self.organelles)
        self.modalities = tuple(self.modalities)
        self.output_range = tuple(float(v) for v in self.output_range)  # type: ignore[assignment]
        # One canonical form (tuples as lists, every field present) so a spec equals itself after
        # a save/load trip, and a file written before a config field existed reads with its default.
        try:
            self.config = config_to_dict(make_config(self.arch, self.config))
        except (TypeError, ValueError):
            self.config = config_to_dict(self.config)   # validate() names what is wrong
        if isinstance(self.output_calibration, dict):
            self.output_calibration = {o: canonical_params(p) for o, p in self.output_calibration.items()}

    def validate(self) -> None:
        """Raise ValueError naming the first field that makes no sense."""
        config = make_config(self.arch, self.config)        # unknown arch / fields raise here
        if not self.organelles or len(set(self.organelles)) != len(self.organelles):
            raise ValueError(f"organelles must be a non-empty list without repeats: {self.organelles}")
        bad = [o for o in self.organelles if o not in ORGANELLES]
        if bad:
            raise ValueError(f"unknown organelles {bad}; expected names from {ORGANELLES}")
        if len(self.organelles) != config.out_channels:
            raise ValueError(f"{len(self.organelles)} organelles {self.organelles} but the model "
                             f"has {config.out_channels} output channels")
        bad = [m for m in self.modalities if m not in MODALITIES]
        if bad:
            raise ValueError(f"unknown modalities {bad}; expected names from {MODALITIES}")
        norm = self.input_norm
        if not isinstance(norm, dict) or norm.get("kind") not in INPUT_NORM_KINDS:
            raise ValueError(f"input_norm must be a dict with kind in {INPUT_NORM_KINDS}: {norm}")
        if not 0.0 <= float(norm.get("low", -1)) < float(norm.get("high", -1)) <= 100.0:
            raise ValueError(f"input_norm percentiles need 0 <= low < high <= 100: {norm}")
        if len(self.output_range) != 2 or not self.output_range[0] < self.output_range[1]:
            raise ValueError(f"output_range must be (low, high) with low < high: {self.output_range}")
        if self.pixel_size_um is not None and not float(self.pixel_size_um) > 0:
            raise ValueError(f"pixel_size_um must be positive or None: {self.pixel_size_um}")
        if self.size_divisor < 1 or self.size_divisor % config.size_divisor:
            raise ValueError(f"size_divisor {self.size_divisor} is not a multiple of the model's "
                             f"{config.size_divisor}")
        if not isinstance(self.output_calibration, dict):
            raise ValueError(f"output_calibration must be a dict: {self.output_calibration}")
        for organelle, params in self.output_calibration.items():
            if organelle not in self.organelles:
                raise ValueError(f"output_calibration names {organelle!r}, which this model does "
                                 f"not predict ({self.organelles})")
            check_params(organelle, params)
        if self.window < self.size_divisor or self.window % self.size_divisor:
            raise ValueError(f"window {self.window} is not a positive multiple of size_divisor "
                             f"{self.size_divisor}")

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckpointSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        if not isinstance(data, dict):
            raise ValueError(f"spec must be a dict, got {type(data).__name__}")
        missing, unknown = sorted(required - set(data)), sorted(set(data) - names)
        if missing or unknown:
            raise ValueError(f"spec has missing fields {missing} / unknown fields {unknown}")
        return cls(**data)

    def channel(self, organelle: str) -> int:
        """Output channel that holds `organelle`."""
        return self.organelles.index(organelle)


@dataclass
class LoadedCheckpoint:
    name: str
    path: Path
    sha256: str
    spec: CheckpointSpec
    model: nn.Module = field(repr=False)   # in eval mode


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_checkpoint(path: str | os.PathLike, model: nn.Module, spec: CheckpointSpec, *,
                    half: bool = False) -> str:
    """Write model + spec atomically to `path`; returns the file's sha256.

    The spec must describe this very model (same architecture and config) so the file can rebuild
    it; `half` stores floating tensors as fp16 (half the size; the loader restores fp32).
    """
    path = Path(path)
    spec.validate()
    model_cls = ARCHITECTURES[spec.arch][0]
    if type(model) is not model_cls:
        raise ValueError(f"spec says {spec.arch!r} ({model_cls.__name__}) but the model is "
                         f"{type(model).__name__}")
    if config_to_dict(model.config) != config_to_dict(spec.config):
        raise ValueError("spec.config differs from the model's config; use "
                         "dataclasses.asdict(model.config)")
    state = {}
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu()
        if half and tensor.is_floating_point():
            if tensor.abs().max() > torch.finfo(torch.float16).max:
                raise ValueError(f"{key} has values beyond the fp16 range; save with half=False")
            tensor = tensor.half()
        state[key] = tensor.clone()
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "spec": spec.to_dict(),
               "weights_dtype": "float16" if half else "float32", "state_dict": state}
    # A file object, not the path: torch names the zip's inner folder after a path (here the
    # random temporary name), which would make identical checkpoints differ byte for byte.
    with atomic_target(path) as tmp, open(tmp, "wb") as f:   # readers never see half a checkpoint
        torch.save(payload, f)
    return sha256_file(path)


def _read_payload(path: Path, map_location: Any, mmap: bool = False) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except Exception as err:   # torch raises several types for truncated/garbage files
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt file?): "
                              f"{type(err).__name__}: {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an {FORMAT} file (no format marker); was it saved "
                              "with models.registry.save_checkpoint?")
    if payload.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format_version {payload.get('format_version')!r} is not "
                              f"supported (this code reads {FORMAT_VERSION})")
    for key in ("spec", "state_dict"):
        if not isinstance(payload.get(key), dict):
            raise CheckpointError(f"{path}: {key!r} is missing or not a dict")
    return payload


def _parse_spec(path: Path, raw: dict[str, Any]) -> CheckpointSpec:
    try:
        spec = CheckpointSpec.from_dict(raw)
        spec.validate()
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: invalid spec: {err}") from err
    return spec


def read_spec(path: str | os.PathLike) -> CheckpointSpec:
    """The spec alone, without materialising the weights (memory-mapped read)."""
    path = Path(path)
    return _parse_spec(path, _read_payload(path, "cpu", mmap=True)["spec"])


def _check_state(path: Path, model: nn.Module, state: dict[str, Any]) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not match the {type(model).__name__} its spec "
                              f"describes: {len(missing)} missing keys {missing[:5]}, "
                              f"{len(unexpected)} unexpected keys {unexpected[:5]}")
    for key, want in expected.items():
        got = state[key]
        if not isinstance(got, torch.Tensor):
            raise CheckpointError(f"{path}: {key} is a {type(got).__name__}, not a tensor")
        if got.shape != want.shape:
            raise CheckpointError(f"{path}: {key} has shape {tuple(got.shape)}, the model "
                                  f"needs {tuple(want.shape)}")
        if got.is_floating_point() and not torch.isfinite(got).all():
            raise CheckpointError(f"{path}: {key} contains NaN or infinite values")


def load_checkpoint(path: str | os.PathLike, *, name: str | None = None,
                    map_location: Any = "cpu") -> LoadedCheckpoint:
    """Rebuild the model a checkpoint describes and load its weights strictly; eval mode."""
    path = Path(path)
    payload = _read_payload(path, map_location)
    spec = _parse_spec(path, payload["spec"])
    model = build_model(spec.arch, spec.config)
    state = payload["state_dict"]
    _check_state(path, model, state)
    model.load_state_dict(state, strict=True)   # copy_ casts fp16 weights back into fp32
    model.to(map_location if isinstance(map_location, (str, torch.device)) else "cpu")
    model.eval()
    return LoadedCheckpoint(name=name or path.stem, path=path,
                            sha256=sha256_file(path), spec=spec, model=model)
