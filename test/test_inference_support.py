"""Shared builders for the inference and process tests (tiny real checkpoints, TL files). No tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.pix2pix import Pix2PixConfig, Pix2PixGenerator
from models.registry import CheckpointSpec, LoadedCheckpoint, save_checkpoint, write_manifest
from models.vqgan import VQGAN, VQGANConfig
from preprocessing.ome_io import MODALITIES, ORGANELLES, write_ome_tiff

NORM = {"kind": "percentile", "low": 2.0, "high": 99.8}


def build_weights(folder: Path) -> Path:
    """weights/ with a 4-organelle tiny pix2pix (pixel 0.1 µm) and a 1-organelle tiny VQGAN.

    BF nucleus is an ensemble of both; DIC nucleus is the VQGAN alone; everything else pix2pix.
    """
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    p2p = Pix2PixGenerator(Pix2PixConfig.preset("tiny"))
    save_checkpoint(folder / "p2p.pt", p2p, CheckpointSpec(
        arch="pix2pix", config=p2p.config, organelles=ORGANELLES, modalities=("BF", "PC"),
        input_norm=NORM, pixel_size_um=0.1, window=32, size_divisor=4, note="untrained test model"))
    vq = VQGAN(VQGANConfig.preset("tiny"))
    save_checkpoint(folder / "vq.pt", vq, CheckpointSpec(
        arch="vqgan", config=vq.config, organelles=("nucleus",), modalities=("DIC",),
        input_norm=NORM, pixel_size_um=None, window=32, size_divisor=4, note="untrained test model"))
    routes = {m: {o: ["p2p"] for o in ORGANELLES} for m in MODALITIES}
    routes["BF"]["nucleus"] = ["p2p", "vq"]
    routes["DIC"]["nucleus"] = ["vq"]
    write_manifest(folder / "manifest.json", {"p2p": "p2p.pt", "vq": "vq.pt"}, routes, fallback_modality="BF")
    return folder


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory) -> Path:
    return build_weights(tmp_path_factory.mktemp("weights"))


def tl_array(shape=(64, 80), seed=0) -> np.ndarray:
    """A smooth-ish uint16 TL-like plane (blobs on a gradient) so resampling is meaningful."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    plane = 20000 + 50 * yy + 30 * xx
    for _ in range(6):
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        plane += 15000 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 6.0 ** 2))
    return np.clip(plane, 0, 65535).astype(np.uint16)


def write_tl(path: Path, array: np.ndarray, modality: str | None = "BF",
             pixel_size_um: tuple[float, float] | None = (0.1, 0.1)) -> Path:
    return write_ome_tiff(path, array, channel_name=modality or "unknown", pixel_size_um=pixel_size_um)


class IdentityModel(torch.nn.Module):
    """Returns its input: through normalisation, windows, TTA and range mapping, the pipeline must
    then output the percentile-normalised input clipped to [0, 1]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :1].expand(-1, 4, -1, -1)


class WindowCounter(torch.nn.Module):
    """Predicts one constant per call, its call number: with batch 1 and no TTA, one constant per
    window, so a blended output shows exactly where windows start, end and overlap."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.full_like(x, float(self.calls))


class DictStore:
    """A ModelStore stand-in serving hand-made LoadedCheckpoints (for models outside the registry)."""

    def __init__(self, checkpoints: dict[str, LoadedCheckpoint]):
        self.checkpoints = checkpoints
        self.calls: list[str] = []

    def get(self, name: str) -> LoadedCheckpoint:
        self.calls.append(name)
        return self.checkpoints[name]


def identity_checkpoint(name: str = "p2p", pixel_size_um: float | None = None,
                        window: int = 32) -> LoadedCheckpoint:
    spec = CheckpointSpec(arch="pix2pix", config={"in_channels": 1, "out_channels": 4},
                          organelles=ORGANELLES, modalities=("BF",), input_norm=NORM,
                          pixel_size_um=pixel_size_um, window=window, size_divisor=4)
    return LoadedCheckpoint(name=name, path=Path(f"{name}.pt"), sha256="0" * 64, spec=spec,
                            model=IdentityModel().eval())
