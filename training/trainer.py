"""The training loop both generator families share.

The two families differ in their generator and its extra loss only (pix2pix: a multi-decoder
ResNet; VQGAN: an encoder-quantiser-decoder with a codebook loss); everything else is one loop:

    G step:  L_G = l1_weight * partial weighted L1 + codebook_weight * codebook
                   + w * GAN_G                     (after disc_start; w fixed or adaptive)
    D step:  L_D = sum over organelles k with GT of PatchGAN_k's loss (after disc_start)

with balanced partial-label batches (sampler.py: read from the data folder through
dataset.ImageCache or from a training store, store.py; made in the training process or by
DataLoader workers, loader.py), Adam for both, mixed precision on CUDA
(bfloat16 where the GPU has it, else float16 with a grad scaler), DDP under torchrun,
validation with the challenge metrics every `val_every` steps (best checkpoint kept by its
score), a resumable `last.pt` every `ckpt_every` steps, a tqdm bar and two CSV logs
(train_log.csv: losses per `log_every` steps; val_log.csv: metrics per validation).
"""
from __future__ import annotations

import csv
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from models.architectures import config_to_dict
from models.patchgan import GANLoss, PatchDiscriminator, PatchGANConfig, adaptive_gan_weight
from preprocessing.ome_io import MODALITIES

from . import distributed
from .checkpointing import (
    atomic_save,
    load_init_checkpoint,
    load_module_state,
    load_training_checkpoint,
    module_state,
    rng_state,
    set_rng_state,
)
from .dataset import INPUT_NORM, ImageCache, ImageSource, load_fovs, read_exclusion_list, split_by_study
from .loader import BatchLoader
from .losses import partial_discriminator_gan, partial_generator_gan, partial_l1
from .run_config import LossConfig, TrainConfig
from .run_guard import guard_resume, guard_run_folder
from .sampler import BalancedSampler, SamplerConfig
from .store import TrainingStore
from .validation import evaluate, validation_items

LAST, BEST = "last.pt", "best.pt"
__all__ = ["BEST", "LAST", "LossConfig", "RunResult", "TrainConfig", "train"]


class Family(Protocol):
    """What a generator family gives the loop."""

    arch: str                                   # models.registry.ARCHITECTURES key

    def model_config(self, cfg: TrainConfig): ...                  # dataclass config of the generator
    def build(self, model_config) -> nn.Module: ...
    def training_forward(self, model: nn.Module) -> nn.Module: ...  # x -> (y, codebook_loss, stats)
    def last_layer(self, model: nn.Module) -> torch.Tensor: ...


class DiscriminatorObjective(nn.Module):
    """One PatchGAN per output organelle and the discriminator loss as `forward`, so DDP can wrap
    it (DDP only synchronises what runs inside a wrapped module's forward)."""

    def __init__(self, n: int, config: PatchGANConfig, mode: str, conditional: bool):
        super().__init__()
        self.discs = nn.ModuleList(PatchDiscriminator(config) for _ in range(n))
        self.gan = GANLoss(mode)
        self.conditional = conditional

    def forward(self, inputs, fake, real, mask) -> torch.Tensor:
        return partial_discriminator_gan(self.discs, self.gan, inputs, fake, real, mask, self.conditional)

    def generator_term(self, inputs, fake, mask) -> torch.Tensor:
        return partial_generator_gan(self.discs, self.gan, inputs, fake, mask, self.conditional)


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """1 until decay_start x steps, then linear to 0 at the last step (pix2pix's schedule)."""
    start = cfg.decay_start * cfg.steps
    if step < start:
        return 1.0
    return max(0.0, (cfg.steps - step) / max(1.0, cfg.steps - start))


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class CsvLog:
    """Append rows to a CSV; the header is fixed by the first row (or the existing file's)."""

    def __init__(self, path: Path):
        self.path = path
        self.fields: list[str] | None = None
        if path.exists() and path.stat().st_size:
            with open(path, newline="") as handle:
                self.fields = next(csv.reader(handle), None)

    def write(self, row: dict) -> None:
        new = self.fields is None
        if new:
            self.fields = list(row)
        with open(self.path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)


@dataclass
class RunResult:
    out: Path
    step: int
    best_score: float
    last_losses: dict[str, float]
    samples_per_s: float


