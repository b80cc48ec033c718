"""The held-out benchmark end to end on a tiny plan: simulate, process.py, score, summarise."""
from __future__ import annotations

import json

import numpy as np
import pytest
from test_inference_support import weights_dir  # noqa: F401

from benchmarks.heldout.build import build_set
from benchmarks.heldout.evaluate import evaluate_set
from benchmarks.heldout.plan import SetPlan, SlicePlan, StudyPlan
from benchmarks.heldout.predict import predict_set
from benchmarks.heldout.run import stage
from benchmarks.heldout.summary import summarise, verdict
from benchmarks.heldout.tables import report_text
from metrics.baselines import write_baselines
from metrics.ceiling import through_grid
from metrics.challenge import score_image
from metrics.defects import DETECTORS
from metrics.score import ScoreConfig, score_folder
from preprocessing.evaluation_sets import EvaluationSetError
from preprocessing.layout import OUTPUT_SUBDIRS, read_bestz_csv
from preprocessing.ome_io import read_ome_tiff, write_ome_tiff
from synthetic.acquisitions import REAL_ACQUISITIONS
from synthetic.seeds import BENCHMARK_DEV_SEED
from training.dataset import load_fovs

ACQ = {a.study: a for a in REAL_ACQUISITIONS}
TINY = SetPlan("development", BENCHMARK_DEV_SEED, (
    StudyPlan(1001, "BF", ("nucleus", "actin"), (96, 128), ACQ[3], 4, (SlicePlan(1, 3), SlicePlan(4, 0))),
    StudyPlan(1002, "PC", ("mitochondria", "tubulin"), (80, 80), ACQ[12], 2, (SlicePlan(2, 0), SlicePlan(7, 5))),
    StudyPlan(1003, "DIC", ("nucleus",), (88, 96), ACQ[18], 6, (SlicePlan(4, 2), SlicePlan(7, 1),
                                                                SlicePlan(8, 2))),
))


@pytest.fixture(scope="module")
def bench(tmp_path_factory, weights_dir):  # noqa: F811
    work = tmp_path_factory.mktemp("bench")
    studies = build_set(TINY, work / "studies", progress=False)
    inputs = stage(studies, None, work / "input")
    run = predict_set(inputs, work / "predictions", weights_dir, "rot4", progress=False)
    records = evaluate_set(studies, inputs[0].parent, run.root, weights_dir, run.seconds, workers=1, progress=False)
    return work, studies, inputs, run, records


def test_the_set_follows_its_plan_and_training_refuses_it(bench):
    _, studies, inputs, _, _ = bench
    records = read_bestz_csv(studies / "bestz.csv")
    assert len(records) == len(inputs) == 7
    for study in TINY.studies:
        image = read_ome_tiff(next((studies / f"Study_{study.number}").glob("*_z*.ome.tiff")))
        assert image.shape == study.shape and image.modality == study.modality
        assert image.pixel_size_um == (study.pixel_size_um, study.pixel_size_um)
        planned = {(s.z, s.deviation) for s in study.slices}
        mine = [r for r in records.values() if r.name.startswith(f"image_{study.number}0000_")]
        assert {(r.image_z, r.deviation) for r in mine} == planned
    with pytest.raises(EvaluationSetError):
        load_fovs(studies)
    assert load_fovs(studies, use="calibration")


def test_a_rebuild_keeps_complete_studies_and_redoes_broken_ones(bench):
    _, studies, _, _, _ = bench
    kept = studies / "Study_1001" / "image_10010000_Nucleus.ome.tiff"
    broken = studies / "Study_1002" / "image_10020000_PC_z7.ome.tiff"
    before = kept.stat().st_mtime_ns
    broken.unlink()
    build_set(TINY, studies, progress=False)
    assert kept.stat().st_mtime_ns == before and broken.is_file()


def test_every_image_was_predicted_once_by_process_py(bench, weights_dir):  # noqa: F811
    work, _, inputs, run, _ = bench
    assert not run.failed and set(run.seconds) == {p.name for p in inputs}
    for sub in OUTPUT_SUBDIRS.values():
        assert sorted(p.name for p in (run.root / sub).iterdir()) == sorted(p.name for p in inputs)
    again = predict_set(inputs, work / "predictions", weights_dir, "rot4", progress=False)
    assert again.root == run.root and again.seconds == run.seconds
    other = predict_set(inputs[:1], work / "predictions", weights_dir, "none", progress=False)
    assert other.root != run.root   # other settings, other predictions
    mean = predict_set(inputs[:1], work / "predictions", weights_dir, "rot4", progress=False, blend="constant")
    assert mean.root not in (run.root, other.root)
    assert json.loads((mean.root / "run.json").read_text())["blend"] == "constant"


def test_a_sibling_sets_predictions_are_lent_not_redone(bench, weights_dir, tmp_path):  # noqa: F811
    _, _, inputs, run, _ = bench
    lent = predict_set(inputs[:3], tmp_path / "quick", weights_dir, "rot4", progress=False,
                       adopt_from=[run.root.parent])
    assert lent.seconds == {p.name: run.seconds[p.name] for p in inputs[:3]}
    assert (lent.root / OUTPUT_SUBDIRS["actin"] / inputs[0].name).stat().st_ino == \
        (run.root / OUTPUT_SUBDIRS["actin"] / inputs[0].name).stat().st_ino
    # Several lenders, some of them never run: each image is taken from whichever has it.
    both = predict_set(inputs[:4], tmp_path / "one-modality", weights_dir, "rot4", progress=False,
                       adopt_from=[tmp_path / "never-run", lent.root.parent, run.root.parent])
    assert both.seconds == {p.name: run.seconds[p.name] for p in inputs[:4]}


