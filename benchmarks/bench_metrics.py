"""Time to score N image pairs of SIZE x SIZE, serial vs parallel, and the peak memory per process.

    python -m benchmarks.bench_metrics [--n 8] [--size 2048] [--workers 4]

Each image has two organelles with ground truth (nucleus, mitochondria: all five metrics), so N
images are 2N pairs. Each mode runs in a fresh child process, so its peak RSS is its own: the
parent (pairing, aggregation) and, for the parallel mode, the largest worker.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _make(root: Path, n: int, size: int) -> None:
    from preprocessing.layout import OUTPUT_SUBDIRS
    from preprocessing.ome_io import write_ome_tiff

    rng = np.random.default_rng(0)
    for i in range(n):
        name = f"image_{i}_BF_z0.ome.tiff"
        for organelle in ("nucleus", "mitochondria"):
            gt = rng.gamma(2.0, 3000.0, (size, size)).clip(0, 65535).astype(np.uint16)
            pred = (gt * 0.7 + rng.normal(2000, 800, gt.shape)).clip(0, 65535).astype(np.uint16)
            write_ome_tiff(root / "gt" / OUTPUT_SUBDIRS[organelle] / name, gt, channel_name=organelle)
            write_ome_tiff(root / "pred" / OUTPUT_SUBDIRS[organelle] / name, pred, channel_name=organelle)


def _child(root: Path, workers: int) -> None:
    from metrics.score import ScoreConfig, score_folder

    start = time.perf_counter()
    run = score_folder(root / "pred", root / "gt", config=ScoreConfig(workers=workers, progress=False))
    seconds = time.perf_counter() - start
    assert not run.errors and not run.pairing.missing, run.problems  # tubulin/actin outputs are not written
    kib = lambda who: resource.getrusage(who).ru_maxrss  # noqa: E731  (Linux: KiB)
    cpu = sum(u.ru_utime + u.ru_stime for u in map(resource.getrusage, (resource.RUSAGE_SELF,
                                                                       resource.RUSAGE_CHILDREN)))
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "images": len(run.pairing.images),
                      "peak_self_mib": kib(resource.RUSAGE_SELF) / 1024,
                      "peak_worker_mib": kib(resource.RUSAGE_CHILDREN) / 1024}))


def _one_pair_breakdown(size: int) -> dict[str, float]:
    from metrics import challenge as c

    rng = np.random.default_rng(1)
    gt = rng.gamma(2.0, 3000.0, (size, size)).astype(np.float32)
    pred = (gt * 0.7 + rng.normal(2000, 800, gt.shape)).astype(np.float32)
    times = {}
    t = time.process_time()
    g, p = c.percentile_normalise(gt), c.percentile_normalise(pred)
    times["normalise x2"] = time.process_time() - t
    for name, fn in (("PCC", c.pcc), ("SSIM", c.ssim), ("MAE", c.mae), ("E_dist", c.euclidean_distance),
                     ("C_dist", c.cosine_distance)):
        t = time.process_time()
        fn(g, p)
        times[name] = time.process_time() - t
    return times


def main() -> None:
    from metrics.score import default_workers

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=8, help="images (2 organelle pairs each)")
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.workers)
        return
    with tempfile.TemporaryDirectory(prefix="bench_metrics_") as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        _make(root, args.n, args.size)
        print(f"wrote {args.n} images x 2 organelles of {args.size}x{args.size} uint16 in "
              f"{time.perf_counter() - t:.1f} s")
        rows = {}
        for label, workers in (("serial", 1), (f"parallel ({args.workers} workers)", args.workers)):
            out = subprocess.run([sys.executable, "-m", "benchmarks.bench_metrics", "--child", str(root),
                                  "--workers", str(workers)], check=True, capture_output=True, text=True)
            rows[label] = json.loads(out.stdout.strip().splitlines()[-1])
    serial = rows["serial"]["seconds"]
    print(f"{'mode':<24}{'seconds':>9}{'s/image':>9}{'speed-up':>10}{'CPU s':>8}{'peak main MiB':>15}"
          f"{'peak worker MiB':>17}")
    for label, r in rows.items():
        worker = f"{r['peak_worker_mib']:.0f}" if "parallel" in label else "-"
        print(f"{label:<24}{r['seconds']:>9.2f}{r['seconds'] / r['images']:>9.2f}{serial / r['seconds']:>10.2f}"
              f"{r['cpu_seconds']:>8.1f}{r['peak_self_mib']:>15.0f}{worker:>17}")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs "
          "(above the CPU count, wall times measure the neighbours too)")
    print(f"one {args.size}^2 pair, float64, CPU seconds by step: "
          + ", ".join(f"{k} {v:.3f}" for k, v in _one_pair_breakdown(args.size).items()))


if __name__ == "__main__":
    main()
