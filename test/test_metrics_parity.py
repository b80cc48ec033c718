"""Parity with the organizers' evaluation script: strict mode stops where it stops, result entries
carry job_name, z_deviation keeps first-seen order. Real OME-TIFFs in temporary folders."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile
from skimage.metrics import structural_similarity
from sklearn.metrics.pairwise import euclidean_distances
from test_metrics_cli import FOVS, Dataset, dataset  # noqa: F401  (fixture)

from metrics.__main__ import main
from metrics.aggregate import build_metrics, read_metrics_json, write_metrics_json
from metrics.challenge import percentile_normalise
from metrics.score import ScoreConfig, job_name, score_folder
from metrics.strict import EvaluationStopped, read_pair
from preprocessing.layout import OUTPUT_SUBDIRS
from preprocessing.ome_io import write_ome_tiff


def _score(ds: Dataset, pred: Path, out: Path, *, strict: bool, csv_path: Path | None, workers: int = 1) -> int:
    args = ["score", "--pred", str(pred), "--gt", str(ds.flat), "--input", str(ds.inputs), "--json", str(out),
            "--workers", str(workers), "--quiet"]
    if csv_path is not None:
        args += ["--csv", str(csv_path)]
    return main(args + (["--strict"] if strict else []))


def _name(ds: Dataset, image_id: str) -> str:
    return next(n for n in ds.names if n.startswith(f"image_{image_id}_"))


def _pred_file(pred: Path, organelle: str, name: str) -> Path:
    return pred / OUTPUT_SUBDIRS[organelle] / name


def test_strict_passes_a_clean_folder_with_the_default_numbers(dataset, tmp_path, capsys):
    default, strict = tmp_path / "default.json", tmp_path / "strict.json"
    assert _score(dataset, dataset.good, default, strict=False, csv_path=dataset.csv) == 0
    assert _score(dataset, dataset.good, strict, strict=True, csv_path=dataset.csv, workers=2) == 0, \
        capsys.readouterr().err
    assert strict.read_text() == default.read_text()      # the same file, to the last digit
    results = json.loads(strict.read_text())["results"]
    assert [(e["job_name"], e["image_name"]) for e in results] == [(n[: -len(".ome.tiff")], n) for n in dataset.names]
    assert list(results[0]) == ["job_name", "image_name", "nucleus", "mitochondria", "tubulin", "actin"]
    no_gt = [(e["image_name"], o) for e in results for o in OUTPUT_SUBDIRS if e[o] == {}]
    assert len(no_gt) == 4 * len(FOVS) - sum(len(v[1]) for v in FOVS.values())   # missing GT: {} and no error


# Each case breaks one thing in a copy of the good predictions (or the CSV) and returns
# (the file the one-line error must name, words of its reason, exit code of the default mode).
def _missing_with_gt(ds, pred, tmp):
    path = _pred_file(pred, "nucleus", _name(ds, "1x1"))
    path.unlink()
    return path, "missing prediction", 1


def _missing_without_gt(ds, pred, tmp):
    path = _pred_file(pred, "tubulin", _name(ds, "1x1"))      # 1x1 has no tubulin ground truth
    path.unlink()
    return path, "any of an image's four outputs is missing", 1


def _singleton_axes(ds, pred, tmp):
    """(1,1,1,H,W) in a non-OME TIFF: our reader squeezes it, the organizers' plain imread does not.
    (ome=False: tifffile would write OME for a .ome.tiff name, which reads back as (H, W).)"""
    path = _pred_file(pred, "mitochondria", _name(ds, "1x4"))
    tifffile.imwrite(path, tifffile.imread(path)[None, None, None], ome=False)
    return path, "(1, 1, 1, 56, 40) (plain tifffile.imread) != ground-truth shape (56, 40)", 0


def _wrong_height_width(ds, pred, tmp):
    path = _pred_file(pred, "actin", _name(ds, "1x3"))
    write_ome_tiff(path, np.zeros((7, 9), np.uint16), channel_name="actin")
    return path, "shape (7, 9)", 1


def _nan_nucleus(ds, pred, tmp):
    path = _pred_file(pred, "nucleus", _name(ds, "1x2"))
    image = tifffile.imread(path).astype(np.float32)
    image[5, 7] = np.nan
    write_ome_tiff(path, image, channel_name="nucleus")
    return path, "1 NaN or infinite pixel(s); scikit-learn", 1


def _inf_tubulin(ds, pred, tmp):
    path = _pred_file(pred, "tubulin", _name(ds, "1x2"))
    image = tifffile.imread(path).astype(np.float32)
    image[:2, :3] = np.inf
    write_ome_tiff(path, image, channel_name="tubulin")
    return path, "6 NaN or infinite pixel(s); the organizers' script would score it SSIM NaN", 1


def _truncated_file(ds, pred, tmp):
    path = _pred_file(pred, "nucleus", _name(ds, "1x3"))
    path.write_bytes(path.read_bytes()[:100])
    return path, "unreadable TIFF", 1


def _row_absent_from_csv(ds, pred, tmp):
    name = _name(ds, "1x3")
    with open(ds.csv, newline="") as handle:
        rows = [row for row in csv.reader(handle) if row[0] != name]
    with open(tmp / "partial.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return ds.inputs / "images/organelles-transmitted-light-ome-tiff" / name, "not in the CSV of modality and z", 0


def _no_csv_at_all(ds, pred, tmp):
    return ds.inputs / "images/organelles-transmitted-light-ome-tiff" / ds.names[0], "no CSV given (--csv)", 0


CASES = [_missing_with_gt, _missing_without_gt, _singleton_axes, _wrong_height_width, _nan_nucleus, _inf_tubulin,
         _truncated_file, _row_absent_from_csv, _no_csv_at_all]


@pytest.mark.parametrize("case", CASES, ids=[c.__name__.strip("_") for c in CASES])
def test_strict_stops_with_one_line_naming_the_file(case, dataset, tmp_path, capsys):
    pred = tmp_path / "pred"
    shutil.copytree(dataset.good, pred)
    path, reason, default_rc = case(dataset, pred, tmp_path)
    csv_path = {"_row_absent_from_csv": tmp_path / "partial.csv", "_no_csv_at_all": None}.get(case.__name__,
                                                                                              dataset.csv)
    out = tmp_path / "metrics.json"
    rc = _score(dataset, pred, out, strict=True, csv_path=csv_path, workers=2)
    printed = capsys.readouterr()
    assert rc == 1
    assert not out.exists()
    lines = printed.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), printed.err
    assert reason in lines[0]
    # The default mode keeps forgiving: it scores the rest and writes metrics.json.
    assert _score(dataset, pred, out, strict=False, csv_path=csv_path) == default_rc
    assert len(read_metrics_json(out)["results"]) == len(dataset.names)


def test_python_callers_get_the_stop_as_an_exception(dataset, tmp_path):
    pred = tmp_path / "pred"
    shutil.copytree(dataset.good, pred)
    path, _, _ = _nan_nucleus(dataset, pred, tmp_path)
    with pytest.raises(EvaluationStopped, match=str(path)):
        score_folder(pred, dataset.flat, csv=dataset.csv, config=ScoreConfig(workers=1, progress=False, strict=True))
    run = score_folder(pred, dataset.flat, csv=dataset.csv, config=ScoreConfig(workers=1, progress=False))
    assert not run.ok and any(str(path) in line for line in run.problems)


def test_scikit_learn_refuses_what_strict_refuses(dataset, tmp_path):
    """The organizers' distances run through sklearn's input checks: the same array is refused there."""
    pred = tmp_path / "pred"
    shutil.copytree(dataset.good, pred)
    for case in (_nan_nucleus, _inf_tubulin):
        path, _, _ = case(dataset, pred, tmp_path)
        with np.errstate(invalid="ignore"):   # inf - inf in the percentiles: what the organizers meet too
            image = percentile_normalise(tifffile.imread(path)).reshape(1, -1)
        with pytest.raises(ValueError, match="NaN|infinity"):
            euclidean_distances(image, image)
        organelle = path.parent.name.split("-")[0]
        with pytest.raises(EvaluationStopped, match="NaN or infinite"):
            read_pair(path, dataset.flat / OUTPUT_SUBDIRS[organelle] / path.name, organelle)


def test_equal_shapes_that_are_not_2d_stop_as_their_ssim_does(tmp_path):
    rng = np.random.default_rng(1)
    gt, pred = (rng.integers(0, 4000, (1, 1, 1, 32, 32)).astype(np.uint16) for _ in range(2))
    tifffile.imwrite(tmp_path / "gt.tiff", gt)
    tifffile.imwrite(tmp_path / "pred.tiff", pred)
    assert tifffile.imread(tmp_path / "pred.tiff").shape == tifffile.imread(tmp_path / "gt.tiff").shape == gt.shape
    with pytest.raises(ValueError, match="win_size exceeds image extent"):
        structural_similarity(gt.astype(float), pred.astype(float), data_range=4000.0)
    with pytest.raises(EvaluationStopped, match=r"reads as \(1, 1, 1, 32, 32\), not one 2D plane"):
        read_pair(tmp_path / "pred.tiff", tmp_path / "gt.tiff", "nucleus")


def test_what_the_container_writes_reads_plainly_as_the_ground_truth(dataset):
    """write_ome_tiff (TCZYX, T=C=Z=1) reads back plainly as (H, W), the ground truth's plain shape."""
    for (name, organelle), (gt, _) in dataset.arrays.items():
        pred, truth = read_pair(_pred_file(dataset.good, organelle, name),
                                dataset.flat / OUTPUT_SUBDIRS[organelle] / name, organelle)
        assert pred.shape == truth.shape == gt.shape and truth.ndim == 2


