"""training/bioimageio_export.py: the shipped checkpoints as BioImage Model Zoo packages that pass
bioimage.io's own model test (bioimageio.core.test_model) on this CPU."""
from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import models.quantizer
from models.registry import Manifest, build_model, load_checkpoint
from models.vqgan import VQGANConfig
from preprocessing.normalization import normalise
from training import bioimageio_export
from training.export import main as export_main

pytest.importorskip("bioimageio.core", reason="bioimageio.core is not installed (pip install -r requirements-dev.txt)")
from bioimageio.core import test_model as bioimageio_test_model  # noqa: E402  (not collected by pytest)
from ruyaml import YAML  # noqa: E402  (bioimageio.spec's YAML library)

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
SMALLEST = "p2p_bf_bilinear_structure_small"   # a smallest file (4.5 MB), the quickest bioimage.io test (8 to 35 s here)


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bioimageio")
    assert export_main(["--bioimageio", "--weights", str(WEIGHTS), "--out", str(out),
                        "--only", SMALLEST, "--license", "MIT"]) == 0
    return out / f"{SMALLEST}.zip"


def _yaml(text: bytes) -> dict:
    return YAML(typ="safe").load(text.decode())


def _failures(summary) -> list[str]:
    return [f"{d.name}: {[e.msg for e in d.errors]}" for d in summary.details if d.status == "failed"]


def test_package_passes_bioimageio_model_test(package):
    summary = bioimageio_test_model(package)
    assert summary.status == "passed", _failures(summary)
    # Both weight formats were tested, each reproducing the output our own code computed.
    names = [d.name for d in summary.details if d.status == "passed"]
    for weights in ("torchscript", "pytorch_state_dict"):
        assert f"Reproduce test outputs from test inputs ({weights})" in names


def test_package_describes_our_normalisation_and_the_honest_note(package):
    with zipfile.ZipFile(package) as z:
        rdf = _yaml(z.read("rdf.yaml"))
        readme = z.read("README.md").decode()
        assert "## What the shipped weights are" in z.read("project_README.md").decode()
        test_input = np.load(z.open("test_input.npy"))
        torchscript = torch.jit.load(z.open("weights.torchscript.pt"))
    spec = load_checkpoint(WEIGHTS / f"{SMALLEST}.pt").spec
    (raw,), (prediction,) = rdf["inputs"], rdf["outputs"]
    steps = {p["id"]: p.get("kwargs", {}) for p in raw["preprocessing"]}
    assert steps["scale_range"]["min_percentile"] == spec.input_norm["low"]
    assert steps["scale_range"]["max_percentile"] == spec.input_norm["high"]
    assert steps["scale_linear"] == {"gain": 2.0, "offset": -1.0}
    sizes = {a.get("id", a["type"]): a for a in raw["axes"]}
    assert sizes["y"]["size"] == {"min": spec.window, "step": spec.size_divisor}
    assert sizes["x"]["scale"] == spec.pixel_size_um
    assert [c for a in prediction["axes"] if a["type"] == "channel" for c in a["channel_names"]] \
        == list(spec.organelles)
    assert "simulated" in rdf["description"].lower() and "SIMULATED" in readme
    assert "BF -> nucleus" in readme            # the routes this checkpoint serves

    # scale_range (p_low -> 0, p_high -> 1) then 2x - 1 is our normalise() up to its eps.
    x = test_input[0, 0].astype(np.float64)
    p_low, p_high = np.percentile(x, [spec.input_norm["low"], spec.input_norm["high"]])
    ours, _ = normalise(test_input[0, 0], spec.input_norm)
    np.testing.assert_allclose(2 * (x - p_low) / (p_high - p_low + 1e-6) - 1, ours, atol=1e-5)
    # TorchScript equals the eager model on the test tensor.
    eager = load_checkpoint(WEIGHTS / f"{SMALLEST}.pt").model
    with torch.no_grad():
        t = torch.from_numpy(ours)[None, None]
        assert float((torchscript(t) - eager(t)).abs().max()) < 1e-4


def test_architecture_file_builds_the_model_without_this_project(package, tmp_path):
    with zipfile.ZipFile(package) as z:
        z.extract(bioimageio_export.ARCHITECTURE_FILE, tmp_path)
        rdf = _yaml(z.read("rdf.yaml"))
    kwargs = rdf["weights"]["pytorch_state_dict"]["architecture"]["kwargs"]
    # Isolated interpreter (-I: no PYTHONPATH, no cwd on sys.path), so `models` cannot be imported.
    code = ("import runpy, sys; m = runpy.run_path(sys.argv[1]); "
            f"net = m['lmc_generator'](**{kwargs!r}); "
            "assert 'models' not in sys.modules; print(sum(p.numel() for p in net.parameters()))")
    done = subprocess.run([sys.executable, "-I", "-c", code, str(tmp_path / bioimageio_export.ARCHITECTURE_FILE)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    eager = load_checkpoint(WEIGHTS / f"{SMALLEST}.pt").model
    assert int(done.stdout.split()[-1]) == sum(p.numel() for p in eager.parameters())


def test_traced_vqgan_runs_tiles_larger_than_the_traced_one():
    # A plain trace freezes the quantiser's chunk count; with many chunks per tile (small chunk
    # limit) a larger tile would fail. trace() must give the eager result at any size.
    torch.manual_seed(0)
    model = build_model("vqgan", VQGANConfig.preset("tiny")).eval()
    (quantiser,) = [m for m in model.modules() if isinstance(m, models.quantizer.VectorQuantizer)]
    quantiser.distance_chunk_elements = 64 * 16          # many chunks per tile in eager mode
    traced = bioimageio_export.trace(model, torch.randn(1, 1, 32, 32))
    assert quantiser.distance_chunk_elements == 64 * 16  # the bound is restored after the trace
    with torch.no_grad():
        x = torch.randn(2, 1, 48, 64)
        assert float((traced(x) - model(x)).abs().max()) < 1e-5


@pytest.mark.slow
def test_every_shipped_checkpoint_passes(tmp_path):
    """All six packages (1.5 min on an idle CPU here, 7 min under load)."""
    names = list(Manifest.load(WEIGHTS / "manifest.json").checkpoints)
    paths = bioimageio_export.export_all(WEIGHTS, tmp_path, license="MIT")
    assert [p.stem for p in paths] == names
    for path in paths:
        summary = bioimageio_test_model(path)
        assert summary.status == "passed", (path.name, _failures(summary))
