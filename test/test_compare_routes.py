"""training/compare_routes.py: candidates scored on real study files, checked by hand."""
from __future__ import annotations

import json

import numpy as np
import pytest
from test_inference_support import weights_dir  # noqa: F401  (fixture)

from inference.pipeline import run_checkpoint
from inference.settings import InferenceSettings
from metrics.challenge import score_image
from models.manifest import Manifest, ModelStore
from preprocessing.layout import FocusRecord, write_bestz_csv
from preprocessing.ome_io import read_ome_tiff
from training import compare_routes
from training.calibrate import margins, objective
from training.dataset import load_fovs
from training.toy_studies import write_toy_studies
from training.validation import pick_slices


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    root = write_toy_studies(tmp_path_factory.mktemp("calib"), studies=2, fovs_per_study=2, size=48,
                             z_slices=2, modality="BF", organelles_of={i: ("nucleus",) for i in range(4)})
    # best focus at z0: with --max-defocus 0 only the z0 slices may be picked
    tl = sorted(root.glob("Study_*/*_BF_z*.ome.tiff"))
    write_bestz_csv(root / "bestz.csv", [FocusRecord(p.name, "BF", int(p.name.split("_z")[1][0]), 0) for p in tl])
    return root


def test_an_averaged_candidate_scores_what_inference_would_give(weights_dir, studies, tmp_path):  # noqa: F811
    out = tmp_path / "result.json"
    args = ["--weights", str(weights_dir), "--data", str(studies), "--modality", "BF", "--organelle", "nucleus",
            "--candidate", "p2p", "--candidate", "vq", "--candidate", "p2p+vq", "--items", "3", "--max-defocus", "0", "--json", str(out)]
    assert compare_routes.main(args) == 0
    result = json.loads(out.read_text())
    assert result["items"] == 3
    rows = result["candidates"]
    assert sorted(r["candidate"] for r in rows) == ["p2p", "p2p+vq", "vq"]
    assert [r["objective"] for r in rows] == sorted((r["objective"] for r in rows), reverse=True)

    # Independently: the same slices, each checkpoint run as inference runs it, the pair averaged.
    manifest = Manifest.load(weights_dir / "manifest.json")
    store = ModelStore(manifest)
    fovs = load_fovs(studies, modalities=("BF",), organelles=("nucleus",), max_defocus=0)
    settings = InferenceSettings()
    per_item = []
    for fov, z in pick_slices(fovs, 3, 0):
        assert fov.slices[int(z)].name.endswith("_z0.ome.tiff")
        image = read_ome_tiff(fov.slices[int(z)])
        gt = read_ome_tiff(fov.ground_truth["nucleus"]).array
        p2p = run_checkpoint(store.get("p2p"), image, settings)[store.get("p2p").spec.channel("nucleus")]
        vq = run_checkpoint(store.get("vq"), image, settings)[0]
        per_item.append(score_image((p2p + vq) / 2, gt, "nucleus"))
    expected = {k: float(np.nanmean([s[k] for s in per_item])) for k in per_item[0]}
    pair = next(r for r in rows if r["candidate"] == "p2p+vq")
    assert pair["scores"] == pytest.approx(expected, rel=1e-5)
    assert pair["margins"] == pytest.approx(margins(expected, list(result["baselines"].values())), rel=1e-5)
    assert pair["objective"] == pytest.approx(objective(pair["margins"]), rel=1e-6)


def test_a_checkpoint_without_the_organelle_or_a_bad_candidate_is_refused(weights_dir, studies, capsys):  # noqa: F811
    base = ["--weights", str(weights_dir), "--data", str(studies), "--modality", "BF", "--items", "1"]
    assert compare_routes.main(base + ["--organelle", "actin", "--candidate", "vq"]) == 1
    assert "vq does not predict actin" in capsys.readouterr().err
    assert compare_routes.main(base + ["--organelle", "nucleus", "--candidate", "missing"]) == 1
    assert "missing" in capsys.readouterr().err
    with pytest.raises(ValueError, match="none empty"):
        compare_routes.parse_candidate("p2p+")
