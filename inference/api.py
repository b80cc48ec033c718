"""A Python API for people who just want predictions: an array (or a file) in, four organelle
arrays out. It reuses the container's pipeline (inference/pipeline.predict_image) so the results
are the ones process.py would write, before the uint16 conversion."""
from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np

from inference.inputs import checked_modality, checked_pixel_size, finite_float32, load_input, override_metadata
from inference.pipeline import predict_image
from inference.settings import InferenceSettings
from preprocessing.ome_io import OmeImage
from preprocessing.planes import reduce_to_plane

DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
log = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _models(weights: str, device: str, backend: str = "torch"):
    # Loading checkpoints costs seconds; a notebook calling predict() in a loop pays it once per
    # (weights folder, device, backend).
    import torch

    from inference.allocator import keep_freed_memory
    from models.registry import Manifest, ModelStore
    keep_freed_memory()     # as process.py: window buffers reused, not re-faulted per batch
    manifest = Manifest.load(Path(weights) / "manifest.json")
    store = ModelStore(manifest, device=torch.device(device))
    if backend == "onnx":
        from inference.onnx_backend import OnnxModelStore, default_cache
        store = OnnxModelStore(store, cache=default_cache())
    return manifest, store


def _settings(tta: str, device: str | None) -> InferenceSettings:
    return InferenceSettings(tta=tta, device=device)


def _run(image: OmeImage, weights, tta: str, device, uncertainty: bool, backend: str = "torch"):
    if backend not in ("torch", "onnx"):
        raise ValueError(f"backend must be 'torch' or 'onnx', got {backend!r}")
    settings = _settings(tta, device)
    manifest, store = _models(str(Path(weights or DEFAULT_WEIGHTS).resolve()),
                              str(settings.torch_device()), backend)
    prediction = predict_image(image, manifest, store, settings, spread=uncertainty)
    if uncertainty:
        for note in prediction.warnings:
            if "spread" in note:
                log.warning("%s: %s", image.path.name, note)
        return prediction.organelles, prediction.spread
    return prediction.organelles


def predict(array, modality: str = "BF", pixel_size_um: float | None = None, *, weights=None,
            tta: str = "rot4", device: str | None = None, uncertainty: bool = False, backend: str = "torch"):
    """Organelle name -> float32 array in [0, 1] of `array`'s shape (2D grey, or H x W x 3 RGB,
    which is averaged). `pixel_size_um=None` predicts unresampled. `uncertainty=True` returns
    (predictions, spreads): the spreads are per-pixel standard deviations over the TTA views and
    ensemble members (zero with tta="none" and one model), the predictions unchanged.
    `backend="onnx"`: the generators under ONNX Runtime on the CPU (inference/onnx_backend.py)."""
    array = np.asarray(array)
    colour = array.ndim == 3 and array.shape[-1] in (3, 4)
    if array.ndim != 2 and not colour:
        raise ValueError(f"expected a 2D (or H x W x 3) array, got shape {array.shape}")
    # The file reader's rules: colour averaged (alpha dropped), NaN/inf set to the median.
    plane, actions = reduce_to_plane(array, "YXS" if colour else "YX", alpha_samples=int(array.shape[-1] == 4
                                                                                         and colour))
    plane = finite_float32(plane, actions)
    for note in actions:
        log.warning("<array>: %s", note)
    pixel = None if pixel_size_um is None else checked_pixel_size(pixel_size_um, "pixel_size_um")
    image = OmeImage(Path("<array>"), plane, checked_modality(modality, "unknown modality"),
                     None if pixel is None else (pixel, pixel), None, array.dtype)
    return _run(image, weights, tta, device, uncertainty, backend)


def predict_file(path, modality: str | None = None, pixel_size_um: float | None = None, *,
                 plane: int | None = None, weights=None, tta: str = "rot4",
                 device: str | None = None, uncertainty: bool = False, backend: str = "torch"):
    """As predict(), for a TIFF/OME-TIFF (or PNG, JPEG, ...) file; `modality`/`pixel_size_um`
    override its metadata; `plane` picks a stack's plane instead of the middle one."""
    image, notes = load_input(path, plane)
    for note in notes:          # e.g. a stack reduced to its middle plane
        log.warning("%s", note)
    override_metadata(image,
                      None if modality is None else checked_modality(modality, "unknown modality"),
                      None if pixel_size_um is None else checked_pixel_size(pixel_size_um, "pixel_size_um"))
    return _run(image, weights, tta, device, uncertainty, backend)
