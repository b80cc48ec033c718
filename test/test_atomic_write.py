"""preprocessing/atomic_write.py, and the writers that go through it: the target is the old file or
the whole new one, never half of one, and what is written is readable by others (0644)."""
from __future__ import annotations

import dataclasses
import json
import stat

import numpy as np
import pytest
import torch

from models.pix2pix import Pix2PixConfig, Pix2PixGenerator
from models.registry import CheckpointSpec, save_checkpoint, write_manifest
from preprocessing.atomic_write import atomic_target, write_json
from preprocessing.ome_io import MODALITIES, ORGANELLES, write_ome_tiff


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def tiny() -> tuple[Pix2PixGenerator, CheckpointSpec]:
    """A tiny pix2pix and the spec that describes it."""
    torch.manual_seed(0)
    model = Pix2PixGenerator(Pix2PixConfig.preset("tiny", norm="batch"))
    spec = CheckpointSpec(arch="pix2pix", config=dataclasses.asdict(model.config), organelles=ORGANELLES,
                          modalities=MODALITIES, input_norm={"kind": "percentile", "low": 2.0, "high": 99.8})
    return model, spec


def test_success_replaces_the_target_with_mode_644_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "sub" / "out.json"
    with atomic_target(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".out.json.")
        assert tmp.suffix == ".partial" and not target.exists()
        tmp.write_text("new")
    assert target.read_text() == "new"
    assert mode(target) == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]


def test_failure_keeps_the_old_file_and_removes_the_temporary_one(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_target(target) as tmp:
            tmp.write_text("half of the ne")
            raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_write_json_whose_check_fails_keeps_the_old_file(tmp_path):
    target = tmp_path / "manifest.json"
    write_json(target, {"version": 1})
    assert json.loads(target.read_text()) == {"version": 1} and target.read_text().endswith("}\n")

    def refuse(path):
        assert json.loads(path.read_text()) == {"version": 2}   # the check sees the new content
        raise ValueError("invalid")
    with pytest.raises(ValueError, match="invalid"):
        write_json(target, {"version": 2}, check=refuse)
    assert json.loads(target.read_text()) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_checkpoint_manifest_and_ome_outputs_are_readable_by_others(tmp_path, tiny):
    model, spec = tiny
    save_checkpoint(tmp_path / "p2p.pt", model, spec)
    routes = {m: {o: ["p2p"] for o in ORGANELLES} for m in MODALITIES}
    write_manifest(tmp_path / "manifest.json", {"p2p": "p2p.pt"}, routes)
    out = write_ome_tiff(tmp_path / "image.ome.tiff", np.zeros((8, 8), np.float32), channel_name="Nucleus")
    for path in (tmp_path / "p2p.pt", tmp_path / "manifest.json", out):
        assert mode(path) == 0o644, path
    assert json.loads((tmp_path / "manifest.json").read_text())["routes"]["DIC"]["actin"] == ["p2p"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.ome.tiff", "manifest.json", "p2p.pt"]


def test_the_same_checkpoint_saved_twice_is_the_same_bytes(tmp_path, tiny):
    # torch.save names its zip's inner folder after a path it is given; the random temporary
    # name must not leak in, or re-exporting unchanged weights would change their sha256.
    first = save_checkpoint(tmp_path / "a" / "p2p.pt", *tiny)
    second = save_checkpoint(tmp_path / "b" / "p2p.pt", *tiny)
    assert first == second
