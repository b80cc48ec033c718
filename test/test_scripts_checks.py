"""The Python helpers behind test.sh: staging, output checks, thresholds, the smoke sequence. Real files."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from preprocessing.layout import INPUT_SUBDIR, OUTPUT_SUBDIRS, gt_file_name, tl_file_name
from preprocessing.ome_io import ORGANELLES, write_ome_tiff
from scripts.check_outputs import check_outputs
from scripts.check_thresholds import (
    ThresholdError,
    Thresholds,
    evaluate,
    load_aggregate,
    load_deviations,
    load_thresholds,
)
from scripts.smoke import Paths, SmokeFailure, baseline_args, prepare
from scripts.stage_inputs import StagingError, stage_inputs

REPO = Path(__file__).resolve().parent.parent
PIXEL = (0.1, 0.12)


def _tl(folder: Path, image_id: str, modality: str, z: int, shape=(32, 40)) -> Path:
    rng = np.random.default_rng(abs(hash((image_id, z))) % 2**32)
    return write_ome_tiff(folder / tl_file_name(image_id, modality, z),
                          rng.integers(0, 4000, shape).astype(np.uint16), channel_name=modality,
                          pixel_size_um=PIXEL)


@pytest.fixture
def studies(tmp_path: Path) -> Path:
    root = tmp_path / "studies"
    _tl(root / "Study_1", "11", "BF", 0)
    _tl(root / "Study_1", "11", "BF", 1)
    _tl(root / "Study_2", "21", "PC", 3, shape=(24, 36))
    write_ome_tiff(root / "Study_2" / gt_file_name("21", "nucleus"), np.zeros((24, 36), np.uint16),
                   channel_name="Nucleus", pixel_size_um=PIXEL)
    return root


def test_stage_inputs_flattens_tl_files_and_keeps_names(studies: Path, tmp_path: Path) -> None:
    staged = stage_inputs(studies, tmp_path / "stage")
    folder = tmp_path / "stage" / INPUT_SUBDIR
    assert [p.name for p in staged] == sorted(["image_11_BF_z0.ome.tiff", "image_11_BF_z1.ome.tiff",
                                               "image_21_PC_z3.ome.tiff"])
    assert sorted(p.name for p in folder.iterdir()) == [p.name for p in staged]   # no ground truth staged
    for path in staged:
        source = next(studies.glob(f"Study_*/{path.name}"))
        assert path.read_bytes() == source.read_bytes()
    # A re-run replaces, never accumulates.
    (folder / "stale.tiff").write_bytes(b"x")
    stage_inputs(studies, tmp_path / "stage")
    assert not (folder / "stale.tiff").exists()


def test_stage_inputs_refuses_name_collisions_and_empty_studies(studies: Path, tmp_path: Path) -> None:
    _tl(studies / "Study_3", "11", "BF", 0)   # same TL name as in Study_1
    with pytest.raises(StagingError, match="image_11_BF_z0.ome.tiff"):
        stage_inputs(studies, tmp_path / "stage")
    (tmp_path / "empty" / "Study_1").mkdir(parents=True)
    with pytest.raises(StagingError, match="no transmitted-light files"):
        stage_inputs(tmp_path / "empty", tmp_path / "stage")


def _predict(stage: Path, pred: Path, *, skip=(), shape_of=None, pixel_size=PIXEL) -> None:
    for path in sorted((stage / INPUT_SUBDIR).iterdir()):
        shape = tifffile.imread(path).shape
        for organelle in ORGANELLES:
            if (organelle, path.name) in skip:
                continue
            out_shape = shape_of(organelle, path.name, shape) if shape_of else shape
            write_ome_tiff(pred / OUTPUT_SUBDIRS[organelle] / path.name, np.full(out_shape, 7, np.uint16),
                           channel_name=organelle, pixel_size_um=pixel_size)


def test_check_outputs_accepts_complete_predictions(studies: Path, tmp_path: Path) -> None:
    stage_inputs(studies, tmp_path / "stage")
    _predict(tmp_path / "stage", tmp_path / "pred")
    report = check_outputs(tmp_path / "stage", tmp_path / "pred")
    assert report.ok, report.problems
    assert (report.inputs, report.files_checked) == (3, 12)


def test_check_outputs_lists_every_problem(studies: Path, tmp_path: Path) -> None:
    stage, pred = tmp_path / "stage", tmp_path / "pred"
    stage_inputs(studies, stage)
    _predict(stage, pred, skip={("actin", "image_11_BF_z1.ome.tiff")},
             shape_of=lambda o, n, s: (s[0] - 1, s[1]) if (o, n) == ("tubulin", "image_21_PC_z3.ome.tiff") else s)
    (pred / OUTPUT_SUBDIRS["nucleus"] / "image_99_BF_z0.ome.tiff").write_bytes(b"not a tiff")
    # A plain TIFF (no OME-XML) and one whose OME-XML lost the pixel size.
    tifffile.imwrite(pred / OUTPUT_SUBDIRS["mitochondria"] / "image_11_BF_z0.ome.tiff", np.zeros((32, 40), np.uint16),
                     ome=False)
    write_ome_tiff(pred / OUTPUT_SUBDIRS["actin"] / "image_21_PC_z3.ome.tiff", np.zeros((24, 36), np.uint16),
                   channel_name="actin", pixel_size_um=None)
    problems = check_outputs(stage, pred).problems
    text = "\n".join(problems)
    assert "actin-fluorescence-ome-tiff/image_11_BF_z1.ome.tiff: missing" in text
    assert "tubulin-fluorescence-ome-tiff/image_21_PC_z3.ome.tiff: shape (23, 36)" in text
    assert "image_99_BF_z0.ome.tiff: no input of that name" in text
    assert "mitochondria-fluorescence-ome-tiff/image_11_BF_z0.ome.tiff: no OME-XML" in text
    assert "actin-fluorescence-ome-tiff/image_21_PC_z3.ome.tiff: OME-XML lost the physical pixel size" in text
    assert len(problems) == 5


def test_check_outputs_catches_changed_pixel_size_and_missing_folder(studies: Path, tmp_path: Path) -> None:
    stage, pred = tmp_path / "stage", tmp_path / "pred"
    stage_inputs(studies, stage)
    _predict(stage, pred, pixel_size=(0.2, 0.12))
    import shutil
    shutil.rmtree(pred / OUTPUT_SUBDIRS["tubulin"])
    problems = check_outputs(stage, pred).problems
    assert sum("physical pixel size (0.2, 0.12)" in p for p in problems) == 9   # 3 inputs x 3 organelles
    assert sum("missing organelle folder (tubulin)" in p for p in problems) == 1


def test_check_outputs_cli_exit_codes(studies: Path, tmp_path: Path) -> None:
    stage, pred = tmp_path / "stage", tmp_path / "pred"
    stage_inputs(studies, stage)
    _predict(stage, pred, skip={("nucleus", "image_11_BF_z0.ome.tiff")})
    cmd = [sys.executable, str(REPO / "scripts" / "check_outputs.py"), "--input", str(stage), "--pred", str(pred)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)   # run as a file, elsewhere
    assert done.returncode == 1
    assert "FAILED: 1 problem(s)" in done.stderr and "image_11_BF_z0.ome.tiff: missing" in done.stderr
    empty = tmp_path / "no_inputs"
    empty.mkdir()
    done = subprocess.run(cmd[:3] + [str(empty), "--pred", str(pred)], capture_output=True, text=True)
    assert done.returncode == 2 and "no .tif/.tiff input images" in done.stderr


def _thresholds(tmp_path: Path, content: dict) -> Path:
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps(content))
    return path


def test_thresholds_min_max_and_unmeasured() -> None:
    aggregate = {"nucleus": {"PCC": 0.5, "SSIM": 0.3, "MAE": 0.2}, "mitochondria": {"PCC": math.nan}}
    checks = evaluate(aggregate, Thresholds(min={"nucleus": {"PCC": 0.4, "SSIM": 0.35},
                                                 "mitochondria": {"PCC": 0.0}, "actin": {"PCC": 0.0}},
                                            max={"nucleus": {"MAE": 0.25}}))
    verdict = {c.description.split(":")[0]: c.passed for c in checks}
    assert verdict == {"nucleus PCC >= 0.4": True, "nucleus SSIM >= 0.35": False,
                       "mitochondria PCC >= 0 (not measured)": False, "actin PCC >= 0 (not measured)": False,
                       "nucleus MAE <= 0.25": True}


def test_thresholds_beat_baselines_respects_metric_direction() -> None:
    aggregate = {"nucleus": {"PCC": 0.5, "MAE": 0.2, "SSIM": 0.1}}
    baselines = {"constant": {"nucleus": {"PCC": 0.0, "MAE": 0.1, "SSIM": math.nan}},
                 "tl_input": {"nucleus": {"PCC": 0.5}}}
    checks = evaluate(aggregate, Thresholds(require_beat_baselines=True), baselines)
    verdict = {c.description: c.passed for c in checks}
    assert verdict == {"nucleus PCC > baseline constant (0)": True,
                       "nucleus MAE < baseline constant (0.1)": False,   # lower is better: 0.2 loses
                       "nucleus PCC > baseline tl_input (0.5)": False}  # a tie does not beat; NaN skipped
    assert [c.passed for c in evaluate(aggregate, Thresholds(require_beat_baselines=True), {})] == [False]


def test_threshold_file_validation(tmp_path: Path) -> None:
    # the shipped bar: every metric of every organelle beats both baselines on the held-out set
    assert load_thresholds(REPO / "test" / "thresholds.json").require_beat_baselines is True
    assert load_thresholds(_thresholds(tmp_path, {"_doc": "x", "min": {"actin": {"SSIM": 0.2}}})).min == \
        {"actin": {"SSIM": 0.2}}
    for bad, reason in [({"minimum": {}}, "unknown key"), ({"min": {"nuclei": {"PCC": 0}}}, "unknown organelle"),
                        ({"min": {"actin": {"MAE": 0}}}, "not a metric of actin"),
                        ({"max": {"nucleus": {"MAE": "low"}}}, "not a finite number"),
                        ({"require_beat_baselines": "yes"}, "true or false")]:
        with pytest.raises(ThresholdError, match=reason):
            load_thresholds(_thresholds(tmp_path, bad))


def test_check_thresholds_cli(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"results": [], "agregate": {"nucleus": {"PCC": 0.3, "SSIM": NaN}}}')
    cmd = [sys.executable, "-m", "scripts.check_thresholds", "--metrics", str(metrics), "--thresholds"]
    ok = subprocess.run(cmd + [str(_thresholds(tmp_path, {"min": {"nucleus": {"PCC": 0.25}}}))],
                        capture_output=True, text=True, cwd=REPO)
    assert ok.returncode == 0 and "PASS  nucleus PCC >= 0.25: 0.3000" in ok.stdout
    low = subprocess.run(cmd + [str(_thresholds(tmp_path, {"min": {"nucleus": {"PCC": 0.25, "SSIM": 0.0}}}))],
                         capture_output=True, text=True, cwd=REPO)
    assert low.returncode == 1 and "FAIL  nucleus SSIM >= 0 (not measured)" in low.stdout
    assert "FAILED: 1 of 2 check(s)" in low.stderr


def test_thresholds_at_a_focus_deviation_read_the_z_deviation_table(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"results": [], "agregate": {"nucleus": {"PCC": 0.7}},
                                   "z_deviation": {"nucleus": {"0": {"PCC": 0.85}, "4": {"PCC": 0.5}}}}))
    thresholds = load_thresholds(_thresholds(tmp_path, {"min_at_deviation": {"0": {"nucleus": {"PCC": 0.8}},
                                                                             "4": {"nucleus": {"PCC": 0.6}},
                                                                             "5": {"nucleus": {"PCC": 0.1}}}}))
    checks = evaluate(load_aggregate(metrics), thresholds, deviations=load_deviations(metrics))
    assert {c.description: c.passed for c in checks} == {
        "nucleus PCC at focus deviation 0 >= 0.8": True,
        "nucleus PCC at focus deviation 4 >= 0.6": False,
        "nucleus PCC at focus deviation 5 >= 0.1 (not measured)": False}
    with pytest.raises(ThresholdError, match="not a focus deviation"):
        load_thresholds(_thresholds(tmp_path, {"min_at_deviation": {"best": {}}}))


def _defect_scan(tmp_path: Path, saturated_corners: bool) -> Path:
    """A real defects.json: the detectors run on one clean or one corner-saturated prediction."""
    from metrics.defects import find_defects
    from metrics.defects.scan import DefectRecord, write_defects_json

    yy, xx = np.mgrid[0:128, 0:128]
    pred = (20000 * np.exp(-((yy - 64) ** 2 + (xx - 64) ** 2) / 400.0)).astype(np.uint16)
    if saturated_corners:
        for y, x in [(0, 0), (0, 126), (126, 0), (126, 126)]:
            pred[y:y + 2, x:x + 2] = 65535
    record = DefectRecord("a.tiff", "actin", "BF", "vq_actin", tmp_path / "a.tiff", False,
                          find_defects(pred, organelle="actin"))
    return write_defects_json(tmp_path / f"defects_{saturated_corners}.json", [record])


def test_defect_findings_fail_only_when_enforced(tmp_path: Path) -> None:
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"results": [], "agregate": {"actin": {"PCC": 0.3}}}')
    cmd = [sys.executable, "-m", "scripts.check_thresholds", "--metrics", str(metrics), "--thresholds"]
    for enforce in (False, True):
        bar = str(_thresholds(tmp_path, {"enforce_defects": enforce}))
        flagged = subprocess.run(cmd + [bar, "--defects", str(_defect_scan(tmp_path, True))],
                                 capture_output=True, text=True, cwd=REPO)
        clean = subprocess.run(cmd + [bar, "--defects", str(_defect_scan(tmp_path, False))],
                               capture_output=True, text=True, cwd=REPO)
        assert clean.returncode == 0, clean.stdout + clean.stderr
        if enforce:
            assert flagged.returncode == 1
            assert "FAIL  actin vq_actin: no defect findings (1 of 1 predictions flagged" in flagged.stdout
        else:
            assert flagged.returncode == 0 and "INFO  actin vq_actin" in flagged.stdout
    missing = subprocess.run(cmd + [str(_thresholds(tmp_path, {"enforce_defects": True}))],
                             capture_output=True, text=True, cwd=REPO)
    assert missing.returncode == 1 and "no defect scan given" in missing.stdout
    with pytest.raises(ThresholdError, match="true, false or a list"):
        load_thresholds(_thresholds(tmp_path, {"enforce_defects": 1}))


def test_enforce_defects_can_name_the_detectors(tmp_path: Path) -> None:
    """["saturation"] fails on saturated corners; ["periodic"] reports them without failing."""
    metrics = tmp_path / "metrics.json"
    metrics.write_text('{"results": [], "agregate": {"actin": {"PCC": 0.3}}}')
    flagged = str(_defect_scan(tmp_path, True))
    cmd = [sys.executable, "-m", "scripts.check_thresholds", "--metrics", str(metrics), "--defects", flagged,
           "--thresholds"]
    fails = subprocess.run(cmd + [str(_thresholds(tmp_path, {"enforce_defects": ["nonfinite", "saturation"]}))],
                           capture_output=True, text=True, cwd=REPO)
    assert fails.returncode == 1, fails.stdout + fails.stderr
    assert "FAIL  actin vq_actin: no nonfinite/saturation findings (1 of 1" in fails.stdout
    passes = subprocess.run(cmd + [str(_thresholds(tmp_path, {"enforce_defects": ["periodic"]}))],
                            capture_output=True, text=True, cwd=REPO)
    assert passes.returncode == 0, passes.stdout + passes.stderr
    assert "INFO  actin vq_actin: no defect findings (1 of 1" in passes.stdout and "enforced: periodic" in passes.stdout
    for bad in (["saturated"], []):
        with pytest.raises(ThresholdError, match="unknown detector"):
            load_thresholds(_thresholds(tmp_path, {"enforce_defects": bad}))


def _smoke_paths(tmp_path: Path, studies: Path, thresholds: dict) -> Paths:
    return Paths(studies, _thresholds(tmp_path, thresholds), tmp_path / "work", REPO / "weights")


def test_smoke_prepare_stages_a_fresh_work_folder(studies: Path, tmp_path: Path) -> None:
    paths = _smoke_paths(tmp_path, studies, {"min": {"nucleus": {"PCC": 0.5}}})
    (studies / "bestz.csv").write_text("name,modality,image_z,best_z\n")
    (tmp_path / "work" / "output").mkdir(parents=True)
    (tmp_path / "work" / "output" / "stale.txt").write_text("from the last run")
    assert prepare(paths) == 3
    assert sorted(p.name for p in paths.tl.iterdir()) == sorted(p.name for p in studies.glob("Study_*/*_z*.ome.tiff"))
    assert paths.out.is_dir() and not list(paths.out.iterdir())   # emptied, ready for the run
    assert all(d.stat().st_mode & 0o555 == 0o555 for d in [paths.stage, *paths.stage.rglob("*")] if d.is_dir())


def test_smoke_prepare_refuses_what_the_run_needs_before_running(studies: Path, tmp_path: Path) -> None:
    paths = _smoke_paths(tmp_path, studies, {})
    with pytest.raises(SmokeFailure, match=r"no focus table .*bestz.csv"):
        prepare(paths)
    (studies / "bestz.csv").write_text("name,modality,image_z,best_z\n")
    with pytest.raises(SmokeFailure, match="no held-out studies at"):
        prepare(Paths(tmp_path / "nowhere", paths.thresholds, paths.work, paths.weights))
    with pytest.raises(SmokeFailure, match="no thresholds file"):
        prepare(Paths(studies, tmp_path / "none.json", paths.work, paths.weights))
    # A typo in the bar stops before the (long) run, naming the file and the key.
    with pytest.raises(SmokeFailure, match=r"thresholds.json: min.nucleus: 'PCX' is not a metric"):
        prepare(_smoke_paths(tmp_path, studies, {"min": {"nucleus": {"PCX": 0.5}}}))
    assert not paths.work.exists()


def test_smoke_baseline_args_name_each_baseline_the_scorer_wrote(tmp_path: Path, studies: Path) -> None:
    paths = _smoke_paths(tmp_path, studies, {"require_beat_baselines": True})
    paths.out.mkdir(parents=True)
    with pytest.raises(SmokeFailure, match="wrote no baseline metrics"):
        baseline_args(paths)
    for name in ("tl_input", "constant"):
        (paths.out / f"metrics.{name}.json").write_text("{}")
    assert baseline_args(paths) == ["--baseline", f"constant={paths.out / 'metrics.constant.json'}",
                                    "--baseline", f"tl_input={paths.out / 'metrics.tl_input.json'}"]
    assert Paths.from_env({}).work == (Path.cwd() / "build" / "test-run")
