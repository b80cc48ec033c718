"""Batches for partial-label training: organelles drawn evenly, whatever their frequency.

In the real set nucleus has ground truth in ~2,500 FOVs and actin in 27; drawing FOVs uniformly
would show actin's decoder almost nothing. Instead every batch slot is first given an organelle
(cycling through the organelles, so over any run the counts differ by at most one), then a FOV
that has that organelle's GT, then a random z-slice of it, a random crop, a random flip and
90-degree rotation, and optionally a crop-and-resize scale jitter. The sample carries ALL the GT
its FOV has (the mask says which), so the other decoders learn from it too.

All randomness comes from one numpy Generator owned by the sampler, so its state (saved in every
training checkpoint) fixes the rest of the run exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from preprocessing.layout import FieldOfView
from preprocessing.ome_io import ORGANELLES
from preprocessing.resampling import resize

from .dataset import ImageCache


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
    inputs: torch.Tensor      # [B, 1, H, W] normalised TL
    targets: torch.Tensor     # [B, K, H, W] normalised GT, 0 where there is none
    mask: torch.Tensor        # [B, K] bool: GT exists for (sample, organelle)
    sampled: torch.Tensor     # [B] long: the organelle index each sample was drawn for

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(self.inputs.to(device, non_blocking=True), self.targets.to(device, non_blocking=True),
                     self.mask.to(device), self.sampled.to(device))


class BalancedSampler:
    """Endless stream of balanced, augmented batches from a list of FOVs."""

    def __init__(self, fovs: list[FieldOfView], cache: ImageCache, config: SamplerConfig):
        self.config = config
        self.cache = cache
        self.by_organelle: dict[int, list[FieldOfView]] = {}
        for k, organelle in enumerate(config.organelles):
            members = [fov for fov in fovs if organelle in fov.ground_truth and fov.slices]
            if members:
                self.by_organelle[k] = members
        if not self.by_organelle:
            raise ValueError(f"no field of view has ground truth for any of {config.organelles}")
        self.active = sorted(self.by_organelle)     # organelles with data, in channel order
        self.rng = np.random.default_rng(config.seed)
        self.cursor = 0                              # position in the organelle cycle

    # -- state, for bit-for-bit resume
    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "cursor": self.cursor}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.cursor = int(state["cursor"])

    # -- sampling
    def next_batch(self) -> Batch:
        cfg = self.config
        k_all = len(cfg.organelles)
        inputs = np.empty((cfg.batch_size, 1, cfg.crop, cfg.crop), np.float32)
        targets = np.zeros((cfg.batch_size, k_all, cfg.crop, cfg.crop), np.float32)
        mask = np.zeros((cfg.batch_size, k_all), bool)
        sampled = np.empty(cfg.batch_size, np.int64)
        for i in range(cfg.batch_size):
            k = self.active[self.cursor % len(self.active)]
            self.cursor += 1
            members = self.by_organelle[k]
            fov = members[self.rng.integers(len(members))]
            zs = sorted(fov.slices)
            tl, gts = self.cache.pair(fov, zs[self.rng.integers(len(zs))])
            channels = [k2 for k2, o in enumerate(cfg.organelles) if o in gts]
            stack = self._augment(np.stack([tl] + [gts[cfg.organelles[c]] for c in channels]))
            inputs[i, 0] = stack[0]
            targets[i, channels] = stack[1:]
            mask[i, channels] = True
            sampled[i] = k
        return Batch(torch.from_numpy(inputs), torch.from_numpy(targets),
                     torch.from_numpy(mask), torch.from_numpy(sampled))

    def _augment(self, stack: np.ndarray) -> np.ndarray:
        """Random (jittered) square crop, rotation and flip of a [C, H, W] stack, same for all C."""
        cfg = self.config
        side = cfg.crop
        if cfg.scale_jitter is not None:
            lo, hi = cfg.scale_jitter
            side = max(1, round(cfg.crop * self.rng.uniform(lo, hi) / math.sqrt(lo * hi)))
        stack = _pad_to(stack, side)
        y = int(self.rng.integers(stack.shape[1] - side + 1))
        x = int(self.rng.integers(stack.shape[2] - side + 1))
        crop = stack[:, y:y + side, x:x + side]
        if side != cfg.crop:
            crop = resize(crop, (cfg.crop, cfg.crop))
        if cfg.rot90:
            crop = np.rot90(crop, int(self.rng.integers(4)), axes=(1, 2))
        if cfg.flips and self.rng.random() < 0.5:
            crop = crop[:, :, ::-1]
        return np.ascontiguousarray(crop)


def _pad_to(stack: np.ndarray, side: int) -> np.ndarray:
    """Mirror-pad a [C, H, W] stack so both H and W are at least `side` (small images still crop)."""
    pad_y, pad_x = max(0, side - stack.shape[1]), max(0, side - stack.shape[2])
    if not pad_y and not pad_x:
        return stack
    return np.pad(stack, ((0, 0), (pad_y // 2, pad_y - pad_y // 2), (pad_x // 2, pad_x - pad_x // 2)),
                  mode="symmetric")


class Prefetcher:
    """Prepares the next `depth` batches in a background thread (file decoding, percentiles and
    crops overlap the model's step: a win on a GPU, where the loop would otherwise wait on data).

    Deterministic: one thread calls the sampler in order, so the batches are exactly the sampler's
    own. `state_dict()` is the sampler's state right after the last batch handed out, which is what
    a checkpoint must hold to resume from there (the sampler itself may be `depth` batches ahead).
    """

    def __init__(self, sampler: BalancedSampler, depth: int = 2):
        import queue
        import threading
        self.sampler = sampler
        self._state = sampler.state_dict()
        self._queue: "queue.Queue" = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, daemon=True, name="batch-prefetch")
        self._thread.start()

    def _fill(self) -> None:
        while not self._stop.is_set():
            try:
                item = (self.sampler.next_batch(), self.sampler.state_dict(), None)
            except BaseException as exc:  # re-raised in the training thread, with its file name
                item = (None, None, exc)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except Exception:
                    continue
            if item[2] is not None:
                return

    def next_batch(self) -> Batch:
        batch, state, error = self._queue.get()
        if error is not None:
            raise error
        self._state = state
        return batch

    def state_dict(self) -> dict:
        return self._state

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
