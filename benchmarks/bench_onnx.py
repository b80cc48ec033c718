"""The shipped generators under PyTorch and under ONNX Runtime on this CPU, side by side.

    python -m benchmarks.bench_onnx [--batch 8] [--tile 256] [--threads 2] [--repeats 3]
    python -m benchmarks.bench_onnx --pipeline [--tta rot4]

Per checkpoint: each checkpoint of weights/ is exported to ONNX in memory (inference/onnx_backend.py),
then the same random batch of tiles is run by both, alternately; prints the export time, the
largest output difference and the median time of each with their ratio.
--pipeline: whole images instead (the BF, PC and DIC slices of test/studies, the shipped routes,
windows, TTA and calibration), predicted by inference.pipeline.predict_image with the torch and
the ONNX model store alternately (exports done before timing, as with a warm cache); prints the
seconds per image and the largest difference of the four outputs.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from inference.onnx_backend import export_onnx
from models.registry import Manifest, load_checkpoint


def pipeline(args) -> int:
    from pathlib import Path

    from inference.inputs import load_input
    from inference.onnx_backend import OnnxModelStore
    from inference.pipeline import predict_image
    from inference.settings import InferenceSettings
    from models.registry import ModelStore
    torch.set_num_threads(args.threads)
    manifest = Manifest.load(f"{args.weights}/manifest.json")
    stores = {"torch": ModelStore(manifest, device="cpu")}
    stores["onnx"] = OnnxModelStore(ModelStore(manifest, device="cpu"), threads=args.threads, cache=None)
    settings = InferenceSettings(tta=args.tta, device="cpu")
    root = Path(__file__).resolve().parents[1] / "test" / "studies"
    paths = [next(root.glob(f"Study_*/image_*_{m}_z*.ome.tiff")) for m in ("BF", "PC", "DIC")]
    print(f"whole images, tta {args.tta}, {args.threads} threads, median of {args.repeats} alternating runs")
    print("| image | shape | torch s | onnx s | torch / onnx | max output difference |")
    print("|---|---|---|---|---|---|")
    for path in paths:
        image, _ = load_input(path)
        outputs = {name: predict_image(image, manifest, store, settings).organelles for name, store in stores.items()}
        times: dict[str, list[float]] = {"torch": [], "onnx": []}
        for _ in range(args.repeats):
            for name, store in stores.items():
                start = time.perf_counter()
                predict_image(image, manifest, store, settings)
                times[name].append(time.perf_counter() - start)
        difference = max(float(np.abs(outputs["torch"][o] - outputs["onnx"][o]).max()) for o in outputs["torch"])
        t, o = statistics.median(times["torch"]), statistics.median(times["onnx"])
        print(f"| {path.name} | {image.shape[0]}x{image.shape[1]} | {t:.2f} | {o:.2f} | {t / o:.2f} | {difference:.2g} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="weights")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pipeline", action="store_true", help="whole images through the pipeline")
    parser.add_argument("--tta", default="rot4")
    args = parser.parse_args(argv)
    if args.pipeline:
        return pipeline(args)
    import onnxruntime as ort
    torch.set_num_threads(args.threads)
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    x = torch.randn(args.batch, 1, args.tile, args.tile, generator=torch.Generator().manual_seed(0))
    print(f"batch {args.batch} x {args.tile}², {args.threads} threads, torch {torch.__version__}, "
          f"onnxruntime {ort.__version__}")
    print("| checkpoint | export s | max |torch - onnx| | torch s | onnx s | torch / onnx |")
    print("|---|---|---|---|---|---|")
    for name in Manifest.load(f"{args.weights}/manifest.json").checkpoints:
        model = load_checkpoint(f"{args.weights}/{name}.pt").model.eval()
        start = time.perf_counter()
        session = ort.InferenceSession(export_onnx(model, 1, args.tile), options, providers=["CPUExecutionProvider"])
        export = time.perf_counter() - start
        with torch.no_grad():
            reference = model(x).numpy()
        difference = float(np.abs(session.run(None, {"x": x.numpy()})[0] - reference).max())
        times: dict[str, list[float]] = {"torch": [], "onnx": []}
        for _ in range(args.repeats):
            start = time.perf_counter()
            with torch.no_grad():
                model(x)
            times["torch"].append(time.perf_counter() - start)
            start = time.perf_counter()
            session.run(None, {"x": x.numpy()})
            times["onnx"].append(time.perf_counter() - start)
        t, o = statistics.median(times["torch"]), statistics.median(times["onnx"])
        print(f"| {name} | {export:.1f} | {difference:.2g} | {t:.2f} | {o:.2f} | {t / o:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