def _amp_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype | None:
    if not cfg.amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _truncate_log(path: Path, step: int) -> None:
    """On resume, drop log rows past the checkpoint's step (written after it by a killed run)."""
    if not path.exists():
        return
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return
    kept = [rows[0]] + [r for r in rows[1:] if r and int(float(r[0])) <= step]
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(kept)


def _check_same_model(path: Path, state: dict, arch: str, model_config: dict, why: str = "") -> None:
    """ValueError naming the file (and `why` it was read) when it holds another model than this run's."""
    # config_to_dict: the same config reads as lists from a shipped checkpoint, tuples from asdict.
    if state["arch"] != arch or config_to_dict(state["model_config"]) != config_to_dict(model_config):
        raise ValueError(f"{path}: {why}checkpoint is {state['arch']} {state['model_config']}, "
                         f"this run is {arch} {model_config}")


def train(cfg: TrainConfig, family: Family) -> RunResult:
    """Train (or resume) one run; returns where it stopped. Rank 0 writes everything."""
    if cfg.threads:
        # On a busy machine more threads than free cores makes every op wait on the slowest one.
        torch.set_num_threads(cfg.threads)
    info = distributed.setup(cfg.device)
    try:
        return _train(cfg, family, info)
    finally:
        distributed.cleanup(info)


