"""Sliding-window inference at native resolution with blending and batched test-time augmentation.

The image is never resized: windows of the model's size walk over it with a given overlap, the last
window sits flush with the border, and images smaller than a window are reflect-padded (to the
model's size divisor) and cropped back. Overlapping predictions are blended with an importance map
and divided by the summed weights explicitly:
- "gaussian" (the default): MONAI's map (sigma = 0.125 x window, floored at 1e-3) for every window.
  Along an image border the Gaussian of the axis across the border is far below the floor for
  every window, so all of them get the same floored weight there, and where a second window
  begins a pixel jumps from one window's prediction to the mean of two: a seam along the border.
- "gaussian-border": the same Gaussian toward neighbouring windows, but flat (1) from the window's
  centre toward each image border the window sits flush with, where no neighbour takes over.
  Border pixels then keep the weights of the interior and cross-fade smoothly. It removed every
  seam finding of the development set, but is not the default: the tubulin VQGAN's PCC and SSIM
  read 0.003 lower with it there (README, Measured, "Everything else").
- "constant": equal weights (a plain mean of the overlapping windows).

Windows x augmentations are flattened into one list of forward samples and run `batch_size` at a
time, so memory is bounded by the batch, not by the image; only the output and weight buffers
scale with the image (float32, on the device when they fit, else on the CPU).
"""
from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .geometry import MIN_TILE, tile_geometry, window_starts  # noqa: F401 (re-exported)
from .settings import BLEND_MODES
from .tta import Transform, transforms

SIGMA_SCALE = 0.125
WEIGHT_FLOOR = 1e-3
# Fraction of free GPU memory the output + weight buffers may take before they move to the CPU.
_DEVICE_BUFFER_SHARE = 0.25


def _gaussian_profile(n: int, flush_start: bool = False, flush_end: bool = False) -> torch.Tensor:
    """One axis of the Gaussian map; flat (1) from the centre toward a side flush with the image."""
    x = torch.arange(n, dtype=torch.float32) - (n - 1) / 2.0
    profile = torch.exp(x ** 2 / (-2.0 * (SIGMA_SCALE * n) ** 2))
    if flush_start:
        profile[x < 0] = 1.0
    if flush_end:
        profile[x > 0] = 1.0
    return profile


@functools.lru_cache(maxsize=64)
def _importance_map_cpu(window: tuple[int, int], blend: str,
                        flush: tuple[bool, bool, bool, bool]) -> torch.Tensor:
    if blend == "constant":
        return torch.ones(window)
    if blend not in BLEND_MODES:
        raise ValueError(f"unknown blend mode {blend!r}; expected one of {BLEND_MODES}")
    top, bottom, left, right = flush if blend == "gaussian-border" else (False,) * 4
    weights = _gaussian_profile(window[0], top, bottom)[:, None] * _gaussian_profile(window[1], left, right)[None, :]
    # Window corners must keep a positive weight, or pixels seen only by corners divide by ~0. The
    # floor is the plain Gaussian's (as in MONAI), so the border variant differs only where it is flat.
    floor = max(float(_gaussian_profile(window[0])[0] * _gaussian_profile(window[1])[0]), WEIGHT_FLOOR)
    return weights.clamp_(min=floor)


def importance_map(window: tuple[int, int], blend: str, device: torch.device | str = "cpu",
                   flush: tuple[bool, bool, bool, bool] = (False, False, False, False)) -> torch.Tensor:
    """H x W blending weights of one window (cached per window size, mode and flush pattern).

    `flush` says which sides (top, bottom, left, right) of the window lie on the image border; only
    "gaussian-border" uses it.
    """
    return _importance_map_cpu(tuple(window), blend, tuple(bool(f) for f in flush)).to(device)


def window_flush(y: int, x: int, tile: tuple[int, int], padded: tuple[int, int]) -> tuple[bool, bool, bool, bool]:
    """Which sides (top, bottom, left, right) of the window at (y, x) lie on the padded image's border."""
    return y == 0, y + tile[0] == padded[0], x == 0, x + tile[1] == padded[1]


