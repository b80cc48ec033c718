"""ONNX Runtime as the CPU backend of the generators (process.py --backend onnx).

Forward passes are nearly all of an image's time on a CPU, and ONNX Runtime runs the shipped
generators 1.7-4x faster there than PyTorch, with outputs within 5e-5 (benchmarks/bench_onnx.py).
Each checkpoint is exported from the very torch model the manifest loads (the quantiser with its
whole distance matrix, so the graph holds no size-bound loop), with the batch and both tile sides
dynamic, and cached on disk by the checkpoint's sha256 and the torch version (LMC_ONNX_CACHE, else
~/.cache/lmc-insilico/onnx; an unwritable cache only costs the export again). Everything else,
windows, TTA, blending, resampling and calibration, is the pipeline's, unchanged: the backend only
replaces `checkpoint.model` by a module that calls the session. CPU only; CUDA keeps torch.
"""
from __future__ import annotations

import dataclasses
import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.quantizer import whole_distance_matrix
from preprocessing.atomic_write import atomic_target

log = logging.getLogger(__name__)
OPSET = 17


class BackendUnavailable(RuntimeError):
    """onnxruntime (or onnx, for the export) is not installed; the message says what to install."""


def require_runtime():
    try:
        import onnx  # noqa: F401   torch's exporter writes with it
        import onnxruntime
    except ImportError as exc:
        raise BackendUnavailable("--backend onnx needs onnxruntime and onnx (pip install -r requirements.txt); "
                                 "or use --backend torch") from exc
    return onnxruntime


def available() -> bool:
    try:
        require_runtime()
    except BackendUnavailable:
        return False
    return True


def export_onnx(model: nn.Module, in_channels: int, window: int) -> bytes:
    """The model as ONNX bytes, batch and tile sides dynamic."""
    example = torch.zeros(1, in_channels, window, window)
    buffer = io.BytesIO()
    with whole_distance_matrix(model), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the tracer's notes on the models' Python-side shape checks
        torch.onnx.export(model.eval(), (example,), buffer, input_names=["x"], output_names=["y"], opset_version=OPSET,
                          dynamic_axes={"x": {0: "batch", 2: "h", 3: "w"}, "y": {0: "batch", 2: "h", 3: "w"}},
                          dynamo=False)
    return buffer.getvalue()


def default_cache() -> Path:
    return Path(os.environ.get("LMC_ONNX_CACHE") or Path.home() / ".cache" / "lmc-insilico" / "onnx")


class OnnxGenerator(nn.Module):
    """A generator run by an ONNX Runtime session: [B, C, h, w] float32 tensor in, out (CPU)."""

    def __init__(self, model_bytes: bytes, threads: int | None = None):
        super().__init__()
        ort = require_runtime()
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.session.run(None, {"x": np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)})[0]
        return torch.from_numpy(y)


def onnx_bytes(checkpoint, cache: Path | None) -> bytes:
    """The checkpoint's ONNX graph, from the cache when it holds this very checkpoint's export."""
    in_channels = int(checkpoint.spec.config.get("in_channels", 1))
    path = None if cache is None else cache / f"{checkpoint.sha256}-torch{torch.__version__}-opset{OPSET}.onnx"
    if path is not None and path.is_file():
        return path.read_bytes()
    require_runtime()
    data = export_onnx(checkpoint.model, in_channels, int(checkpoint.spec.window))
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_target(path) as tmp:
                tmp.write_bytes(data)
        except OSError as exc:
            log.info("ONNX cache %s not writable (%s): exported in memory only", cache, exc)
    return data


class OnnxModelStore:
    """A models.registry.ModelStore whose checkpoints run under ONNX Runtime (same specs, names
    and hashes; only `model` differs)."""

    def __init__(self, store, threads: int | None = None, cache: Path | None = None):
        if store.device.type != "cpu":
            raise BackendUnavailable(f"--backend onnx runs on the CPU; the device is {store.device}")
        require_runtime()
        self.store, self.threads, self.cache = store, threads, cache
        self._onnx: dict[str, object] = {}

    @property
    def manifest(self):
        return self.store.manifest

    def get(self, name: str):
        if name not in self._onnx:
            checkpoint = self.store.get(name)
            session = OnnxGenerator(onnx_bytes(checkpoint, self.cache), self.threads or torch.get_num_threads())
            self._onnx[name] = dataclasses.replace(checkpoint, model=session)
        return self._onnx[name]


def main(argv: list[str] | None = None) -> int:
    """Export every checkpoint of a weights folder into the cache (the container does it at build
    time, so no job pays for the export)."""
    import argparse

    from models.registry import Manifest, ModelStore
    parser = argparse.ArgumentParser(description="Export a weights folder's checkpoints to the ONNX cache")
    parser.add_argument("--weights", type=Path, default=Path(__file__).resolve().parent.parent / "weights")
    parser.add_argument("--cache", type=Path, default=None, help="default: LMC_ONNX_CACHE, else ~/.cache/lmc-insilico/onnx")
    args = parser.parse_args(argv)
    cache = args.cache or default_cache()
    manifest = Manifest.load(args.weights / "manifest.json")
    store = OnnxModelStore(ModelStore(manifest, device="cpu"), cache=cache)
    for name in manifest.checkpoints:
        store.get(name)
        print(f"{name}: ONNX in {cache}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
