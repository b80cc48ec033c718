"""The training loop both generator families share.

The two families differ in their generator and its extra loss only (pix2pix: a multi-decoder
ResNet; VQGAN: an encoder-quantiser-decoder with a codebook loss); everything else is one loop:

    G step:  L_G = l1_weight * partial weighted L1 [+ pcc_weight * partial (1 - PCC)]
                   [+ ssim_weight * partial (1 - SSIM)]
                   + codebook_weight * codebook
                   + w * GAN_G                     (after disc_start; w fixed or adaptive)
    D step:  L_D = sum over organelles k with GT of PatchGAN_k's loss (after disc_start)

with balanced partial-label batches (sampler.py: read from the data folder through
dataset.ImageCache or from a training store, store.py; made in the training process or by
DataLoader workers, loader.py), Adam for both, mixed precision on CUDA
(bfloat16 where the GPU has it, else float16 with a grad scaler), DDP under torchrun,
validation with the challenge metrics every `val_every` steps (best checkpoint kept by its
score), a resumable `last.pt` every `ckpt_every` steps, a tqdm bar naming what it shows and two CSV
logs (train_log.csv: losses per `log_every` steps; val_log.csv: metrics per validation), drawn to
train_curves.png at every validation (curves.py).

The code is setup (`_setup`, `_restore`: folder, data, model, optimisers, resume), one step
(`_train_step`) and the loop (`_loop`: schedule, logs, validation, checkpoints) around a `_Run`.
A forced resume that changes the schedule's length continues the lr from where it was
(`lr_factor`'s anchor), it never jumps back up.
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

from models.architectures import config_to_dict, make_config
from models.patchgan import PatchGANConfig
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
from .curves import plot_curves
from .dataset import INPUT_NORM, ImageCache, ImageSource, load_fovs, read_exclusion_list, split_by_study
from .loader import BatchLoader
from .losses import DiscriminatorObjective, generator_objective, partial_l1, partial_pcc_loss, partial_ssim_loss
from .run_config import LossConfig, TrainConfig
from .run_guard import guard_resume, guard_run_folder
from .sampler import BalancedSampler, SamplerConfig
from .store import TrainingStore
from .validation import evaluate, validation_items

LAST, BEST = "last.pt", "best.pt"
# Model config fields a warm start (init_from) may change: they keep every weight's shape and
# meaning (the shipped zero-padded VQGANs are fine-tuned with replicate padding).
WARM_START_MAY_CHANGE = frozenset({"padding_mode"})
__all__ = ["BEST", "LAST", "LossConfig", "RunResult", "TrainConfig", "train"]


class Family(Protocol):
    """What a generator family gives the loop."""

    arch: str                                   # models.registry.ARCHITECTURES key

    def model_config(self, cfg: TrainConfig): ...                  # dataclass config of the generator
    def build(self, model_config) -> nn.Module: ...
    def training_forward(self, model: nn.Module) -> nn.Module: ...  # x -> (y, codebook_loss, stats)
    def last_layer(self, model: nn.Module) -> torch.Tensor: ...


def lr_factor(step: int, cfg: TrainConfig, anchor: tuple[int, float] | None = None) -> float:
    """1 until decay_start x steps, then linear to 0 at the last step (pix2pix's schedule).

    `anchor` (step s0, factor f0): the schedule was changed at s0 (a forced resume with other
    steps or decay_start) and continues from where it was: f0 until the new decay start (or s0,
    if that is later), then linear from f0 to 0 at the new last step; the lr never jumps back up.
    """
    start = cfg.decay_start * cfg.steps
    if anchor is None:
        if step < start:
            return 1.0
        return max(0.0, (cfg.steps - step) / max(1.0, cfg.steps - start))
    s0, f0 = anchor
    start = max(start, s0)
    if step < start:
        return f0
    return f0 * max(0.0, (cfg.steps - step) / max(1.0, cfg.steps - start))


def schedule_anchor(saved: dict, cfg: TrainConfig, step: int) -> tuple[int, float] | None:
    """The anchor a resume at `step` continues from: the checkpoint's, unless its schedule
    (steps, decay_start) differs from this run's, in which case a new one at the factor the old
    schedule had reached."""
    old_cfg, old_anchor = saved.get("train_config") or {}, saved.get("lr_anchor")
    old_anchor = tuple(old_anchor) if old_anchor else None
    if all(old_cfg.get(k, getattr(cfg, k)) == getattr(cfg, k) for k in ("steps", "decay_start")):
        return old_anchor
    old = TrainConfig(steps=old_cfg["steps"], decay_start=old_cfg["decay_start"])
    return step, lr_factor(step, old, old_anchor)


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


def _check_same_model(path: Path, state: dict, arch: str, model_config: dict, why: str = "",
                      may_differ: frozenset[str] = frozenset()) -> None:
    """ValueError naming the file (and `why` it was read) when it holds another model than this
    run's; config fields in `may_differ` are not compared."""
    def comparable(config) -> dict:
        # The same config reads as lists from a shipped checkpoint, tuples from asdict, and
        # without the fields added since it was written (make_config fills their defaults).
        full = config_to_dict(make_config(arch, config)) if state["arch"] == arch else config_to_dict(config)
        return {k: v for k, v in full.items() if k not in may_differ}
    if state["arch"] != arch or comparable(state["model_config"]) != comparable(model_config):
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
    run = _setup(cfg, family, info)
    try:
        return _loop(run)
    finally:
        if isinstance(run.source, BatchLoader):
            run.source.close()


@dataclass
class _Run:
    """Everything setup builds and the loop advances: one object instead of closures."""
    cfg: TrainConfig
    family: Family
    info: distributed.DistInfo
    out: Path
    model_config: object
    divisor: int
    modalities: tuple[str, ...]
    images: ImageSource
    sampler: BalancedSampler
    generator: nn.Module
    forward: nn.Module                       # the generator's training call (DDP-wrapped under torchrun)
    disc: DiscriminatorObjective | None
    disc_step: nn.Module | None              # the discriminator objective (DDP-wrapped under torchrun)
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    items: list
    train_log: CsvLog | None
    val_log: CsvLog | None
    step: int = 0
    best_score: float = -math.inf
    lr_anchor: tuple[int, float] | None = None
    source: object = None                    # the sampler or its DataLoader workers, made by the loop

    def autocast(self):
        device = self.info.device
        return torch.autocast(device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None)


def _setup(cfg: TrainConfig, family: Family, info: distributed.DistInfo) -> _Run:
    """The run folder checked, data, model, optimisers; a resume or a warm start restored."""
    device, out = info.device, Path(cfg.out)
    if info.main:
        guard_run_folder(out, resume=cfg.resume, force=cfg.force)   # before anything is written
        out.mkdir(parents=True, exist_ok=True)
    seed_everything(cfg.seed)      # same on every rank: identical initial weights
    fovs, images = training_data(cfg)
    train_fovs, val_fovs = split_by_study(fovs, cfg.val_fraction, cfg.seed)
    # One stream of batches for the run; rank r takes batches r, r + W, ... (loader.py).
    sampler = BalancedSampler(train_fovs, images, SamplerConfig(
        batch_size=cfg.batch_size, crop=cfg.crop, organelles=cfg.organelles, flips=cfg.flips,
        rot90=cfg.rot90, scale_jitter=cfg.scale_jitter, seed=cfg.seed), start=info.rank,
        stride=info.world_size)
    model_config = family.model_config(cfg)
    divisor = int(model_config.size_divisor)
    if cfg.crop % divisor:
        raise ValueError(f"crop {cfg.crop} must be a multiple of the model's size divisor {divisor}")
    generator = family.build(model_config).to(device)
    lc = cfg.loss
    disc = None
    if lc.gan_weight > 0:
        d_in = (1 if lc.conditional_disc else 0) + 1
        disc = DiscriminatorObjective(len(cfg.organelles), PatchGANConfig.preset(lc.disc_preset, in_channels=d_in),
                                      lc.gan_mode, lc.conditional_disc).to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=cfg.lr, betas=cfg.betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.disc_lr or cfg.lr, betas=cfg.betas) if disc else None
    amp_dtype = _amp_dtype(cfg, device)
    run = _Run(cfg=cfg, family=family, info=info, out=out, model_config=model_config, divisor=divisor,
               modalities=tuple(m for m in MODALITIES if any(f.modality == m for f in fovs)), images=images,
               sampler=sampler, generator=generator, forward=family.training_forward(generator), disc=disc,
               disc_step=disc, opt_g=opt_g, opt_d=opt_d,
               scaler=torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16), amp_dtype=amp_dtype,
               items=validation_items(val_fovs, cfg.val_items, cfg.seed) if info.main else [],
               train_log=CsvLog(out / "train_log.csv") if info.main else None,
               val_log=CsvLog(out / "val_log.csv") if info.main else None)
    if cfg.resume and (out / LAST).exists():
        _restore(run)
    else:
        if cfg.init_from:
            # Warm start (fine-tuning, or a longer schedule after a short one): weights only; the
            # optimiser, lr schedule, sampler and step start afresh.
            init = load_init_checkpoint(Path(cfg.init_from))
            _check_same_model(Path(cfg.init_from), init, family.arch, asdict(model_config),
                              why="cannot initialise from it: ", may_differ=WARM_START_MAY_CHANGE)
            load_module_state(generator, init["generator"])
        torch.manual_seed(cfg.seed * 1009 + info.rank)   # per-rank randomness from here on
    if info.main:
        (out / "run.json").write_text(json.dumps({"arch": family.arch, "train": asdict(cfg),
                                                  "model": asdict(model_config),
                                                  "world_size": info.world_size}, indent=2, default=str))
    if info.enabled:
        ids = [device.index] if device.type == "cuda" else None
        run.forward = DDP(run.forward, device_ids=ids)
        if disc is not None:
            # An organelle without GT in this rank's batch leaves its discriminator unused.
            run.disc_step = DDP(disc, device_ids=ids, find_unused_parameters=len(cfg.organelles) > 1)
    return run