def reflect_pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """Reflect padding of any size: torch's reflect needs pad < size, so large pads go in rounds.

    A 1-pixel axis has nothing to reflect and is replicated instead.
    """
    while top or bottom or left or right:
        h, w = x.shape[-2:]
        step = [min(left, w - 1), min(right, w - 1), min(top, h - 1), min(bottom, h - 1)]
        if h == 1 or w == 1:
            x = F.pad(x, (left, right, top, bottom), mode="replicate")
            break
        x = F.pad(x, step, mode="reflect")
        left, right, top, bottom = (a - b for a, b in zip((left, right, top, bottom), step))
    return x


@dataclass(frozen=True)
class _Sample:
    y: int
    x: int
    transform: Transform


def _samples(ys: list[int], xs: list[int], augs: tuple[Transform, ...],
             tile: tuple[int, int]) -> Iterator[list[_Sample]]:
    """Windows x augmentations, grouped so every group shares one input shape (odd quarter turns
    of a non-square tile swap H and W); window-major inside a group so a tile is cut once."""
    groups: dict[tuple[int, int], list[Transform]] = {}
    for t in augs:
        groups.setdefault(t.out_shape(*tile), []).append(t)
    for group in groups.values():
        yield [_Sample(y, x, t) for y in ys for x in xs for t in group]


def _buffer_device(compute: torch.device, nbytes: int) -> torch.device:
    if compute.type != "cuda":
        return torch.device("cpu")
    free, _ = torch.cuda.mem_get_info(compute)
    return compute if nbytes < _DEVICE_BUFFER_SHARE * free else torch.device("cpu")


def sliding_window_predict(image: torch.Tensor, predictor: Callable[[torch.Tensor], torch.Tensor],
                           window: int | tuple[int, int], overlap: float = 0.25, blend: str = "gaussian",
                           batch_size: int = 8, size_divisor: int = 1, tta: str = "none", *,
                           device: torch.device | str | None = None, amp: bool = False,
                           amp_dtype: torch.dtype = torch.float16, channels_last: bool = False,
                           buffer_device: torch.device | str | None = None) -> torch.Tensor:
    """Predict a [1, C, H, W] image window by window; returns [1, C_out, H, W] float32 on image.device.

    `predictor` maps [B, C, h, w] -> [B, C_out, h, w] (the same h, w). `device` is where windows are
    run (default: the image's). `amp` turns on autocast (CUDA only; fp32 elsewhere).
    `buffer_device` overrides where the output and weight sums live (default: the compute device when
    they take under a quarter of its free memory, else the CPU).
    """
    return _sliding_window(image, predictor, window, overlap, blend, batch_size, size_divisor, tta, device,
                           amp, amp_dtype, channels_last, buffer_device, keep_views=False)[0]