def test_job_name_is_the_name_without_extension():
    assert job_name("image_12_BF_z3.ome.tiff") == "image_12_BF_z3"
    assert job_name("0b6f1c2e-77aa.tiff") == "0b6f1c2e-77aa"
    assert job_name("x.OME.TIF") == "x"


def test_old_metrics_files_without_job_name_still_read_and_rank(dataset, tmp_path, capsys):
    new = tmp_path / "new.json"
    assert _score(dataset, dataset.good, new, strict=False, csv_path=dataset.csv) == 0
    old = json.loads(new.read_text())
    for entry in old["results"]:
        del entry["job_name"]
    write_metrics_json(tmp_path / "old.json", old)
    back = read_metrics_json(tmp_path / "old.json")
    assert back["agregate"] == read_metrics_json(new)["agregate"]
    assert main(["rank", f"old={tmp_path / 'old.json'}", f"new={new}"]) == 0
    assert "leaderboard" in capsys.readouterr().out


def test_z_deviation_keys_in_first_seen_order():
    entry = {"nucleus": {"MAE": 0.1, "PCC": 0.5, "SSIM": 0.4, "E_dist": 3.0, "C_dist": 0.2},
             "mitochondria": {}, "tubulin": {}, "actin": {}}
    results = [{"job_name": n, "image_name": n, **entry} for n in ("a", "b", "c", "d")]
    metrics = build_metrics(results, {}, {"a": 3, "b": 0, "c": 3, "d": 1})
    assert list(metrics["z_deviation"]["nucleus"]) == [3, 0, 1]
