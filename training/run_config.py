"""What a training run is: TrainConfig and LossConfig, each field with its default and its help.

These dataclasses are the one description of a run. The command-line flags are generated from
them (training/options.py), a run file (TOML) is them written down (training/run_file.py), and
run.json / last.pt record them, so a resume can say what changed (training/run_guard.py).
Metadata per field: "help"; "flag" when the flag is not --<field-name> (kept short where users
type it); "choices".
"""
from __future__ import annotations

from dataclasses import dataclass, field

from preprocessing.ome_io import MODALITIES, ORGANELLES


def _f(default, help: str, **extra):
    """A dataclass field with its help (and flag name or choices) for the generated flags."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("mutable defaults need default_factory")
    return field(default=default, metadata={"help": help, **extra})


@dataclass
class LossConfig:
    l1_weight: float = _f(100.0, "weight of the (partial, weighted) L1 term; pix2pix's lambda_L1")
    weighted_l1: bool = _f(True, "L1 weight 1 inside [p2, p99.8] of the target and 0.1 outside (else plain L1)")
    pcc_weight: float = _f(0.0, "weight of the partial 1 - Pearson r term per crop (the RUNet team's PCC loss); 0 = off")
    ssim_weight: float = _f(0.0, "weight of the partial 1 - SSIM term per crop (the RUNet team's SSIM loss); 0 = off")
    codebook_weight: float = _f(1.0, "weight of the codebook loss (VQGAN only)")
    gan_weight: float = _f(1.0, "weight of the PatchGAN term; 0 = no discriminator at all")
    gan_mode: str = _f("vanilla", "GAN loss", choices=("vanilla", "lsgan", "hinge"))
    adaptive_gan: bool = _f(False, "taming's adaptive GAN weight at the decoder's last layer")
    conditional_disc: bool = _f(True, "the discriminator sees the TL input beside the organelle")
    disc_start: int = _f(0, "step from which the GAN terms are on (reconstruction alone before)")
    disc_preset: str = _f("small", "PatchGAN size", choices=("tiny", "small", "paper"))


@dataclass
class TrainConfig:
    data: str | None = _f(None, "folder with Study_*/ (real Light My Cells layout or simulated); with --store, "
                                "the folder the store was prepared from (checked), or left out")
    out: str | None = _f(None, "run folder: last.pt, best.pt, train_log.csv, val_log.csv, train_curves.png")
    preset: str = _f("small", "generator size", choices=("tiny", "small", "paper"))
    steps: int = _f(2000, "optimiser steps of the whole run (the lr schedule's length)")
    stop_after: int | None = _f(None, "stop this invocation after N steps (resume later)")
    time_limit_min: float | None = _f(None, "stop this invocation after MIN minutes (validates and saves first)",
                                      flag="--time-limit")
    batch_size: int = _f(8, "crops per optimiser step (over all processes)")
    crop: int = _f(256, "training crop side in pixels (of the run's grid)")
    lr: float = _f(2e-4, "Adam learning rate of the generator")
    disc_lr: float | None = _f(None, "learning rate of the discriminators (default: lr)")
    betas: tuple[float, float] = _f((0.5, 0.999), "Adam betas, e.g. 0.5,0.999")
    decay_start: float = _f(1.0, "fraction of steps after which lr decays linearly to 0 (1 = constant)")
    modalities: tuple[str, ...] = _f((), "train on these modalities only (default: all in the data)",
                                     choices=MODALITIES)
    organelles: tuple[str, ...] = _f(ORGANELLES, "output channels, in this order", choices=ORGANELLES)
    exclude: str | None = _f(None, "exclusion list file (studies, FOVs or file names)")
    max_defocus: int | None = _f(None, "train only on slices at most N z-steps from best focus (needs bestz.csv)")
    val_fraction: float = _f(0.1, "fraction of the studies held out for validation")
    val_every: int = _f(500, "validate every N steps (and at the end)")
    val_items: int = _f(24, "validation slices")
    val_crop: int = _f(512, "validation crop side")
    ckpt_every: int = _f(500, "write last.pt every N steps")
    log_every: int = _f(10, "write a train_log.csv row every N steps")
    scale_jitter: tuple[float, float] | None = _f(None, "crop-and-resize fractions, e.g. 0.7,0.95")
    pixel_size_um: float | None = _f(None, "resample the data to this pixel size in µm (default: native; "
                                           "the shipped recipe uses 0.2)", flag="--pixel-size")
    flips: bool = _f(True, "random flips")
    rot90: bool = _f(True, "random quarter turns")
    cache_gb: float = _f(2.0, "memory for decoded, normalised images, per process (without --store)")
    store: str | None = _f(None, "train from this training store (python -m training.prepare), made with the "
                                 "same --pixel-size")
    seed: int = _f(0, "seed of weights, split and crops")
    amp: bool = _f(True, "mixed precision on CUDA")
    device: str | None = _f(None, "cpu or cuda (default: cuda when available)", choices=("cpu", "cuda"))
    threads: int | None = _f(None, "torch CPU threads (default: torch's choice)")
    workers: int | None = _f(None, "DataLoader worker processes per rank (default: 0 on CPU; on CUDA the "
                                   "rank's cores - 1, at most 8)")
    prefetch: int = _f(2, "batches each worker keeps ready")
    resume: bool = _f(False, "continue from OUT/last.pt when it exists")
    force: bool = _f(False, "start over an existing --out (its run files are deleted), or resume although "
                            "run-defining settings changed")
    init_from: str | None = _f(None, "start from this run checkpoint's generator weights (e.g. RUN/best.pt); "
                                     "fresh optimiser and schedule; ignored when resuming")
    progress: bool = _f(True, "progress bar (--quiet hides it)")
    note: str = _f("", "what the data is; goes into the exported checkpoint")
    loss: LossConfig = field(default_factory=LossConfig)
