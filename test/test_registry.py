"""Checkpoints (save -> load bit-exact, strict failures with clear messages), the routing manifest
(validation, all 12 pairs, fallback) and the model store (one load per process)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from models import manifest as manifest_module
from models.pix2pix import Pix2PixConfig, Pix2PixGenerator
from models.registry import (
    ARCHITECTURES,
    CheckpointError,
    CheckpointSpec,
    Manifest,
    ManifestError,
    ModelStore,
    build_model,
    load_checkpoint,
    read_spec,
    save_checkpoint,
    sha256_file,
    write_manifest,
)
from models.vqgan import VQGAN, VQGANConfig
from preprocessing.ome_io import MODALITIES, ORGANELLES

NORM = {"kind": "percentile", "low": 2.0, "high": 99.8}


def pix2pix_spec(model: Pix2PixGenerator, **kw) -> CheckpointSpec:
    return CheckpointSpec(arch="pix2pix", config=dataclasses.asdict(model.config),
                          organelles=ORGANELLES, modalities=("BF", "PC"), input_norm=NORM,
                          note="untrained: random weights for tests", **kw)


def vqgan_spec(model: VQGAN, organelle: str = "nucleus") -> CheckpointSpec:
    return CheckpointSpec(arch="vqgan", config=dataclasses.asdict(model.config),
                          organelles=(organelle,), modalities=("DIC",), input_norm=NORM,
                          pixel_size_um=0.1, window=128, note="untrained: random weights for tests")


@pytest.fixture
def pix2pix() -> Pix2PixGenerator:
    torch.manual_seed(0)
    return Pix2PixGenerator(Pix2PixConfig.preset("tiny", norm="batch"))


@pytest.fixture
def vqgan() -> VQGAN:
    torch.manual_seed(1)
    return VQGAN(VQGANConfig.preset("tiny"))


# ---------------------------------------------------------------- build_model

def test_build_model_from_dict_or_dataclass():
    assert set(ARCHITECTURES) == {"vqgan", "pix2pix"}
    config = VQGANConfig.preset("tiny", out_channels=2)
    from_dict = build_model("vqgan", json.loads(json.dumps(dataclasses.asdict(config))))
    assert isinstance(from_dict, VQGAN) and from_dict.config == config   # list -> tuple restored
    assert isinstance(build_model("pix2pix", Pix2PixConfig.preset("tiny")), Pix2PixGenerator)
    with pytest.raises(ValueError, match="unknown architecture 'unet'"):
        build_model("unet", {})
    with pytest.raises(ValueError, match=r"unknown fields \['depth'\]"):
        build_model("pix2pix", {"depth": 3})


# ---------------------------------------------------------------- round trip

def test_round_trip_is_bit_exact(tmp_path, pix2pix, vqgan):
    for model, spec in ((pix2pix, pix2pix_spec(pix2pix, pixel_size_um=0.08)), (vqgan, vqgan_spec(vqgan))):
        # Non-default running stats must survive too (batch norm buffers).
        model.train()
        with torch.no_grad():
            model(torch.randn(2, model.config.in_channels, 16, 16))
        model.eval()
        path = tmp_path / f"{spec.arch}.pt"
        digest = save_checkpoint(path, model, spec)
        assert digest == sha256_file(path)
        loaded = load_checkpoint(path)
        assert loaded.name == spec.arch and loaded.sha256 == digest and loaded.path == path
        assert loaded.spec == spec
        assert not loaded.model.training
        original, restored = model.state_dict(), loaded.model.state_dict()
        assert original.keys() == restored.keys()
        for key in original:
            assert torch.equal(original[key], restored[key]), key
        x = torch.randn(1, model.config.in_channels, 24, 32)
        with torch.inference_mode():
            assert torch.equal(model(x), loaded.model(x))


def test_half_precision_file(tmp_path, vqgan):
    full, half = tmp_path / "full.pt", tmp_path / "half.pt"
    save_checkpoint(full, vqgan, vqgan_spec(vqgan))
    save_checkpoint(half, vqgan, vqgan_spec(vqgan), half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    assert torch.load(half, weights_only=True)["weights_dtype"] == "float16"
    loaded = load_checkpoint(half, name="h")
    assert loaded.name == "h"
    for key, value in vqgan.state_dict().items():
        got = loaded.model.state_dict()[key]
        assert got.dtype == value.dtype                          # fp32 model again
        assert torch.equal(got, value.half().float() if value.is_floating_point() else value)


def test_save_refuses_a_spec_that_does_not_describe_the_model(tmp_path, pix2pix, vqgan):
    path = tmp_path / "x.pt"
    with pytest.raises(ValueError, match="spec says 'vqgan'"):
        save_checkpoint(path, pix2pix, dataclasses.replace(vqgan_spec(vqgan)))
    other = dataclasses.asdict(Pix2PixConfig.preset("tiny", ngf=4))
    with pytest.raises(ValueError, match="differs from the model's config"):
        save_checkpoint(path, pix2pix, dataclasses.replace(pix2pix_spec(pix2pix), config=other))
    with pytest.raises(ValueError, match="4 output channels"):
        save_checkpoint(path, pix2pix, dataclasses.replace(pix2pix_spec(pix2pix), organelles=("actin",)))
    with pytest.raises(ValueError, match="unknown organelles"):
        save_checkpoint(path, vqgan, dataclasses.replace(vqgan_spec(vqgan), organelles=("golgi",)))
    with pytest.raises(ValueError, match="unknown modalities"):
        save_checkpoint(path, vqgan, dataclasses.replace(vqgan_spec(vqgan), modalities=("SEM",)))
    with pytest.raises(ValueError, match="window 130"):
        save_checkpoint(path, vqgan, dataclasses.replace(vqgan_spec(vqgan), window=130))
    with pytest.raises(ValueError, match="percentiles"):
        save_checkpoint(path, vqgan, dataclasses.replace(
            vqgan_spec(vqgan), input_norm={"kind": "percentile", "low": 99.0, "high": 2.0}))
    assert not path.exists()


# ---------------------------------------------------------------- strict load failures

@pytest.fixture
def saved(tmp_path, pix2pix) -> Path:
    path = tmp_path / "model.pt"
    save_checkpoint(path, pix2pix, pix2pix_spec(pix2pix))
    return path


def rewrite(path: Path, edit) -> Path:
    payload = torch.load(path, weights_only=True)
    edit(payload)
    torch.save(payload, path)
    return path


def test_load_truncated_file(saved):
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as err:
        load_checkpoint(saved)
    assert str(saved) in str(err.value)


def test_load_garbage_and_missing_files(tmp_path):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint\x00\x01" * 50)
    with pytest.raises(CheckpointError, match=f"{garbage}: not a readable checkpoint"):
        load_checkpoint(garbage)
    with pytest.raises(CheckpointError, match="file not found"):
        load_checkpoint(tmp_path / "absent.pt")


def test_load_refuses_plain_state_dict_and_pickled_code(tmp_path, pix2pix):
    plain = tmp_path / "plain.pt"
    torch.save(pix2pix.state_dict(), plain)
    with pytest.raises(CheckpointError, match="no format marker"):
        load_checkpoint(plain)
    pickled = tmp_path / "pickled.pt"
    torch.save({"format": "lmc-checkpoint", "model": pix2pix}, pickled)   # a whole module
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(pickled)                                     # weights_only refuses it


def test_load_wrong_config_names_the_shape(saved):
    rewrite(saved, lambda p: p["spec"]["config"].update(ngf=16))
    with pytest.raises(CheckpointError, match=r"has shape \(8, 1, 7, 7\), the model needs \(16, 1, 7, 7\)"):
        load_checkpoint(saved)


def test_load_wrong_arch(saved):
    rewrite(saved, lambda p: p["spec"].update(arch="vqgan"))
    with pytest.raises(CheckpointError, match="invalid spec: config for 'vqgan' has unknown fields"):
        load_checkpoint(saved)
    rewrite(saved, lambda p: p["spec"].update(arch="unet"))
    with pytest.raises(CheckpointError, match="unknown architecture 'unet'"):
        load_checkpoint(saved)


def test_load_missing_and_unexpected_keys(saved):
    rewrite(saved, lambda p: p["state_dict"].pop("encoder.1.weight"))
    with pytest.raises(CheckpointError, match=r"1 missing keys \['encoder.1.weight'\]"):
        load_checkpoint(saved)
    rewrite(saved, lambda p: p["state_dict"].update({"encoder.1.weight": torch.zeros(8, 1, 7, 7),
                                                     "extra.weight": torch.zeros(1)}))
    with pytest.raises(CheckpointError, match=r"1 unexpected keys \['extra.weight'\]"):
        load_checkpoint(saved)


def test_load_non_finite_weights_and_bad_spec(saved):
    rewrite(saved, lambda p: p["state_dict"]["encoder.1.weight"].view(-1).__setitem__(0, float("nan")))
    with pytest.raises(CheckpointError, match="encoder.1.weight contains NaN"):
        load_checkpoint(saved)
    rewrite(saved, lambda p: p["spec"].pop("organelles"))
    with pytest.raises(CheckpointError, match=r"missing fields \['organelles'\]"):
        load_checkpoint(saved)
    rewrite(saved, lambda p: p.update(format_version=7))
    with pytest.raises(CheckpointError, match="format_version 7 is not supported"):
        load_checkpoint(saved)


def test_read_spec_without_weights(saved, pix2pix):
    assert read_spec(saved) == pix2pix_spec(pix2pix)
    assert read_spec(saved).channel("tubulin") == 2


# ---------------------------------------------------------------- manifest

@pytest.fixture
def weights(tmp_path, pix2pix) -> Path:
    """A weights folder: one 4-organelle pix2pix serving everything, two VQGANs for nucleus (BF
    ensemble) and one VQGAN for DIC mitochondria."""
    folder = tmp_path / "weights"
    save_checkpoint(folder / "p2p.pt", pix2pix, pix2pix_spec(pix2pix))
    for name, organelle, seed in (("vq_nuc_a", "nucleus", 2), ("vq_nuc_b", "nucleus", 3),
                                  ("vq_mito", "mitochondria", 4)):
        torch.manual_seed(seed)
        model = VQGAN(VQGANConfig.preset("tiny"))
        save_checkpoint(folder / "sub" / f"{name}.pt", model, vqgan_spec(model, organelle))
    return folder


def full_routes() -> dict:
    routes = {m: {o: ["p2p"] for o in ORGANELLES} for m in MODALITIES}
    routes["BF"]["nucleus"] = ["vq_nuc_a", "vq_nuc_b"]
    routes["DIC"]["mitochondria"] = ["vq_mito"]
    return routes


FILES = {"p2p": "p2p.pt", "vq_nuc_a": "sub/vq_nuc_a.pt", "vq_nuc_b": "sub/vq_nuc_b.pt",
         "vq_mito": "sub/vq_mito.pt"}


@pytest.fixture
def manifest_path(weights) -> Path:
    write_manifest(weights / "manifest.json", FILES, full_routes(), fallback_modality="PC")
    return weights / "manifest.json"


def test_routes_all_12_pairs_and_fallback(manifest_path):
    manifest = Manifest.load(manifest_path)
    expected = full_routes()
    for modality in MODALITIES:
        for organelle in ORGANELLES:
            assert manifest.resolve(modality, organelle) == expected[modality][organelle]
            assert manifest.effective_modality(modality) == (modality, False)
    for unknown in (None, "XYZ", ""):
        assert manifest.effective_modality(unknown) == ("PC", True)
        for organelle in ORGANELLES:
            assert manifest.resolve(unknown, organelle) == expected["PC"][organelle]
    assert manifest.effective_modality("dic") == ("DIC", False)
    assert manifest.checkpoint_path("vq_mito") == manifest_path.parent / "sub" / "vq_mito.pt"
    assert manifest.spec("vq_mito").organelles == ("mitochondria",)
    with pytest.raises(ValueError, match="unknown organelle 'golgi'"):
        manifest.resolve("BF", "golgi")
    with pytest.raises(ManifestError, match="no checkpoint named 'nope'"):
        manifest.checkpoint_path("nope")


def edit_manifest(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_manifest_missing_pair(manifest_path):
    edit_manifest(manifest_path, lambda d: d["routes"]["DIC"].pop("actin"))
    with pytest.raises(ManifestError, match=r"manifest.json: pair \(DIC, actin\) does not resolve"):
        Manifest.load(manifest_path)


def test_manifest_empty_route_and_missing_modality(manifest_path):
    edit_manifest(manifest_path, lambda d: d["routes"]["PC"].update(tubulin=[]))
    with pytest.raises(ManifestError, match=r"pair \(PC, tubulin\) does not resolve"):
        Manifest.load(manifest_path)
    edit_manifest(manifest_path, lambda d: d["routes"].pop("PC"))
    with pytest.raises(ManifestError, match="no routes for modality PC"):
        Manifest.load(manifest_path)


def test_manifest_wrong_hash(manifest_path):
    edit_manifest(manifest_path, lambda d: d["checkpoints"]["vq_mito"].update(sha256="0" * 64))
    with pytest.raises(ManifestError, match=r"'vq_mito': sha256 of .*vq_mito.pt is [0-9a-f]{64}, "
                                            r"the manifest says 0{64}"):
        Manifest.load(manifest_path)
    Manifest.load(manifest_path, check_hashes=False)      # the opt-out skips only the hash


def test_manifest_missing_file(manifest_path):
    (manifest_path.parent / "sub" / "vq_nuc_b.pt").unlink()
    with pytest.raises(ManifestError, match=r"'vq_nuc_b': file .*vq_nuc_b.pt does not exist"):
        Manifest.load(manifest_path)


def test_manifest_route_to_checkpoint_without_the_organelle(manifest_path):
    edit_manifest(manifest_path, lambda d: d["routes"]["BF"].update(actin=["vq_mito"]))
    with pytest.raises(ManifestError, match=r"\(BF, actin\) routes to 'vq_mito', which predicts "
                                            r"only \('mitochondria',\)"):
        Manifest.load(manifest_path)


def test_manifest_shape_errors(manifest_path):
    cases = [
        (lambda d: d["routes"]["BF"].update(nucleus=["ghost"]), r"undefined checkpoints \['ghost'\]"),
        (lambda d: d.update(fallback_modality="XYZ"), "fallback_modality must be one of"),
        (lambda d: d.update(version=2), "version must be 1"),
        (lambda d: d["checkpoints"]["p2p"].pop("sha256"), "'p2p' needs string fields"),
        (lambda d: d["checkpoints"]["p2p"].update(sha256="abc"), "is not 64 hex digits"),
        (lambda d: d["routes"].update(SEM={}), r"unknown modalities \['SEM'\]"),
        (lambda d: d["routes"]["BF"].update(golgi=["p2p"]), r"unknown organelles \['golgi'\]"),
    ]
    original = manifest_path.read_text()
    for edit, message in cases:
        manifest_path.write_text(original)
        edit_manifest(manifest_path, edit)
        with pytest.raises(ManifestError, match=message):
            Manifest.load(manifest_path)
    manifest_path.write_text("{not json")
    with pytest.raises(ManifestError, match="not a readable JSON manifest"):
        Manifest.load(manifest_path)
    with pytest.raises(ManifestError, match="manifest not found"):
        Manifest.load(manifest_path.parent / "other.json")


def test_manifest_with_corrupt_checkpoint(manifest_path):
    ckpt = manifest_path.parent / "p2p.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    edit_manifest(manifest_path, lambda d: d["checkpoints"]["p2p"].update(sha256=sha256_file(ckpt)))
    with pytest.raises(ManifestError, match=r"'p2p': .*p2p.pt: not a readable checkpoint"):
        Manifest.load(manifest_path)


def test_write_manifest_never_writes_an_invalid_one(weights):
    routes = full_routes()
    del routes["BF"]["actin"]
    with pytest.raises(ManifestError, match=r"\(BF, actin\)"):
        write_manifest(weights / "manifest.json", FILES, routes)
    assert not (weights / "manifest.json").exists()
    assert [p.name for p in weights.iterdir() if p.suffix == ".json"] == []


# ---------------------------------------------------------------- model store

def test_store_loads_once_and_shares_models(manifest_path, monkeypatch):
    calls = []
    real_load = manifest_module.load_checkpoint
    monkeypatch.setattr(manifest_module, "load_checkpoint",
                        lambda *a, **k: calls.append(a[0]) or real_load(*a, **k))
    store = ModelStore(Manifest.load(manifest_path), device="cpu")
    served = {o: store.for_pair("PC", o) for o in ORGANELLES}
    models = {id(c.model) for cs in served.values() for c in cs}
    assert len(models) == 1 and calls == [manifest_path.parent / "p2p.pt"]
    first = served["nucleus"][0]
    assert first.name == "p2p" and not first.model.training
    assert next(first.model.parameters()).device.type == "cpu"
    ensemble = store.for_pair("BF", "nucleus")
    assert [c.name for c in ensemble] == ["vq_nuc_a", "vq_nuc_b"]
    assert store.get("vq_nuc_a") is ensemble[0]
    assert len(calls) == 3 and store.loaded == ("p2p", "vq_nuc_a", "vq_nuc_b")
    # The two ensemble members are different models (different seeds) of the same architecture.
    x = torch.randn(1, 1, 16, 16)
    with torch.inference_mode():
        assert not torch.equal(ensemble[0].model(x), ensemble[1].model(x))


def test_store_detects_a_file_changed_after_start_up(manifest_path, vqgan):
    manifest = Manifest.load(manifest_path)
    save_checkpoint(manifest_path.parent / "sub" / "vq_mito.pt", vqgan, vqgan_spec(vqgan, "mitochondria"))
    with pytest.raises(CheckpointError, match="differs from the manifest"):
        ModelStore(manifest).get("vq_mito")


def test_a_partial_manifest_is_read_with_the_one_version_and_refused_when_foreign(tmp_path):
    from models.manifest import MANIFEST_VERSION
    from models.registry import ManifestError, read_partial_manifest
    assert read_partial_manifest(tmp_path / "none.json") == {"version": MANIFEST_VERSION, "checkpoints": {},
                                                              "routes": {}, "fallback_modality": "BF"}
    for text, message in (("{not json", "not readable JSON"), ("[1, 2]", "not a manifest object"),
                          ('{"version": 99, "checkpoints": {}}', "manifest version 99, this code writes")):
        (tmp_path / "m.json").write_text(text)
        with pytest.raises(ManifestError, match=message):
            read_partial_manifest(tmp_path / "m.json")
