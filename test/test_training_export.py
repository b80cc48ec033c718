"""training/export.py: a run becomes a strict-loading checkpoint and a validated manifest."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from models.registry import Manifest, ManifestError, load_checkpoint
from training.checkpointing import load_module_state, load_training_checkpoint
from training.export import export_run, main, parse_routes
from training.toy_studies import write_toy_studies
from training.train_pix2pix import PIX2PIX_LOSS, Pix2PixFamily
from training.train_vqgan import VQGAN_LOSS, VQGANFamily
from training.trainer import TrainConfig, train


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("export")
    root = write_toy_studies(tmp / "data", studies=2, fovs_per_study=3, size=32, z_slices=1, modality="PC")
    common = dict(data=str(root), preset="tiny", steps=3, batch_size=2, val_every=3, val_items=2,
                  val_crop=32, progress=False, note="toy studies")
    train(TrainConfig(out=str(tmp / "p2p"), crop=32, loss=replace(PIX2PIX_LOSS, disc_preset="tiny"),
                      **common), Pix2PixFamily())
    train(TrainConfig(out=str(tmp / "vq"), crop=16, organelles=("actin",),
                      loss=replace(VQGAN_LOSS, disc_preset="tiny", gan_weight=0.0), **common),
          VQGANFamily({"n_embed": 16}))
    yield tmp
    torch.set_num_threads(before)


def test_parse_routes_expands_wildcards():
    assert parse_routes(["BF:nucleus,pc:actin"]) == [("BF", "nucleus"), ("PC", "actin")]
    assert len(parse_routes(["*:*"])) == 12 and len(parse_routes(["DIC:*", "DIC:actin"])) == 4
    with pytest.raises(ValueError, match="unknown organelle"):
        parse_routes(["BF:golgi"])


def test_export_builds_a_manifest_that_loads_strictly(runs, tmp_path):
    weights = tmp_path / "weights"
    path, missing = export_run(runs / "p2p", "p2p_pc", weights, routes=parse_routes(["*:*"]))
    assert missing == []
    loaded = load_checkpoint(path)
    spec = loaded.spec
    assert spec.arch == "pix2pix" and spec.organelles == ("nucleus", "mitochondria", "tubulin", "actin")
    assert spec.modalities == ("PC",) and spec.input_norm == {"kind": "percentile", "low": 2.0, "high": 99.8}
    assert spec.window == 32 and spec.size_divisor == 4 and "toy studies" in spec.note
    # the exported model computes what the trained generator computes
    state = load_training_checkpoint(runs / "p2p" / "best.pt")
    trained = Pix2PixFamily().build(loaded.model.config)
    load_module_state(trained, state["generator"])
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), trained.eval()(x), rtol=0, atol=0)

    # a second export replaces actin routes with a VQGAN, in fp16, and keeps the rest
    path_vq, missing = export_run(runs / "vq", "vq_actin", weights, routes=parse_routes(["*:actin"]),
                                  half=True)
    assert missing == []
    manifest = Manifest.load(weights / "manifest.json")
    assert manifest.resolve("BF", "actin") == ["vq_actin"] and manifest.resolve("DIC", "nucleus") == ["p2p_pc"]
    assert load_checkpoint(path_vq).spec.organelles == ("actin",)
    # an ensemble entry appends
    export_run(runs / "p2p", "p2p_again", weights, add_routes=[("PC", "actin")])
    assert Manifest.load(weights / "manifest.json").resolve("PC", "actin") == ["vq_actin", "p2p_again"]


def test_incomplete_manifest_is_written_and_reported(runs, tmp_path, capsys):
    weights = tmp_path / "w"
    assert main(["--run", str(runs / "vq"), "--name", "vq", "--weights", str(weights),
                 "--route", "BF:actin"]) == 0
    assert "manifest incomplete" in capsys.readouterr().out
    data = json.loads((weights / "manifest.json").read_text())
    assert data["routes"] == {"BF": {"actin": ["vq"]}} and "vq" in data["checkpoints"]
    with pytest.raises(ManifestError, match="does not resolve|no routes"):
        Manifest.load(weights / "manifest.json")
    # routing an organelle the checkpoint does not predict is refused
    assert main(["--run", str(runs / "vq"), "--name", "vq", "--weights", str(weights),
                 "--route", "BF:nucleus"]) == 2
    assert "predicts only" in capsys.readouterr().err
    assert main(["--run", str(tmp_path / "nothing"), "--name", "x", "--weights", str(weights)]) == 2
