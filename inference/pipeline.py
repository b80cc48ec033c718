"""One TL image in, four organelle predictions in [0, 1] out.

Per image: pick the modality (metadata, else the manifest's fallback), ask the manifest which
checkpoints serve each organelle, and run every needed checkpoint ONCE for all the organelles it
covers (a multi-decoder pix2pix predicts all four in one pass). Per checkpoint: normalise as it
declares, resample to its pixel size, slide windows x TTA over the image, resample back to exactly
H x W, map its output range to [0, 1] and apply the per-organelle output calibration fitted on
validation data (models/calibration.py). Routes that list several checkpoints are averaged.
"""
from __future__ import annotations

import json
import logging
import time
import weakref
from dataclasses import dataclass, field

import numpy as np
import torch

from models.calibration import calibrate
from preprocessing.normalization import normalise
from preprocessing.ome_io import ORGANELLES, OmeImage
from preprocessing.pixel_grid import grid_warnings
from preprocessing.resampling import to_model_grid, to_shape

from .settings import InferenceSettings
from .sliding_window import sliding_window_predict, sliding_window_views

__all__ = ["InferenceSettings", "Prediction", "predict_image", "route_average", "run_checkpoint", "run_checkpoint_views"]
log = logging.getLogger(__name__)
# Challenge images are 512-2048 px a side; far smaller ones are worth a word in the log.
_SMALL_SIDE = 64

# Models already switched to channels-last (done once per model, not per image).
_CHANNELS_LAST: weakref.WeakSet[torch.nn.Module] = weakref.WeakSet()


@dataclass
class Prediction:
    organelles: dict[str, np.ndarray]      # organelle -> float32 H x W in [0, 1]
    models_used: list[str]                 # checkpoint names, in the order they ran
    modality: str                          # the modality the routes were chosen for
    fallback: bool                         # True when the image's own modality was missing/unknown
    seconds: float
    warnings: list[str] = field(default_factory=list)   # odd but survivable input, for the log
    # organelle -> float32 H x W: the per-pixel standard deviation over the views (TTA transforms x
    # ensemble members), each post-processed as a prediction on its own; None unless asked for.
    spread: dict[str, np.ndarray] | None = None


def predict_image(image: OmeImage, manifest, store, settings: InferenceSettings | None = None,
                  organelles: tuple[str, ...] = ORGANELLES, spread: bool = False) -> Prediction:
    """Finite [0, 1] predictions of the image's H x W, one per organelle (all four by default; the
    container always needs four). `manifest`/`store`: models.registry. Only the checkpoints that the
    wanted organelles' routes name are run. `spread`: also the per-pixel spread over the views
    (Prediction.spread); the predictions are the same numbers either way."""
    settings = settings or InferenceSettings()
    unknown = [o for o in organelles if o not in ORGANELLES]
    if unknown or not organelles:
        raise ValueError(f"organelles must be a non-empty subset of {ORGANELLES}, got {organelles}")
    start = time.perf_counter()
    modality, fallback = manifest.effective_modality(image.modality)
    warnings = _input_warnings(image)
    if fallback:
        warnings.append(f"modality {image.modality!r} missing or unknown; using the manifest's "
                        f"fallback {modality}")
        log.info("%s: %s", image.path, warnings[-1])
    routes = {organelle: list(manifest.resolve(modality, organelle)) for organelle in organelles}
    for organelle, names in routes.items():
        if not names:
            raise ValueError(f"manifest has no checkpoint for {modality}/{organelle}")
    needed = list(dict.fromkeys(name for names in routes.values() for name in names))

    sums = {organelle: np.zeros(image.shape, dtype=np.float32) for organelle in organelles}
    views: dict[str, list[np.ndarray]] = {organelle: [] for organelle in organelles}
    prepared: dict[tuple, torch.Tensor] = {}  # inputs shared by checkpoints with the same norm/pixel size
    for name in needed:
        checkpoint = store.get(name)
        wanted = [o for o, names in routes.items() if name in names]
        missing = [o for o in wanted if o not in checkpoint.spec.organelles]
        if missing:
            raise ValueError(f"checkpoint {name} is routed to {missing} but predicts only "
                             f"{list(checkpoint.spec.organelles)}")
        for note in grid_warnings(image.shape, image.pixel_size_um, checkpoint.spec.pixel_size_um):
            if note not in warnings:  # checkpoints sharing a pixel size say it once
                warnings.append(note)
        channels, checkpoint_views = _run_checkpoint(checkpoint, image, settings, prepared, keep_views=spread)
        for organelle in wanted:
            sums[organelle] += channels[checkpoint.spec.organelles.index(organelle)]
            if spread:
                views[organelle].extend(checkpoint_views[:, checkpoint.spec.organelles.index(organelle)])
    outputs = {o: route_average(sums[o], len(routes[o])) for o in organelles}
    spreads = {o: np.std(np.stack(views[o]), axis=0).astype(np.float32) for o in organelles} if spread else None
    if spread and all(len(v) == 1 for v in views.values()):
        warnings.append("one view per organelle (no TTA, no ensemble): the spread maps are zero; use --tta rot4 or d4")
    return Prediction(outputs, needed, modality, fallback, time.perf_counter() - start, warnings, spreads)


def run_checkpoint(checkpoint, image: OmeImage, settings: InferenceSettings,
                   prepared: dict | None = None) -> np.ndarray:
    """All output channels of one checkpoint for one image: float32 C x H x W in [0, 1]."""
    return _run_checkpoint(checkpoint, image, settings, prepared, keep_views=False)[0]


