"""ONNX Runtime as the generators' CPU backend: the pipeline's outputs as under torch (within 1e-4),
the export cached by checkpoint hash, and one-line refusals when it cannot run."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from test_inference_support import tl_array, weights_dir, write_tl  # noqa: F401

import process
from inference.pipeline import InferenceSettings, predict_image
from models.registry import Manifest, ModelStore
from preprocessing.ome_io import ORGANELLES, OmeImage

pytest.importorskip("onnxruntime", reason="onnxruntime not installed (requirements-dev.txt)")
from inference.onnx_backend import OnnxModelStore, onnx_bytes  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _image(modality: str) -> OmeImage:
    return OmeImage(path=Path("x.tiff"), array=tl_array((40, 56)).astype(np.float32),
                    modality=modality, pixel_size_um=(0.1, 0.1), ome_xml=None, dtype=np.dtype(np.uint16))


@pytest.mark.parametrize("modality, tta", [("BF", "rot4"), ("DIC", "none")])   # pix2pix + VQGAN ensemble; VQGAN
def test_the_pipeline_gives_the_same_predictions_under_onnx(weights_dir, tmp_path, modality, tta):  # noqa: F811
    manifest = Manifest.load(weights_dir / "manifest.json")
    torch_store = ModelStore(manifest, device="cpu")
    onnx_store = OnnxModelStore(ModelStore(manifest, device="cpu"), cache=tmp_path / "cache")
    settings = InferenceSettings(tta=tta, device="cpu")
    expected = predict_image(_image(modality), manifest, torch_store, settings)
    got = predict_image(_image(modality), manifest, onnx_store, settings)
    assert got.models_used == expected.models_used
    for organelle in ORGANELLES:
        assert float(np.abs(got.organelles[organelle] - expected.organelles[organelle]).max()) < 1e-4


def test_the_export_is_cached_by_checkpoint_hash(weights_dir, tmp_path):  # noqa: F811
    store = ModelStore(Manifest.load(weights_dir / "manifest.json"), device="cpu")
    checkpoint = store.get("vq")
    first = onnx_bytes(checkpoint, tmp_path)
    (cached,) = tmp_path.glob("*.onnx")
    assert cached.name.startswith(checkpoint.sha256) and cached.read_bytes() == first
    cached.write_bytes(b"sentinel")                    # a second call reads the cache, not the model
    assert onnx_bytes(checkpoint, tmp_path) == b"sentinel"
    assert onnx_bytes(checkpoint, None) == first        # no cache: exported again, the same graph


def test_process_runs_with_the_onnx_backend_and_records_it(weights_dir, tmp_path, monkeypatch, caplog):  # noqa: F811
    import json
    monkeypatch.setenv("LMC_ONNX_CACHE", str(tmp_path / "cache"))
    write_tl(tmp_path / "in" / "a.tiff", tl_array((24, 24)), modality="BF")
    caplog.set_level(logging.INFO)
    argv = ["--input", str(tmp_path / "in"), "--weights", str(weights_dir), "--device", "cpu", "--tta", "none", "--quiet"]
    assert process.main([*argv, "--output", str(tmp_path / "out"), "--backend", "onnx"]) == 0
    assert "backend onnx" in caplog.text
    assert json.loads((tmp_path / "out" / "run_info.json").read_text())["backend"] == "onnx"
    assert len(list((tmp_path / "out").glob("images/*/a.tiff"))) == 4


def test_onnx_without_onnxruntime_or_on_cuda_is_one_line_before_any_image(weights_dir, tmp_path, monkeypatch,  # noqa: F811
                                                                           caplog):
    import builtins

    import torch
    write_tl(tmp_path / "in" / "a.tiff", tl_array((24, 24)))
    argv = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--weights", str(weights_dir),
            "--quiet", "--backend", "onnx"]
    real_import = builtins.__import__

    def no_onnxruntime(name, *args, **kwargs):
        if name == "onnxruntime":
            raise ImportError("not here")
        return real_import(name, *args, **kwargs)
    monkeypatch.setattr(builtins, "__import__", no_onnxruntime)
    assert process.main([*argv, "--device", "cpu"]) == 2
    assert "--backend onnx needs onnxruntime" in caplog.text and not (tmp_path / "out").exists()
    monkeypatch.setattr(builtins, "__import__", real_import)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    caplog.clear()
    assert process.main([*argv, "--device", "cuda"]) == 2
    assert "--backend onnx runs on the CPU" in caplog.text


def test_auto_picks_onnx_on_the_cpu_and_torch_without_it(weights_dir, tmp_path, monkeypatch, caplog):  # noqa: F811
    import inference.onnx_backend as backend
    monkeypatch.setenv("LMC_ONNX_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("LMC_BACKEND", "auto")          # the container's setting
    write_tl(tmp_path / "in" / "a.tiff", tl_array((24, 24)))
    argv = ["--input", str(tmp_path / "in"), "--weights", str(weights_dir), "--device", "cpu", "--tta", "none", "--quiet"]
    caplog.set_level(logging.INFO)
    assert process.main([*argv, "--output", str(tmp_path / "a")]) == 0
    assert "backend onnx" in caplog.text
    monkeypatch.setattr(backend, "available", lambda: False)
    caplog.clear()
    assert process.main([*argv, "--output", str(tmp_path / "b")]) == 0
    assert "backend torch" in caplog.text


def test_the_cli_bakes_every_checkpoint_into_the_cache(weights_dir, tmp_path, capsys):  # noqa: F811
    from inference.onnx_backend import main
    assert main(["--weights", str(weights_dir), "--cache", str(tmp_path / "cache")]) == 0
    manifest = Manifest.load(weights_dir / "manifest.json")
    assert len(list((tmp_path / "cache").glob("*.onnx"))) == len(manifest.checkpoints)
    assert capsys.readouterr().out.count("ONNX in") == len(manifest.checkpoints)


def test_the_python_api_takes_the_backend(tmp_path, monkeypatch):
    from inference import predict
    monkeypatch.setenv("LMC_ONNX_CACHE", str(tmp_path / "cache"))
    image = tl_array((48, 64))
    by_torch = predict(image, modality="PC", pixel_size_um=0.2, tta="none", device="cpu")
    by_onnx = predict(image, modality="PC", pixel_size_um=0.2, tta="none", device="cpu", backend="onnx")
    for organelle in ORGANELLES:
        assert float(np.abs(by_onnx[organelle] - by_torch[organelle]).max()) < 1e-4
    with pytest.raises(ValueError, match="backend must be"):
        predict(image, backend="tensorrt")