def test_records_match_independent_scoring(bench, tmp_path):
    _, studies, inputs, run, records = bench
    by_name = {r.name: r for r in records}
    record = by_name["image_10010000_BF_z4.ome.tiff"]
    assert record.routes == {"nucleus": "p2p+vq", "mitochondria": "p2p", "tubulin": "p2p", "actin": "p2p"}
    assert record.deviation == 0
    # every prediction is scanned for defects, with or without ground truth
    assert set(record.defects) == set(record.routes) and "flagged" in record.defects["tubulin"]
    # ... and the ground truth is scanned alike, as the detectors' control (on 96x128 px the spectrum
    # is too short to promise silence; the benchmark sets report the control's counts)
    assert set(record.gt_defects) == {"nucleus", "actin"}
    assert set(record.gt_defects["nucleus"]) <= set(DETECTORS)
    gt = read_ome_tiff(studies / "Study_1001" / "image_10010000_Nucleus.ome.tiff")
    pred = read_ome_tiff(run.root / OUTPUT_SUBDIRS["nucleus"] / record.name).array
    assert record.model["nucleus"] == pytest.approx(score_image(pred, gt.array, "nucleus"))
    perfect = through_grid(gt.array, gt.pixel_size_um, 0.1)
    assert record.ceilings["grid 0.1 um"]["nucleus"] == pytest.approx(score_image(perfect, gt.array, "nucleus"))
    # The baselines equal what `python -m metrics score --baselines` scores from written files.
    roots, problems = write_baselines(inputs[0].parent, tmp_path)
    assert not problems
    for name, root in roots.items():
        scored = score_folder(root, studies, inputs=inputs[0].parent, config=ScoreConfig(workers=1, progress=False))
        for entry in scored.metrics["results"]:
            for organelle, metrics in by_name[entry["image_name"]].baselines[name].items():
                assert metrics == pytest.approx(entry[organelle]), (name, entry["image_name"], organelle)


def test_summary_and_tables(bench):
    _, _, _, _, records = bench
    summary = summarise(records, n_resamples=200)
    row = summary["overall"]["nucleus"]["PCC"]
    assert row["n"] == 5 and row["studies"] == 2
    assert row["model"] == pytest.approx(np.mean([r.model["nucleus"]["PCC"] for r in records if "nucleus" in r.model]))
    assert row["difference"]["low"] <= row["difference"]["mean"] <= row["difference"]["high"]
    assert set(summary["by_modality"]) == {"BF", "PC", "DIC"}
    assert set(summary["by_deviation"]) == {0, 1, 2, 3, 5}
    assert summary["speed"]["all"]["images"] == 7
    assert summary["defects"]["tubulin"]["p2p (PC)"]["images"] == 2
    # the control counts each field's truth once, not once per slice
    assert summary["defects"]["nucleus"]["ground truth (control)"]["images"] == 2
    for markdown in (False, True):
        text = report_text(summary, "tiny", markdown)
        assert "nucleus (5, 2)" in text and "grid 0.1 um" in text
    json.dumps(summary)


def test_verdicts_follow_each_metrics_direction():
    assert verdict("PCC", 0.01, 0.2) == "better" and verdict("PCC", -0.2, -0.01) == "worse"
    assert verdict("MAE", -0.02, -0.01) == "better" and verdict("MAE", 0.01, 0.02) == "worse"
    assert verdict("SSIM", -0.01, 0.02) == "within noise" and verdict("SSIM", float("nan"), 1) == "n/a"
    assert verdict("PCC", 0.2, 0.3, studies=2) == "too few studies (2)"


def test_stored_predictions_survive_a_code_change_only_if_the_pixels_agree(bench, weights_dir):  # noqa: F811
    work, _, inputs, run, _ = bench
    run_json = run.root / "run.json"
    stamp = json.loads(run_json.read_text())
    run_json.write_text(json.dumps({**stamp, "code": ["older-code"]}))
    kept = predict_set(inputs, work / "predictions", weights_dir, "rot4", progress=False)
    assert kept.seconds == run.seconds                     # nothing predicted again
    assert json.loads(run_json.read_text())["code"] == ["older-code", stamp["code"][0]]
    target = run.root / OUTPUT_SUBDIRS["nucleus"]
    fresh = {p.name: read_ome_tiff(p).array for p in target.iterdir()}
    for path in target.iterdir():   # as if the older code had predicted something else
        write_ome_tiff(path, np.zeros(read_ome_tiff(path).shape, np.uint16), channel_name="Nucleus")
    run_json.write_text(json.dumps({**stamp, "code": ["other-code"]}))
    redone = predict_set(inputs, work / "predictions", weights_dir, "rot4", progress=False)
    assert json.loads(run_json.read_text())["code"] == stamp["code"]
    for name, array in fresh.items():
        np.testing.assert_array_equal(read_ome_tiff(target / name).array, array)
    assert set(redone.seconds) == set(fresh)


def test_report_prints_the_last_runs_tables(bench, tmp_path, capsys):
    from benchmarks.heldout.__main__ import main
    _, _, _, _, records = bench
    assert main(["--set", "test", "--work", str(tmp_path), "--report"]) == 1
    assert "no run of the test set yet" in capsys.readouterr().err
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "summary.json").write_text(json.dumps(
        {"seed": 1, "tta": "none", "commit": "abc", "summary": summarise(records, n_resamples=50)}))
    assert main(["--set", "test", "--work", str(tmp_path), "--report", "--markdown"]) == 0
    out = capsys.readouterr().out
    assert "test set (seed 1, TTA none, commit abc)" in out and "| nucleus (5, 2) |" in out
    assert "ground truth (control)" in out