def _train(cfg: TrainConfig, family: Family, info: distributed.DistInfo) -> RunResult:
    device = info.device
    out = Path(cfg.out)
    if info.main:
        guard_run_folder(out, resume=cfg.resume, force=cfg.force)   # before anything is written
        out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)      # same on every rank: identical initial weights

    fovs, images = training_data(cfg)
    train_fovs, val_fovs = split_by_study(fovs, cfg.val_fraction, cfg.seed)
    modalities = tuple(m for m in MODALITIES if any(f.modality == m for f in fovs))
    # One stream of batches for the run; rank r takes batches r, r + W, ... (loader.py).
    sampler = BalancedSampler(train_fovs, images, SamplerConfig(
        batch_size=cfg.batch_size, crop=cfg.crop, organelles=cfg.organelles, flips=cfg.flips,
        rot90=cfg.rot90, scale_jitter=cfg.scale_jitter, seed=cfg.seed), start=info.rank,
        stride=info.world_size)
    workers = cfg.workers if cfg.workers is not None else default_workers(device)

    model_config = family.model_config(cfg)
    divisor = int(model_config.size_divisor)
    if cfg.crop % divisor:
        raise ValueError(f"crop {cfg.crop} must be a multiple of the model's size divisor {divisor}")
    generator = family.build(model_config).to(device)
    lc = cfg.loss
    use_gan = lc.gan_weight > 0
    disc = None
    if use_gan:
        d_in = (1 if lc.conditional_disc else 0) + 1
        disc = DiscriminatorObjective(len(cfg.organelles), PatchGANConfig.preset(lc.disc_preset, in_channels=d_in),
                                      lc.gan_mode, lc.conditional_disc).to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr, betas=cfg.betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.disc_lr or cfg.lr, betas=cfg.betas) if disc else None
    amp_dtype = _amp_dtype(cfg, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)

    step, best_score = 0, -math.inf
    last_path = out / LAST
    if cfg.resume and last_path.exists():
        guard_resume(out, asdict(cfg), force=cfg.force)
        state = load_training_checkpoint(last_path)
        _check_same_model(last_path, state, family.arch, asdict(model_config))
        load_module_state(generator, state["generator"])
        opt_g.load_state_dict(state["opt_g"])
        if disc is not None:
            load_module_state(disc, state["discriminator"])
            opt_d.load_state_dict(state["opt_d"])
        scaler.load_state_dict(state["scaler"])
        samplers = state["samplers"]
        if len(samplers) != info.world_size:
            raise ValueError(f"{last_path}: saved by {len(samplers)} process(es), resumed with "
                             f"{info.world_size}; resume with the same number")
        sampler.load_state_dict(samplers[info.rank])
        set_rng_state(state["rng"][info.rank])
        step, best_score = int(state["step"]), float(state["best_score"])
        if info.main:
            for name in ("train_log.csv", "val_log.csv"):
                _truncate_log(out / name, step)
    else:
        if cfg.init_from:
            # Warm start (fine-tuning, or a longer schedule after a short one): weights only; the
            # optimiser, lr schedule, sampler and step start afresh.
            init = load_init_checkpoint(Path(cfg.init_from))
            _check_same_model(Path(cfg.init_from), init, family.arch, asdict(model_config),
                              why="cannot initialise from it: ")
            load_module_state(generator, init["generator"])
        torch.manual_seed(cfg.seed * 1009 + info.rank)   # per-rank randomness from here on

    if info.main:
        (out / "run.json").write_text(json.dumps({"arch": family.arch, "train": asdict(cfg),
                                                  "model": asdict(model_config),
                                                  "world_size": info.world_size}, indent=2, default=str))
    forward = family.training_forward(generator)
    if info.enabled:
        forward = DDP(forward, device_ids=[device.index] if device.type == "cuda" else None)
        if disc is not None:
            # An organelle without GT in this rank's batch leaves its discriminator unused.
            disc_ddp = DDP(disc, device_ids=[device.index] if device.type == "cuda" else None,
                           find_unused_parameters=len(cfg.organelles) > 1)
    disc_step = disc_ddp if (info.enabled and disc is not None) else disc

    items = validation_items(val_fovs, cfg.val_items, cfg.seed) if info.main else []
    train_log = CsvLog(out / "train_log.csv") if info.main else None
    val_log = CsvLog(out / "val_log.csv") if info.main else None

    def save_last() -> None:
        samplers = distributed.gather_objects(info, source.state_dict())
        rngs = distributed.gather_objects(info, rng_state())
        if info.main:
            atomic_save({"step": step, "arch": family.arch, "model_config": asdict(model_config),
                         "train_config": asdict(cfg), "generator": module_state(generator),
                         "discriminator": module_state(disc) if disc is not None else None,
                         "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict() if opt_d else None,
                         "scaler": scaler.state_dict(), "samplers": samplers, "rng": rngs,
                         "best_score": best_score, **_spec_fields(cfg, modalities, divisor)}, last_path)
        distributed.barrier(info)

    def validate() -> None:
        nonlocal best_score
        if info.main and items:
            metrics = evaluate(generator, items, images, cfg.organelles, crop=cfg.val_crop,
                               divisor=divisor, device=device, amp_dtype=amp_dtype)
            val_log.write({"step": step, **metrics})
            if metrics["score"] > best_score or not (out / BEST).exists():
                best_score = max(best_score, metrics["score"])
                atomic_save({"step": step, "arch": family.arch, "model_config": asdict(model_config),
                             "generator": module_state(generator), "metrics": metrics,
                             **_spec_fields(cfg, modalities, divisor)}, out / BEST)
        distributed.barrier(info)

    end = cfg.steps if cfg.stop_after is None else min(cfg.steps, step + cfg.stop_after)
    sums: dict[str, torch.Tensor] = {}
    count, t0, start_step = 0, time.perf_counter(), step
    t_log = t0
    last_losses: dict[str, float] = {}
    bar = tqdm(total=cfg.steps, initial=step, disable=not (cfg.progress and info.main),
               desc=f"{family.arch} {Path(cfg.out).name}", dynamic_ncols=True)
    generator.train()
    # Created after any resume, so the workers start from the restored sampler state.
    source = BatchLoader(sampler, workers, prefetch=cfg.prefetch, pin_memory=device.type == "cuda") \
        if workers > 0 else sampler
    try:
        while step < end:
            factor = lr_factor(step, cfg)
            for group in opt_g.param_groups:
                group["lr"] = cfg.lr * factor
            if opt_d:
                for group in opt_d.param_groups:
                    group["lr"] = (cfg.disc_lr or cfg.lr) * factor
            batch = source.next_batch().to(device)
            gan_on = disc is not None and step >= lc.disc_start

            with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                fake, codebook, stats = forward(batch.inputs)
            fake = fake.float()
            rec = lc.l1_weight * partial_l1(fake, batch.targets, batch.mask, weighted=lc.weighted_l1)
            total = rec + lc.codebook_weight * codebook.float()
            logs = {"rec": rec.detach(), "codebook": codebook.detach().float()}
            if gan_on:
                disc.requires_grad_(False)       # G step: no gradient into the discriminators
                with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                    g_gan = disc.generator_term(batch.inputs, fake, batch.mask).float()
                if lc.adaptive_gan:
                    weight = adaptive_gan_weight(rec, g_gan, family.last_layer(generator)) * lc.gan_weight
                else:
                    weight = torch.tensor(lc.gan_weight, device=device)
                total = total + weight * g_gan
                disc.requires_grad_(True)
                logs.update(gan_g=g_gan.detach(), gan_weight=weight.detach())
            opt_g.zero_grad(set_to_none=True)
            scaler.scale(total).backward()
            scaler.step(opt_g)
            if gan_on:
                with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
                    d_loss = disc_step(batch.inputs, fake.detach(), batch.targets, batch.mask).float()
                opt_d.zero_grad(set_to_none=True)
                scaler.scale(d_loss).backward()
                scaler.step(opt_d)
                logs["gan_d"] = d_loss.detach()
            scaler.update()
            logs["total"] = total.detach()
            for key in ("perplexity", "usage"):
                if key in stats:
                    logs[key] = stats[key].detach().float()
            step += 1
            count += 1
            for key, value in logs.items():
                sums[key] = sums.get(key, 0.0) + value
            bar.update(1)

            if info.main and (step % cfg.log_every == 0 or step == end):
                now = time.perf_counter()
                last_losses = {k: float(v) / count for k, v in sums.items()}
                rate = count * cfg.batch_size * info.world_size / max(now - t_log, 1e-9)
                train_log.write({"step": step, "lr": cfg.lr * factor, "samples_per_s": rate,
                                 **{k: last_losses.get(k, float("nan")) for k in
                                    ("total", "rec", "codebook", "gan_g", "gan_d", "gan_weight",
                                     "perplexity", "usage")}})
                bar.set_postfix(loss=f"{last_losses['total']:.3f}", rec=f"{last_losses['rec']:.3f}")
                sums, count, t_log = {}, 0, now
            out_of_time = cfg.time_limit_min is not None and \
                _agreed(info, time.perf_counter() - t0 > 60 * cfg.time_limit_min)
            if out_of_time:
                end = step              # validate and save below, as at a planned end
            if step % cfg.val_every == 0 or step == cfg.steps or out_of_time:
                validate()
            if step % cfg.ckpt_every == 0 or step == end:
                save_last()
        bar.close()
    finally:
        if isinstance(source, BatchLoader):
            source.close()
    elapsed = time.perf_counter() - t0
    rate = (step - start_step) * cfg.batch_size * info.world_size / max(elapsed, 1e-9)
    return RunResult(out, step, best_score, last_losses, rate)


