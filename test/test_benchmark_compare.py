"""benchmarks.heldout.compare: two benchmark summaries of one set, paired by image."""
from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.heldout.compare import CompareError, defect_rows, main, metric_rows, paired_images
from metrics.bootstrap import cluster_bootstrap_mean


def _image(name, study, modality, pcc, flagged=()):
    return {"name": name, "study": study, "modality": modality, "deviation": 0,
            "routes": {"actin": "vq_actin_small"},
            "model": {"actin": {"PCC": pcc, "SSIM": 0.5}},
            "defects": {"actin": {"flagged": list(flagged)}}}


def _summary(path, images, plan="p1"):
    path.write_text(json.dumps({"set": "quick", "plan": plan, "images": images}), encoding="utf-8")
    return path


@pytest.fixture
def runs(tmp_path):
    rng = np.random.default_rng(0)
    before, after = [], []
    for i in range(12):
        study, modality = f"Study_{i // 2}", "BF" if i % 3 else "PC"
        pcc = float(rng.uniform(0.2, 0.4))
        before.append(_image(f"img{i}", study, modality, pcc, ("saturation",) if modality == "BF" else ()))
        after.append(_image(f"img{i}", study, modality, pcc + 0.05 + 0.01 * (i % 2)))
    after.append(_image("only_after", "Study_9", "BF", 0.9))   # unpaired: ignored
    return _summary(tmp_path / "a.json", before), _summary(tmp_path / "b.json", after), before, after


def test_differences_are_paired_by_image_with_study_clusters(runs):
    a, b, before, after = runs
    pairs, _, _ = paired_images(a, b)
    assert len(pairs) == 12
    pcc = next(r for r in metric_rows(pairs, "actin", n_resamples=500) if r["metric"] == "PCC")
    diff = [y["model"]["actin"]["PCC"] - x["model"]["actin"]["PCC"] for x, y in zip(before, after)]
    expected = cluster_bootstrap_mean(diff, [x["study"] for x in before], n_resamples=500)
    assert pcc["difference"] == pytest.approx(np.mean(diff))
    assert (pcc["low"], pcc["high"]) == pytest.approx((expected.low, expected.high))
    assert pcc["verdict"] == "better" and pcc["studies"] == 6


def test_defects_are_counted_per_modality_before_and_after(runs):
    a, b, _, _ = runs
    pairs, _, _ = paired_images(a, b)
    rows = {r["modality"]: r for r in defect_rows(pairs, "actin")}
    assert rows["BF"]["before_saturation"] == 8 and rows["BF"]["after_saturation"] == 0
    assert rows["PC"]["before_saturation"] == 0 and rows["BF"]["route_before"] == "vq_actin_small"


def test_different_sets_and_broken_files_are_refused(tmp_path, runs, capsys):
    a, _, before, _ = runs
    other = _summary(tmp_path / "other.json", before, plan="p2")
    with pytest.raises(CompareError, match="different sets"):
        paired_images(a, other)
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    assert main([str(a), str(broken)]) == 2
    assert "broken.json: not a benchmark summary" in capsys.readouterr().err


def test_the_command_prints_both_tables(runs, capsys):
    a, b, _, _ = runs
    assert main([str(a), str(b), "--organelle", "actin", "--resamples", "200"]) == 0
    out = capsys.readouterr().out
    assert "after - before, paired over 12 images" in out and "saturation 8→0" in out
