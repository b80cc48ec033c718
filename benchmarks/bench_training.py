"""Training throughput (samples/s) per family and preset, on this CPU and on a GPU when present.

    python -m benchmarks.bench_training [--presets tiny small] [--crop 256] [--batch-size 4]
                                        [--steps 6] [--threads N] [--device cpu|cuda]

Each configuration runs the real training loop (training.trainer.train) on small study folders
written to a temp dir: `steps` warm-up steps, then `steps` timed steps, read back from the run's
train_log.csv (the rate of the second logging interval, so start-up and the first decode of
every image are excluded). Both with the GAN terms on (the full objective) and the sampler alone,
which shows whether data preparation could be the bottleneck.
"""
from __future__ import annotations

import argparse
import csv
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from training.dataset import ImageCache, load_fovs
from training.sampler import BalancedSampler, SamplerConfig
from training.toy_studies import write_toy_studies
from training.train_pix2pix import PIX2PIX_LOSS, Pix2PixFamily
from training.train_vqgan import SMALL_LR, VQGAN_LOSS, VQGANFamily
from training.trainer import TrainConfig, train


def _rate(run: Path) -> float:
    with open(run / "train_log.csv") as handle:
        rows = list(csv.DictReader(handle))
    return float(rows[-1]["samples_per_s"])


def bench_family(root: Path, tmp: Path, family: str, preset: str, args, device: str) -> float:
    common = dict(data=str(root), preset=preset, steps=2 * args.steps, batch_size=args.batch_size,
                  crop=args.crop, log_every=args.steps, val_fraction=0.0, val_every=10 ** 9,
                  ckpt_every=10 ** 9, progress=False, device=device, threads=args.threads)
    out = tmp / f"{family}_{preset}_{device}"
    if family == "pix2pix":
        cfg = TrainConfig(out=str(out), loss=replace(PIX2PIX_LOSS, disc_preset=preset), **common)
        train(cfg, Pix2PixFamily())
    else:
        cfg = TrainConfig(out=str(out), organelles=("nucleus",), lr=SMALL_LR, betas=(0.5, 0.9),
                          loss=replace(VQGAN_LOSS, disc_preset=preset, disc_start=0), **common)
        train(cfg, VQGANFamily())
    return _rate(out)


def bench_sampler(root: Path, args) -> float:
    sampler = BalancedSampler(load_fovs(root), ImageCache(),
                              SamplerConfig(batch_size=args.batch_size, crop=args.crop, seed=0,
                                            scale_jitter=(0.7, 0.95)))
    for _ in range(3):
        sampler.next_batch()               # decode every image once
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < 1.0:
        sampler.next_batch()
        n += args.batch_size
    return n / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--presets", nargs="+", default=["tiny", "small"])
    p.add_argument("--families", nargs="+", default=["pix2pix", "vqgan"])
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--steps", type=int, default=6, help="warm-up steps, then as many timed")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--device", choices=("cpu", "cuda"), default=None,
                   help="default: CPU, plus CUDA when available")
    args = p.parse_args(argv)
    devices = [args.device] if args.device else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        root = write_toy_studies(tmp / "data", studies=2, fovs_per_study=3, size=max(2 * args.crop, 64),
                                 z_slices=2)
        if args.threads:
            torch.set_num_threads(args.threads)
        print(f"torch threads {torch.get_num_threads()}, crop {args.crop}, batch {args.batch_size}, "
              f"{args.steps} timed steps after {args.steps} warm-up steps")
        print(f"sampler alone: {bench_sampler(root, args):8.1f} samples/s")
        print(f"{'family':8} {'preset':6} {'device':6} {'samples/s':>10} {'ms/step':>8}")
        for device in devices:
            for family in args.families:
                for preset in args.presets:
                    rate = bench_family(root, tmp, family, preset, args, device)
                    print(f"{family:8} {preset:6} {device:6} {rate:10.2f} {1000 * args.batch_size / rate:8.0f}",
                          flush=True)


if __name__ == "__main__":
    main()