def _restore(run: _Run) -> None:
    """Continue from OUT/last.pt: weights, optimisers, sampler, random state, step, schedule."""
    cfg, info, last_path = run.cfg, run.info, run.out / LAST
    guard_resume(run.out, asdict(cfg), force=cfg.force)
    state = load_training_checkpoint(last_path)
    _check_same_model(last_path, state, run.family.arch, asdict(run.model_config))
    load_module_state(run.generator, state["generator"])
    run.opt_g.load_state_dict(state["opt_g"])
    if run.disc is not None:
        load_module_state(run.disc, state["discriminator"])
        run.opt_d.load_state_dict(state["opt_d"])
    run.scaler.load_state_dict(state["scaler"])
    samplers = state["samplers"]
    if len(samplers) != info.world_size:
        raise ValueError(f"{last_path}: saved by {len(samplers)} process(es), resumed with "
                         f"{info.world_size}; resume with the same number")
    run.sampler.load_state_dict(samplers[info.rank])
    set_rng_state(state["rng"][info.rank])
    run.step, run.best_score = int(state["step"]), float(state["best_score"])
    run.lr_anchor = schedule_anchor(state, cfg, run.step)
    if info.main:
        for name in ("train_log.csv", "val_log.csv"):
            _truncate_log(run.out / name, run.step)


