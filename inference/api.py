"""A Python API for people who just want predictions: an array (or a file) in, four organelle
arrays out. It reuses the container's pipeline (inference/pipeline.predict_image) so the results
are the ones process.py would write, before the uint16 conversion."""
from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np

from inference.inputs import load_input
from inference.pipeline import predict_image
from inference.settings import InferenceSettings
from preprocessing.ome_io import OmeImage, normalise_modality

DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
log = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _models(weights: str, device: str):
    # Loading checkpoints costs seconds; a notebook calling predict() in a loop pays it once per
    # (weights folder, device).
    import torch

    from inference.allocator import keep_freed_memory
    from models.registry import Manifest, ModelStore
    keep_freed_memory()     # as process.py: window buffers reused, not re-faulted per batch
    manifest = Manifest.load(Path(weights) / "manifest.json")
    return manifest, ModelStore(manifest, device=torch.device(device))


def _settings(tta: str, device: str | None) -> InferenceSettings:
    return InferenceSettings(tta=tta, device=device)


def _run(image: OmeImage, weights, tta: str, device) -> dict[str, np.ndarray]:
    settings = _settings(tta, device)
    manifest, store = _models(str(Path(weights or DEFAULT_WEIGHTS).resolve()),
                              str(settings.torch_device()))
    return predict_image(image, manifest, store, settings).organelles


def _pixel_size(pixel_size_um):
    if pixel_size_um is None:
        return None
    value = float(pixel_size_um)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"pixel_size_um must be finite and > 0, got {pixel_size_um!r}")
    return (value, value)


def _modality(name: str) -> str:
    """An explicit modality must be understood: a typo must not silently become bright field."""
    modality = normalise_modality(name)
    if modality is None:
        raise ValueError(f"unknown modality {name!r}; expected bright field, phase contrast or DIC "
                         "(e.g. 'BF', 'PC', 'DIC')")
    return modality


def predict(array, modality: str = "BF", pixel_size_um: float | None = None, *, weights=None,
            tta: str = "rot4", device: str | None = None) -> dict[str, np.ndarray]:
    """Organelle name -> float32 array in [0, 1] of `array`'s shape (2D grey, or H x W x 3 RGB,
    which is averaged). `pixel_size_um=None` predicts unresampled."""
    plane = np.asarray(array, dtype=np.float32)
    if plane.ndim == 3 and plane.shape[-1] in (3, 4):
        plane = plane[..., :3].mean(axis=-1)
    if plane.ndim != 2:
        raise ValueError(f"expected a 2D (or H x W x 3) array, got shape {plane.shape}")
    finite = np.isfinite(plane)
    if not finite.all():    # NaN/inf pixels get the median, as inference/inputs.py does for files
        plane = np.where(finite, plane, np.median(plane[finite]) if finite.any() else 0.0).astype(np.float32)
    image = OmeImage(Path("<array>"), plane, _modality(modality), _pixel_size(pixel_size_um),
                     None, np.dtype(np.float32))
    return _run(image, weights, tta, device)


def predict_file(path, modality: str | None = None, pixel_size_um: float | None = None, *,
                 weights=None, tta: str = "rot4", device: str | None = None) -> dict[str, np.ndarray]:
    """As predict(), for a TIFF/OME-TIFF file; `modality`/`pixel_size_um` override its metadata."""
    image, notes = load_input(path)
    for note in notes:          # e.g. a stack reduced to its middle plane
        log.warning("%s", note)
    if modality is not None:
        image.modality = _modality(modality)
    if pixel_size_um is not None:
        image.pixel_size_um = _pixel_size(pixel_size_um)
    return _run(image, weights, tta, device)
