"""The shipped generators under PyTorch and under ONNX Runtime on this CPU, side by side.

    python -m benchmarks.bench_onnx [--batch 8] [--tile 256] [--threads 2] [--repeats 3]

For the data behind a CPU inference backend (issue 17): each checkpoint of weights/ is exported
to ONNX in memory (the quantiser with its whole distance matrix, so the graph has no size-bound
loop), then the same random batch of tiles is run by both, alternately; prints the export time,
the largest output difference and the median time of each with their ratio. Nothing here is used
by the container yet.
"""
from __future__ import annotations

import argparse
import io
import statistics
import time
import warnings

import numpy as np
import torch

from models.quantizer import whole_distance_matrix
from models.registry import Manifest, load_checkpoint


def to_onnx(model: torch.nn.Module, example: torch.Tensor) -> bytes:
    buffer = io.BytesIO()
    with whole_distance_matrix(model), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")       # the tracer's notes on Python-side shape checks
        torch.onnx.export(model, (example,), buffer, input_names=["x"], output_names=["y"], opset_version=17,
                          dynamic_axes={"x": {0: "batch", 2: "h", 3: "w"}, "y": {0: "batch", 2: "h", 3: "w"}},
                          dynamo=False)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default="weights")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
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
        session = ort.InferenceSession(to_onnx(model, x[:1]), options, providers=["CPUExecutionProvider"])
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
