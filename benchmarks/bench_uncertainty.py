"""Do the spread maps (process.py --uncertainty) point at the errors, and what do they cost?

    python -m benchmarks.bench_uncertainty [--set quick|development] [--limit N] [--tta rot4]

On a held-out benchmark set (decisions only: never the test set), every TL image is predicted by
the shipped weights with the spread maps (inference/pipeline.predict_image(spread=True)), and per
image and organelle with ground truth:
- rho: Spearman's rank correlation of the spread with the absolute error |pred - gt|, both as the
  challenge sees them (percentile-normalised); 0 means the map says nothing about where errors are;
- top-decile ratio: mean absolute error on the 10 % of pixels with the largest spread over the mean
  absolute error on the rest (above 1: the map finds the worse pixels).
Means come with cluster-bootstrap 95 % intervals over studies (metrics/bootstrap.py). The cost is
the wall time of the first image with and without the maps, run alternately (twice each).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from inference.inputs import load_input
from inference.pipeline import predict_image
from inference.settings import TTA_MODES, InferenceSettings
from metrics.bootstrap import cluster_bootstrap_mean
from metrics.challenge import percentile_normalise
from models.registry import Manifest, ModelStore
from preprocessing.layout import index_studies
from preprocessing.ome_io import read_ome_tiff

# Every 4th pixel each way: the correlation of a 1024² image needs no million-point sort.
_STRIDE = 4


def spread_vs_error(spread: np.ndarray, prediction: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(Spearman rho of spread and |error|, mean error of the top spread decile / of the rest)."""
    error = np.abs(percentile_normalise(prediction) - percentile_normalise(truth))[::_STRIDE, ::_STRIDE].ravel()
    spread = spread[::_STRIDE, ::_STRIDE].ravel()
    if np.ptp(spread) == 0 or np.ptp(error) == 0:
        return float("nan"), float("nan")
    rho = float(spearmanr(spread, error).statistic)
    top = spread >= np.quantile(spread, 0.9)
    rest = error[~top].mean()
    return rho, float(error[top].mean() / rest) if rest > 0 and (~top).any() else float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", dest="set_name", default="quick", choices=("quick", "development"))
    parser.add_argument("--work", type=Path, default=Path("data/benchmark"))
    parser.add_argument("--weights", type=Path, default=Path("weights"))
    parser.add_argument("--tta", choices=TTA_MODES, default="rot4")
    parser.add_argument("--limit", type=int, default=None, help="at most this many TL images (in name order)")
    args = parser.parse_args(argv)

    from benchmarks.heldout.build import build_set
    from benchmarks.heldout.run import resolve
    plan, numbers = resolve(args.set_name)
    studies = build_set(plan, args.work / plan.purpose / "studies", numbers, progress=False)
    fields = [f for f in index_studies(studies) if numbers is None or int(f.study.split("_")[-1]) in numbers]
    slices = [(f, path) for f in fields for _, path in sorted(f.slices.items())][:args.limit]
    manifest = Manifest.load(args.weights / "manifest.json")
    settings = InferenceSettings(tta=args.tta)
    store = ModelStore(manifest, device=settings.torch_device())

    rows: dict[str, list[tuple[float, float, str]]] = {}
    start = time.perf_counter()
    for fov, path in slices:
        image, _ = load_input(path)
        prediction = predict_image(image, manifest, store, settings, spread=True)
        for organelle, gt_path in fov.ground_truth.items():
            rho, ratio = spread_vs_error(prediction.spread[organelle], prediction.organelles[organelle],
                                         read_ome_tiff(gt_path).array)
            rows.setdefault(organelle, []).append((rho, ratio, fov.study))
    print(f"{len(slices)} TL images of the {args.set_name} set, tta {args.tta}, "
          f"{time.perf_counter() - start:.0f} s")
    print("| organelle | images | studies | Spearman rho (95 % CI) | top-decile error ratio (95 % CI) |")
    print("|---|---|---|---|---|")
    for organelle, values in sorted(rows.items()):
        rho, ratio, clusters = (list(v) for v in zip(*values))
        a, b = cluster_bootstrap_mean(rho, clusters), cluster_bootstrap_mean(ratio, clusters)
        print(f"| {organelle} | {a.n_images} | {a.n_clusters} | {a.mean:.3f} ({a.low:.3f} to {a.high:.3f}) "
              f"| {b.mean:.2f} ({b.low:.2f} to {b.high:.2f}) |")

    image, _ = load_input(slices[0][1])
    seconds = {False: [], True: []}
    for spread in (False, True, False, True):
        tick = time.perf_counter()
        predict_image(image, manifest, store, settings, spread=spread)
        seconds[spread].append(time.perf_counter() - tick)
    print(f"cost on {slices[0][1].name} ({image.shape[0]}x{image.shape[1]}): without maps "
          f"{min(seconds[False]):.1f} s, with {min(seconds[True]):.1f} s "
          f"(ratio {min(seconds[True]) / min(seconds[False]):.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