def _set_lr(run: _Run) -> float:
    factor = lr_factor(run.step, run.cfg, run.lr_anchor)
    for group in run.opt_g.param_groups:
        group["lr"] = run.cfg.lr * factor
    for group in run.opt_d.param_groups if run.opt_d else ():
        group["lr"] = (run.cfg.disc_lr or run.cfg.lr) * factor
    return factor


def _train_step(run: _Run, batch) -> dict[str, torch.Tensor]:
    """One generator step (and one discriminator step once the GAN is on); the detached losses."""
    lc = run.cfg.loss
    gan_on = run.disc is not None and run.step >= lc.disc_start
    with run.autocast():
        fake, codebook, stats = run.forward(batch.inputs)
    fake = fake.float()
    rec = lc.l1_weight * partial_l1(fake, batch.targets, batch.mask, weighted=lc.weighted_l1)
    pcc = partial_pcc_loss(fake, batch.targets, batch.mask) if lc.pcc_weight else None
    ssim = partial_ssim_loss(fake, batch.targets, batch.mask) if lc.ssim_weight else None
    pixel = rec
    if pcc is not None:
        pixel = pixel + lc.pcc_weight * pcc
    if ssim is not None:
        pixel = pixel + lc.ssim_weight * ssim
    g_gan = None
    if gan_on:
        run.disc.requires_grad_(False)       # G step: no gradient into the discriminators
        with run.autocast():
            g_gan = run.disc.generator_term(batch.inputs, fake, batch.mask).float()
    total, weight = generator_objective(pixel, codebook.float(), g_gan, run.family.last_layer(run.generator),
                                        codebook_weight=lc.codebook_weight, disc_weight=lc.gan_weight,
                                        adaptive=lc.adaptive_gan)
    logs = {"rec": rec.detach(), "codebook": codebook.detach().float()}
    if pcc is not None:
        logs["pcc"] = pcc.detach()
    if ssim is not None:
        logs["ssim"] = ssim.detach()
    if gan_on:
        run.disc.requires_grad_(True)
        logs.update(gan_g=g_gan.detach(), gan_weight=weight.detach())
    run.opt_g.zero_grad(set_to_none=True)
    run.scaler.scale(total).backward()
    run.scaler.step(run.opt_g)
    if gan_on:
        with run.autocast():
            d_loss = run.disc_step(batch.inputs, fake.detach(), batch.targets, batch.mask).float()
        run.opt_d.zero_grad(set_to_none=True)
        run.scaler.scale(d_loss).backward()
        run.scaler.step(run.opt_d)
        logs["gan_d"] = d_loss.detach()
    run.scaler.update()
    logs["total"] = total.detach()
    for key in ("perplexity", "usage"):
        if key in stats:
            logs[key] = stats[key].detach().float()
    return logs