def sliding_window_views(image: torch.Tensor, predictor: Callable[[torch.Tensor], torch.Tensor],
                         window: int | tuple[int, int], overlap: float = 0.25, blend: str = "gaussian",
                         batch_size: int = 8, size_divisor: int = 1, tta: str = "none", *,
                         device: torch.device | str | None = None, amp: bool = False,
                         amp_dtype: torch.dtype = torch.float16, channels_last: bool = False,
                         buffer_device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """As sliding_window_predict, plus each TTA view blended on its own: ([1, C_out, H, W] mean,
    [V, C_out, H, W] views). The mean is accumulated exactly as sliding_window_predict does (the
    same numbers bit for bit); the views cost V more output buffers, not more forward passes."""
    return _sliding_window(image, predictor, window, overlap, blend, batch_size, size_divisor, tta, device,
                           amp, amp_dtype, channels_last, buffer_device, keep_views=True)


def _sliding_window(image, predictor, window, overlap, blend, batch_size, size_divisor, tta, device, amp,
                    amp_dtype, channels_last, buffer_device, keep_views: bool):
    if image.ndim != 4 or image.shape[0] != 1:
        raise ValueError(f"expected an image of shape [1, C, H, W], got {tuple(image.shape)}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if batch_size < 1 or size_divisor < 1:
        raise ValueError(f"batch_size and size_divisor must be >= 1, got {batch_size}, {size_divisor}")
    win = (window, window) if isinstance(window, int) else tuple(window)
    augs = transforms(tta)
    compute = torch.device(device) if device is not None else image.device
    h, w = image.shape[-2:]
    (th, top, bottom), (tw, left, right) = (tile_geometry(h, win[0], size_divisor),
                                            tile_geometry(w, win[1], size_divisor))

    with torch.inference_mode():
        padded = reflect_pad(image.to(compute, torch.float32), top, bottom, left, right)
        ph, pw = padded.shape[-2:]
        ys, xs = window_starts(ph, th, overlap), window_starts(pw, tw, overlap)
        out = views = None
        maps: dict[tuple[bool, bool, bool, bool], torch.Tensor] = {}

        def weight_map(y: int, x: int) -> torch.Tensor:
            flush = window_flush(y, x, (th, tw), (ph, pw))
            if flush not in maps:
                maps[flush] = importance_map((th, tw), blend, out.device, flush)
            return maps[flush]

        for group in _samples(ys, xs, augs, (th, tw)):
            for first in range(0, len(group), batch_size):
                chunk = group[first:first + batch_size]
                preds = _forward(padded, chunk, (th, tw), predictor, compute, amp, amp_dtype, channels_last)
                if out is None:
                    out_dev = torch.device(buffer_device) if buffer_device is not None else \
                        _buffer_device(compute, 4 * (preds.shape[1] + 1) * ph * pw)
                    out = torch.zeros((preds.shape[1], ph, pw), dtype=torch.float32, device=out_dev)
                    if keep_views:
                        views = torch.zeros((len(augs), *out.shape), dtype=torch.float32, device=out_dev)
                preds = preds.to(out.device)
                for s, pred in zip(chunk, preds):
                    restored, wmap = s.transform.invert(pred), weight_map(s.y, s.x)
                    out[:, s.y:s.y + th, s.x:s.x + tw].addcmul_(restored, wmap)
                    if views is not None:
                        views[augs.index(s.transform), :, s.y:s.y + th, s.x:s.x + tw].addcmul_(restored, wmap)
        # Every window contributed once per augmentation with its own map, so the divisor is known
        # in advance; computing it apart from the predictions keeps the normalisation explicit.
        weights = torch.zeros((ph, pw), dtype=torch.float32, device=out.device)
        for y in ys:
            for x in xs:
                weights[y:y + th, x:x + tw] += weight_map(y, x)
        out /= weights * len(augs)
        crop = (slice(None), slice(None), slice(top, top + h), slice(left, left + w))
        if views is not None:
            views = (views / weights)[crop].to(image.device)
        return out[None][crop].to(image.device), views


def _forward(padded: torch.Tensor, chunk: list[_Sample], tile: tuple[int, int],
             predictor: Callable[[torch.Tensor], torch.Tensor], device: torch.device, amp: bool,
             amp_dtype: torch.dtype, channels_last: bool) -> torch.Tensor:
    th, tw = tile
    batch = torch.cat([s.transform.apply(padded[:, :, s.y:s.y + th, s.x:s.x + tw]) for s in chunk])
    if channels_last:
        batch = batch.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=amp and device.type == "cuda"):
        preds = predictor(batch)
    if preds.ndim != 4 or preds.shape[0] != batch.shape[0] or preds.shape[-2:] != batch.shape[-2:]:
        raise ValueError(f"predictor returned shape {tuple(preds.shape)} for input {tuple(batch.shape)}; "
                         "expected [B, C_out, h, w] with the same B, h, w")
    return preds.float()