def run_checkpoint_views(checkpoint, image: OmeImage, settings: InferenceSettings,
                         prepared: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """As run_checkpoint (the same numbers), plus each TTA view post-processed as a prediction
    on its own: V x C x H x W."""
    return _run_checkpoint(checkpoint, image, settings, prepared, keep_views=True)


@torch.inference_mode()   # its outputs are inference tensors, post-processed here in place
def _run_checkpoint(checkpoint, image: OmeImage, settings: InferenceSettings, prepared: dict | None,
                    keep_views: bool) -> tuple[np.ndarray, np.ndarray | None]:
    spec, model = checkpoint.spec, checkpoint.model
    device = _model_device(model, settings)
    margin = context_margin(image, spec.pixel_size_um, settings.context)
    key = (json.dumps(spec.input_norm, sort_keys=True), spec.pixel_size_um, margin)
    prepared = {} if prepared is None else prepared
    if key not in prepared:
        normalised, _ = normalise(image.array, spec.input_norm)   # statistics of the image alone
        if margin:
            normalised = np.pad(normalised, margin, mode="reflect")
        prepared[key] = torch.from_numpy(np.ascontiguousarray(
            to_model_grid(normalised, image.pixel_size_um, spec.pixel_size_um)))[None, None]
    x = prepared[key]
    in_channels = int(spec.config.get("in_channels", 1)) if isinstance(spec.config, dict) else 1
    if in_channels > 1:  # a model fed TL in several channels gets the one channel repeated
        x = x.expand(1, in_channels, *x.shape[-2:])
    amp = settings.amp and device.type == "cuda"
    if amp and model not in _CHANNELS_LAST:
        model.to(memory_format=torch.channels_last)
        _CHANNELS_LAST.add(model)
    model.eval()
    y, views = _predict_bounded(model, x, settings, device, spec, amp, keep_views)
    y = _to_output(y[0], image, spec, margin)
    if views is not None:
        views = np.stack([_to_output(view, image, spec, margin) for view in views])
    return y, views


def context_margin(image: OmeImage, model_pixel_um: float | None, context: int) -> int:
    """`context` model pixels as input pixels (reflect padding needs fewer than the image's side)."""
    if context <= 0:
        return 0
    factor = 1.0 if image.pixel_size_um is None or model_pixel_um is None else \
        model_pixel_um / float(np.sqrt(image.pixel_size_um[0] * image.pixel_size_um[1]))
    return int(min(np.ceil(context * factor), min(image.shape) - 1))


def _to_output(y: torch.Tensor, image: OmeImage, spec, margin: int = 0) -> np.ndarray:
    """A model-grid C x h x w prediction -> float32 C x H x W in [0, 1], range-mapped and calibrated
    (the context margin cropped off first, so the calibration sees the image alone)."""
    if margin:
        padded = (image.shape[0] + 2 * margin, image.shape[1] + 2 * margin)
        y = to_shape(y, padded)[:, margin:margin + image.shape[0], margin:margin + image.shape[1]].contiguous()
    y = to_shape(y, image.shape)
    low, high = (float(v) for v in spec.output_range)
    # In place: for a 4096² image each C x H x W temporary would cost another 256 MB.
    y = y.sub_(low).div_(high - low)
    y = torch.nan_to_num_(y, nan=0.0, posinf=1.0, neginf=0.0).clamp_(0.0, 1.0).numpy()
    for organelle, params in spec.output_calibration.items():
        channel = spec.channel(organelle)
        y[channel] = calibrate(y[channel], params)
    return y


def _predict_bounded(model, x, settings, device, spec, amp, keep_views=False):
    """Sliding window (with its views when asked: sliding_window_views); on CUDA out-of-memory
    retry with half the batch (a T4 shares 16 GB)."""
    batch = settings.batch_size
    while True:
        try:
            run = sliding_window_views if keep_views else sliding_window_predict
            result = run(x, model, window=settings.window or spec.window, overlap=settings.overlap,
                         blend=settings.blend, batch_size=batch, size_divisor=spec.size_divisor, tta=settings.tta,
                         device=device, amp=amp, channels_last=amp)
            return result if keep_views else (result, None)
        except torch.cuda.OutOfMemoryError:
            if batch == 1:
                raise
            batch //= 2
            torch.cuda.empty_cache()
            log.warning("CUDA out of memory; retrying with batch size %d", batch)


def _model_device(model: torch.nn.Module, settings: InferenceSettings) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    return settings.torch_device()


def route_average(total: np.ndarray, members: int) -> np.ndarray:
    """A route's prediction from the sum of its members' float32 outputs, in member order: the
    mean, finite and in [0, 1] (in place). The one averaging rule, for inference and for
    training.compare_routes, which scores routes before they are shipped."""
    return _finite01(np.divide(total, members, out=total))


def _finite01(array: np.ndarray) -> np.ndarray:
    """NaN/inf (e.g. an fp16 overflow) must never reach a uint16 file: replace, then clip (in place)."""
    array = np.nan_to_num(array.astype(np.float32, copy=False), copy=False, nan=0.0, posinf=1.0, neginf=0.0)
    return np.clip(array, 0.0, 1.0, out=array)


def _input_warnings(image: OmeImage) -> list[str]:
    notes = []
    array = image.array
    if array.size and float(array.min()) == float(array.max()):
        notes.append(f"constant image (every pixel {float(array.min()):g}): predictions carry no structure")
    if min(image.shape) < _SMALL_SIDE:
        notes.append(f"small image {image.shape[0]}x{image.shape[1]}: reflect-padded to the model's size")
    if image.pixel_size_um is None:
        notes.append("no physical pixel size in the metadata: used at the model's scale unresampled")
    return notes