def _save_last(run: _Run) -> None:
    samplers = distributed.gather_objects(run.info, run.source.state_dict())
    rngs = distributed.gather_objects(run.info, rng_state())
    if run.info.main:
        atomic_save({"step": run.step, "arch": run.family.arch, "model_config": asdict(run.model_config),
                     "train_config": asdict(run.cfg), "generator": module_state(run.generator),
                     "discriminator": module_state(run.disc) if run.disc is not None else None,
                     "opt_g": run.opt_g.state_dict(), "opt_d": run.opt_d.state_dict() if run.opt_d else None,
                     "scaler": run.scaler.state_dict(), "samplers": samplers, "rng": rngs,
                     "best_score": run.best_score, "lr_anchor": run.lr_anchor,
                     **_spec_fields(run.cfg, run.modalities, run.divisor)}, run.out / LAST)
    distributed.barrier(run.info)


def _validate(run: _Run) -> dict | None:
    """Challenge metrics on the validation items; best.pt kept by score; the curves redrawn."""
    metrics = None
    if run.info.main and run.items:
        metrics = evaluate(run.generator, run.items, run.images, run.cfg.organelles, crop=run.cfg.val_crop,
                           divisor=run.divisor, device=run.info.device, amp_dtype=run.amp_dtype)
        run.val_log.write({"step": run.step, **metrics})
        if metrics["score"] > run.best_score or not (run.out / BEST).exists():
            run.best_score = max(run.best_score, metrics["score"])
            atomic_save({"step": run.step, "arch": run.family.arch, "model_config": asdict(run.model_config),
                         "generator": module_state(run.generator), "metrics": metrics,
                         **_spec_fields(run.cfg, run.modalities, run.divisor)}, run.out / BEST)
        plot_curves(run.out)
    distributed.barrier(run.info)
    return metrics


_LOGGED = ("total", "rec", "pcc", "ssim", "codebook", "gan_g", "gan_d", "gan_weight", "perplexity", "usage")


def _loop(run: _Run) -> RunResult:
    """Steps until the run's end, this invocation's --stop-after or its --time-limit; logs,
    validation and checkpoints on their schedules."""
    cfg, info = run.cfg, run.info
    end = cfg.steps if cfg.stop_after is None else min(cfg.steps, run.step + cfg.stop_after)
    sums: dict[str, torch.Tensor] = {}
    count, t0, start_step = 0, time.perf_counter(), run.step
    t_log = t0
    last_losses: dict[str, float] = {}
    shown: dict[str, str] = {}      # what the progress bar names beside the step count
    bar = tqdm(total=cfg.steps, initial=run.step, disable=not (cfg.progress and info.main), unit="step",
               desc=f"{run.family.arch} {Path(cfg.out).name}: steps", dynamic_ncols=True)
    run.generator.train()
    workers = cfg.workers if cfg.workers is not None else default_workers(info.device)
    # Created after any resume, so the workers start from the restored sampler state.
    run.source = BatchLoader(run.sampler, workers, prefetch=cfg.prefetch, pin_memory=info.device.type == "cuda") \
        if workers > 0 else run.sampler
    while run.step < end:
        factor = _set_lr(run)
        logs = _train_step(run, run.source.next_batch().to(info.device))
        run.step += 1
        count += 1
        for key, value in logs.items():
            sums[key] = sums.get(key, 0.0) + value
        bar.update(1)
        if info.main and (run.step % cfg.log_every == 0 or run.step == end):
            now = time.perf_counter()
            last_losses = {k: float(v) / count for k, v in sums.items()}
            rate = count * cfg.batch_size * info.world_size / max(now - t_log, 1e-9)
            run.train_log.write({"step": run.step, "lr": cfg.lr * factor, "samples_per_s": rate,
                                 **{k: last_losses.get(k, float("nan")) for k in _LOGGED}})
            shown.update({"train loss": f"{last_losses['total']:.3f}", "L1 term": f"{last_losses['rec']:.3f}",
                          "lr": f"{cfg.lr * factor:.2g}"})
            bar.set_postfix(shown)
            sums, count, t_log = {}, 0, now
        out_of_time = cfg.time_limit_min is not None and \
            _agreed(info, time.perf_counter() - t0 > 60 * cfg.time_limit_min)
        if out_of_time:
            end = run.step              # validate and save below, as at a planned end
        if run.step % cfg.val_every == 0 or run.step == cfg.steps or out_of_time:
            metrics = _validate(run)
            if metrics is not None:
                shown["val score"] = f"{metrics['score']:.3f}"
                bar.set_postfix(shown)
        if run.step % cfg.ckpt_every == 0 or run.step == end:
            _save_last(run)
    bar.close()
    elapsed = time.perf_counter() - t0
    rate = (run.step - start_step) * cfg.batch_size * info.world_size / max(elapsed, 1e-9)
    return RunResult(run.out, run.step, run.best_score, last_losses, rate)


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