def training_data(cfg: TrainConfig) -> tuple[list, ImageSource]:
    """The run's fields of view and what reads their images: a training store's memory maps
    (after checking that the store matches the run) or, without a store, the data folder
    through an ImageCache."""
    exclude = read_exclusion_list(cfg.exclude) if cfg.exclude else None
    selection = dict(modalities=cfg.modalities or None, organelles=cfg.organelles, exclude=exclude,
                     max_defocus=cfg.max_defocus)
    if cfg.store is None:
        if cfg.data is None:
            raise ValueError("no data: give a data folder, a training store, or both")
        return load_fovs(cfg.data, **selection), ImageCache(cfg.pixel_size_um, int(cfg.cache_gb * (1 << 30)))
    store = TrainingStore(cfg.store)
    store.check_run(data=cfg.data, pixel_size_um=cfg.pixel_size_um, input_norm=INPUT_NORM,
                    modalities=selection["modalities"], exclude=exclude, max_defocus=cfg.max_defocus)
    return store.select(**selection), store.images()


def default_workers(device: torch.device) -> int:
    """DataLoader processes per rank: none on CPU (the model, not the data, is the bottleneck
    there, and a worker would take a core from it); on CUDA this rank's share of the cores,
    one left for the training process itself, at most 8."""
    if device.type != "cuda":
        return 0
    per_rank = len(os.sched_getaffinity(0)) // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(1, min(8, per_rank - 1))


def _agreed(info: distributed.DistInfo, flag: bool) -> bool:
    """True on every rank when it is true on rank 0 (clocks differ; all ranks must stop together)."""
    return bool(distributed.gather_objects(info, flag)[0])


def _spec_fields(cfg: TrainConfig, modalities: tuple[str, ...], divisor: int) -> dict:
    """What export needs for a self-describing CheckpointSpec (modalities: those in the data)."""
    return {"organelles": tuple(cfg.organelles), "modalities": modalities,
            "input_norm": dict(INPUT_NORM), "pixel_size_um": cfg.pixel_size_um,
            "window": cfg.crop, "size_divisor": divisor, "note": cfg.note}
