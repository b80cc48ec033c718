"""Command-line flags shared by train_pix2pix and train_vqgan: preset + flags -> TrainConfig.

Each trainer passes its family's defaults (the papers' optimiser and loss settings); every field
of TrainConfig / LossConfig has a flag, and `--set key=value` overrides a model config field
(e.g. `--set ngf=48`).
"""
from __future__ import annotations

import argparse
import ast
from pathlib import Path

from preprocessing.ome_io import MODALITIES, ORGANELLES

from .run_guard import RunFolderError
from .store import StoreError
from .trainer import LossConfig, RunResult, TrainConfig, train


def _pair(text: str) -> tuple[float, float]:
    parts = text.replace(",", " ").split()
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected two numbers like 0.5,0.999, got {text!r}")
    return float(parts[0]), float(parts[1])


def _override(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key.strip(), value


def build_parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    a = p.add_argument
    a("--data", default=None, help="folder with Study_*/ (real Light My Cells layout or simulated); "
      "with --store, the folder the store was prepared from (checked), or left out")
    a("--store", default=None, help="train from this training store (python -m training.prepare), "
      "made with the same --pixel-size")
    a("--out", required=True, help="run folder: last.pt, best.pt, train_log.csv, val_log.csv")
    a("--preset", default="small", choices=("tiny", "small", "paper"))
    a("--set", dest="overrides", type=_override, action="append", default=[],
      metavar="KEY=VALUE", help="override a model config field")
    a("--steps", type=int, default=2000)
    a("--stop-after", type=int, default=None, help="stop this invocation after N steps (resume later)")
    a("--time-limit", type=float, default=None, metavar="MIN",
      help="stop this invocation after MIN minutes (validates and saves first)")
    a("--batch-size", type=int, default=8)
    a("--crop", type=int, default=256)
    a("--lr", type=float, default=None, help="default: the family's")
    a("--disc-lr", type=float, default=None)
    a("--betas", type=_pair, default=None, help="Adam betas, e.g. 0.5,0.999; default: the family's")
    a("--decay-start", type=float, default=None,
      help="fraction of steps after which lr decays linearly to 0 (1 = constant)")
    a("--modalities", nargs="+", choices=MODALITIES, default=[], help="default: all in the data")
    a("--exclude", default=None, help="exclusion list file (studies, FOVs or file names)")
    a("--max-defocus", type=int, default=None,
      help="train only on slices at most N z-steps from best focus (needs bestz.csv)")
    a("--val-fraction", type=float, default=0.1)
    a("--val-every", type=int, default=500)
    a("--val-items", type=int, default=24)
    a("--val-crop", type=int, default=512)
    a("--ckpt-every", type=int, default=500)
    a("--log-every", type=int, default=10)
    a("--scale-jitter", type=_pair, default=None, help="crop-and-resize fractions, e.g. 0.7,0.95")
    a("--pixel-size", type=float, default=None, help="resample the data to this pixel size (um)")
    a("--no-flips", action="store_true")
    a("--no-rot90", action="store_true")
    a("--cache-gb", type=float, default=2.0,
      help="memory for decoded, normalised images, per process (without --store)")
    a("--seed", type=int, default=0)
    a("--no-amp", action="store_true", help="no mixed precision on CUDA")
    a("--device", choices=("cpu", "cuda"), default=None)
    a("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    a("--workers", type=int, default=None,
      help="DataLoader worker processes per rank (default: 0 on CPU; on CUDA the rank's cores - 1, at most 8)")
    a("--prefetch", type=int, default=2, help="batches each worker keeps ready")
    a("--resume", action="store_true", help="continue from OUT/last.pt when it exists")
    a("--force", action="store_true", help="start over an existing --out (its run files are deleted), "
      "or resume although run-defining settings changed")
    a("--init-from", default=None, metavar="CKPT",
      help="start from this run checkpoint's generator weights (e.g. RUN/best.pt); fresh optimiser "
           "and schedule; ignored when --resume finds OUT/last.pt")
    a("--quiet", action="store_true", help="no progress bar")
    a("--note", default="", help="what the data is; goes into the exported checkpoint")
    g = p.add_argument_group("loss")
    g.add_argument("--l1-weight", type=float, default=None)
    g.add_argument("--no-weighted-l1", action="store_true", help="plain L1 (no 0.1 outside [p2, p99.8])")
    g.add_argument("--codebook-weight", type=float, default=None)
    g.add_argument("--gan-weight", type=float, default=None, help="0 = no discriminator")
    g.add_argument("--gan-mode", choices=("vanilla", "lsgan", "hinge"), default=None)
    g.add_argument("--disc-start", type=int, default=None, help="step at which the GAN terms start")
    g.add_argument("--disc-preset", choices=("tiny", "small", "paper"), default=None)
    return p


def _pick(value, default):
    return default if value is None else value


def config_from_args(args: argparse.Namespace, *, organelles: tuple[str, ...], lr: float,
                     betas: tuple[float, float], decay_start: float, loss: LossConfig) -> TrainConfig:
    """TrainConfig from parsed flags; flags left unset take the family defaults given here."""
    # User mistakes end in one line (SystemExit), never a traceback.
    if args.data is None and args.store is None:
        raise SystemExit("error: give --data, --store, or both")
    for flag, value in (("--data", args.data), ("--store", args.store)):
        if value is not None and not Path(value).is_dir():
            raise SystemExit(f"error: {flag} {value} is not a folder")
    for organelle in organelles:
        if organelle not in ORGANELLES:
            raise SystemExit(f"error: unknown organelle {organelle!r}; expected one of {ORGANELLES}")
    loss = LossConfig(
        l1_weight=_pick(args.l1_weight, loss.l1_weight),
        weighted_l1=loss.weighted_l1 and not args.no_weighted_l1,
        codebook_weight=_pick(args.codebook_weight, loss.codebook_weight),
        gan_weight=_pick(args.gan_weight, loss.gan_weight),
        gan_mode=_pick(args.gan_mode, loss.gan_mode),
        adaptive_gan=loss.adaptive_gan, conditional_disc=loss.conditional_disc,
        disc_start=_pick(args.disc_start, loss.disc_start),
        disc_preset=_pick(args.disc_preset, loss.disc_preset))
    return TrainConfig(
        data=args.data, store=args.store, out=args.out, preset=args.preset, steps=args.steps,
        stop_after=args.stop_after,
        time_limit_min=args.time_limit,
        batch_size=args.batch_size, crop=args.crop, lr=_pick(args.lr, lr), disc_lr=args.disc_lr,
        betas=_pick(args.betas, betas), decay_start=_pick(args.decay_start, decay_start),
        modalities=tuple(args.modalities), organelles=organelles, exclude=args.exclude,
        max_defocus=args.max_defocus,
        val_fraction=args.val_fraction, val_every=args.val_every, val_items=args.val_items,
        val_crop=args.val_crop, ckpt_every=args.ckpt_every, log_every=args.log_every,
        scale_jitter=args.scale_jitter, pixel_size_um=args.pixel_size, flips=not args.no_flips,
        rot90=not args.no_rot90, cache_gb=args.cache_gb, seed=args.seed, amp=not args.no_amp,
        device=args.device, threads=args.threads, workers=args.workers, prefetch=args.prefetch,
        resume=args.resume, force=args.force, init_from=args.init_from,
        progress=not args.quiet, note=args.note, loss=loss)


def train_and_report(cfg: TrainConfig, family) -> RunResult:
    """Run one training command and print the one-line summary both families share."""
    try:
        result = train(cfg, family)
    except (StoreError, RunFolderError) as exc:   # a store or run folder that does not fit: one line
        raise SystemExit(f"error: {exc}") from exc
    # The summary is printed even with --quiet (which only hides the progress bar).
    print(f"stopped at step {result.step}; best validation score {result.best_score:.4f}; "
          f"{result.samples_per_s:.1f} samples/s; run in {result.out}")
    return result
