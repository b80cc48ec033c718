"""Batches for partial-label training: organelles drawn evenly, whatever their frequency.

In the real set nucleus has ground truth in ~2,500 FOVs and actin in 27; drawing FOVs uniformly
would show actin's decoder almost nothing. Instead every batch slot is first given an organelle
(cycling through the organelles, so over any run the counts differ by at most one), then a FOV
that has that organelle's GT, then a random z-slice of it, a random crop, a random flip and
90-degree rotation, and optionally a crop-and-resize scale jitter. The sample carries ALL the GT
its FOV has (the mask says which), so the other decoders learn from it too.

All randomness of batch number n comes from a numpy Generator seeded with (seed, n), so the
number of the next batch (saved in every training checkpoint) fixes the rest of the run exactly,
whichever process makes the batches (loader.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from preprocessing.layout import FieldOfView
from preprocessing.ome_io import ORGANELLES
from preprocessing.resampling import resize

from .dataset import ImageSource


@dataclass
class SamplerConfig:
    batch_size: int = 8
    crop: int = 256                                   # side of a training crop, model pixels
    organelles: tuple[str, ...] = ORGANELLES          # output channel order
    flips: bool = True
    rot90: bool = True
    # Crop-and-resize as in seed paper 000: a square of fraction f ~ U(lo, hi) of a source window
    # is resized to `crop`. The source window is crop / sqrt(lo * hi) wide, so the scale change is
    # centred on 1 (0.86x to 1.17x for 70-95%): inference runs at the model's pixel size, unscaled.
    scale_jitter: tuple[float, float] | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.crop < 1:
            raise ValueError(f"batch_size and crop must be positive, got {self.batch_size}, {self.crop}")
        unknown = set(self.organelles) - set(ORGANELLES)
        if unknown or not self.organelles:
            raise ValueError(f"organelles must be a non-empty subset of {ORGANELLES}, got {self.organelles}")
        if self.scale_jitter is not None:
            lo, hi = self.scale_jitter
            if not 0 < lo <= hi <= 1:
                raise ValueError(f"scale_jitter must satisfy 0 < lo <= hi <= 1, got {self.scale_jitter}")


@dataclass
class Batch:
    """One batch; inputs and targets in the images' dtype (float16 from a training store, so
    half the bytes cross from a DataLoader worker and to the GPU; float32 from the direct reader
    or after a scale-jitter resize). `to(device)` gives float32 on the device."""

    inputs: torch.Tensor      # [B, 1, H, W] normalised TL
    targets: torch.Tensor     # [B, K, H, W] normalised GT, 0 where there is none
    mask: torch.Tensor        # [B, K] bool: GT exists for (sample, organelle)
    sampled: torch.Tensor     # [B] long: the organelle index each sample was drawn for

    def to(self, device: torch.device | str) -> Batch:
        """float32 on `device` (converted there); the copies overlap compute when the batch is in
        pinned memory (CUDA)."""
        inputs, targets, mask, sampled = (t.to(device, non_blocking=True) for t in self._tensors())
        return Batch(inputs.float(), targets.float(), mask, sampled)

    def pin_memory(self) -> Batch:
        """Page-locked copy (the DataLoader's pin-memory thread calls this on CUDA runs)."""
        return Batch(*(t.pin_memory() for t in self._tensors()))

    def _tensors(self) -> tuple[torch.Tensor, ...]:
        return self.inputs, self.targets, self.mask, self.sampled


class BalancedSampler:
    """Endless stream of balanced, augmented batches from a list of FOVs.

    Batch number n of the stream is a pure function of (seed, n): its own random generator is
    seeded with both, and its organelle cycle starts at n x batch_size. So any process can make
    any batch, which is what lets DataLoader workers (loader.py) and torchrun ranks share one
    stream: rank r of W takes batches r, r + W, r + 2W, ... (`start`, `stride`), and the state to
    resume from is the number of the next batch.

    `images` gives (TL, {organelle: GT}) arrays of a (FOV, z): an ImageCache (decoded on demand)
    or a training store's memory maps (store.StoreImages). Only each crop's region is read.
    """

    def __init__(self, fovs: list[FieldOfView], images: ImageSource, config: SamplerConfig,
                 *, start: int = 0, stride: int = 1):
        if start < 0 or stride < 1:
            raise ValueError(f"start must be >= 0 and stride >= 1, got {start}, {stride}")
        self.config = config
        self.images = images
        self.by_organelle: dict[int, list[FieldOfView]] = {}
        for k, organelle in enumerate(config.organelles):
            members = [fov for fov in fovs if organelle in fov.ground_truth and fov.slices]
            if members:
                self.by_organelle[k] = members
        if not self.by_organelle:
            raise ValueError(f"no field of view has ground truth for any of {config.organelles}")
        self.active = sorted(self.by_organelle)     # organelles with data, in channel order
        self.next_index = start                      # number of the next batch this stream gives
        self.stride = stride

    # -- state, for bit-for-bit resume
    def state_dict(self) -> dict:
        return {"next_index": self.next_index}

    def load_state_dict(self, state: dict) -> None:
        if "next_index" not in state:
            raise ValueError("sampler state of an older trainer (one random stream, not numbered batches) "
                             "cannot be resumed; start a new run from it with --init-from")
        self.next_index = int(state["next_index"])

    # -- sampling
    def next_batch(self) -> Batch:
        batch = self.batch(self.next_index)
        self.next_index += self.stride
        return batch

    def batch(self, index: int) -> Batch:
        """Batch number `index` of the stream (the same in every process)."""
        cfg = self.config
        rng = np.random.default_rng([cfg.seed, index])
        k_all = len(cfg.organelles)
        inputs = targets = None                     # allocated in the dtype of the first crop
        mask = np.zeros((cfg.batch_size, k_all), bool)
        sampled = np.empty(cfg.batch_size, np.int64)
        for i in range(cfg.batch_size):
            k = self.active[(index * cfg.batch_size + i) % len(self.active)]
            members = self.by_organelle[k]
            fov = members[rng.integers(len(members))]
            zs = sorted(fov.slices)
            tl, gts = self.images.pair(fov, zs[rng.integers(len(zs))])
            channels = [k2 for k2, o in enumerate(cfg.organelles) if o in gts]
            stack = self._augment(rng, [tl] + [gts[cfg.organelles[c]] for c in channels])
            if inputs is None:
                dtype = np.float32 if cfg.scale_jitter is not None else stack.dtype
                inputs = np.empty((cfg.batch_size, 1, cfg.crop, cfg.crop), dtype)
                targets = np.zeros((cfg.batch_size, k_all, cfg.crop, cfg.crop), dtype)
            inputs[i, 0] = stack[0]
            targets[i, channels] = stack[1:]
            mask[i, channels] = True
            sampled[i] = k
        return Batch(torch.from_numpy(inputs), torch.from_numpy(targets),
                     torch.from_numpy(mask), torch.from_numpy(sampled))

    def _augment(self, rng: np.random.Generator, images: list[np.ndarray]) -> np.ndarray:
        """Random (jittered) square crop, rotation and flip of same-shape H x W images, the same
        for all: a [C, crop, crop] view in the images' dtype (float32 when resized). Only the
        crop's region of each image is read."""
        cfg = self.config
        side = cfg.crop
        if cfg.scale_jitter is not None:
            lo, hi = cfg.scale_jitter
            side = max(1, round(cfg.crop * rng.uniform(lo, hi) / math.sqrt(lo * hi)))
        height, width = images[0].shape
        # Positions are drawn on the mirror-padded size, as if the image had been padded.
        y = int(rng.integers(max(height, side) - side + 1))
        x = int(rng.integers(max(width, side) - side + 1))
        crop = np.stack([_crop(image, y, x, side) for image in images])
        if side != cfg.crop:
            crop = resize(crop, (cfg.crop, cfg.crop))
        if cfg.rot90:
            crop = np.rot90(crop, int(rng.integers(4)), axes=(1, 2))
        if cfg.flips and rng.random() < 0.5:
            crop = crop[:, :, ::-1]
        return crop


def _crop(image: np.ndarray, y: int, x: int, side: int) -> np.ndarray:
    """The side x side window at (y, x) of the image mirror-padded to at least side x side."""
    if image.shape[0] < side or image.shape[1] < side:
        image = _pad_to(np.asarray(image)[None], side)[0]   # small images are read whole
    return image[y:y + side, x:x + side]


def _pad_to(stack: np.ndarray, side: int) -> np.ndarray:
    """Mirror-pad a [C, H, W] stack so both H and W are at least `side` (small images still crop)."""
    pad_y, pad_x = max(0, side - stack.shape[1]), max(0, side - stack.shape[2])
    if not pad_y and not pad_x:
        return stack
    return np.pad(stack, ((0, 0), (pad_y // 2, pad_y - pad_y // 2), (pad_x // 2, pad_x - pad_x // 2)),
                  mode="symmetric")
