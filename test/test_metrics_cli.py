"""`python -m metrics` end to end on OME-TIFFs written to temporary folders, in both ground-truth layouts."""
from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from metrics.__main__ import main
from metrics.aggregate import build_metrics, read_metrics_json
from metrics.challenge import score_image
from preprocessing.layout import INPUT_SUBDIR, OUTPUT_SUBDIRS, FocusRecord, gt_file_name, tl_file_name, write_bestz_csv
from preprocessing.ome_io import ORGANELLE_FILE_NAMES, ORGANELLES, write_ome_tiff

# field of view -> (modality, organelles with ground truth, shape, scored z, best z)
FOVS = {
    "1x1": ("BF", ("nucleus", "mitochondria"), (48, 64), 3, 1),
    "1x2": ("PC", ("nucleus", "tubulin"), (40, 56), 1, 1),
    "1x3": ("DIC", ("nucleus", "actin"), (48, 64), 0, 2),
    "1x4": ("BF", ("mitochondria",), (56, 40), 2, 2),
}


@dataclass
class Dataset:
    root: Path
    study: Path          # study layout root (Study_1/ inside)
    flat: Path           # challenge ground-truth layout
    inputs: Path         # challenge input layout
    csv: Path
    good: Path           # predictions close to the ground truth
    bad: Path            # noise
    names: list[str]
    arrays: dict         # (name, organelle) -> (gt, good prediction) arrays
    modality: dict
    deviation: dict


def _make(root: Path) -> Dataset:
    rng = np.random.default_rng(0)
    study = root / "study" / "Study_1"
    ds = Dataset(root, root / "study", root / "flat", root / "input", root / "bestz.csv", root / "good",
                 root / "bad", [], {}, {}, {})
    records = []
    for image_id, (modality, organelles, shape, z, best) in FOVS.items():
        for k in range(4):  # a small z-stack; only slice z is "predicted"
            tl = rng.normal(1000, 100, shape).astype(np.float32)
            name = tl_file_name(image_id, modality, k)
            write_ome_tiff(study / name, tl.clip(0).astype(np.uint16), channel_name=modality)
            records.append(FocusRecord(name, modality, k, best))
            if k == z:
                write_ome_tiff(ds.inputs / INPUT_SUBDIR / name, tl.clip(0).astype(np.uint16), channel_name=modality)
                ds.names.append(name)
                ds.modality[name], ds.deviation[name] = modality, abs(z - best)
        name = tl_file_name(image_id, modality, z)
        for organelle in ORGANELLES:
            noise = rng.gamma(2, 500, shape)
            if organelle in organelles:
                gt = (rng.gamma(2, 3000, shape)).clip(0, 65535).astype(np.uint16)
                write_ome_tiff(study / gt_file_name(image_id, organelle), gt, channel_name=ORGANELLE_FILE_NAMES[organelle])
                write_ome_tiff(ds.flat / OUTPUT_SUBDIRS[organelle] / name, gt, channel_name=organelle)
                good = (gt * 0.7 + noise).clip(0, 65535).astype(np.uint16)
                ds.arrays[(name, organelle)] = (gt, good)
            else:
                good = noise.astype(np.uint16)
            write_ome_tiff(ds.good / OUTPUT_SUBDIRS[organelle] / name, good, channel_name=organelle)
            write_ome_tiff(ds.bad / OUTPUT_SUBDIRS[organelle] / name, rng.random(shape).astype(np.float32),
                           channel_name=organelle)
    write_bestz_csv(study / "bestz.csv", records)
    write_bestz_csv(ds.csv, records)
    ds.names.sort()
    return ds


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Dataset:
    return _make(tmp_path_factory.mktemp("lmc"))


def _expected(ds: Dataset) -> dict:
    results = []
    for name in ds.names:
        entry = {"job_name": name.removesuffix(".ome.tiff"), "image_name": name}
        for organelle in ORGANELLES:
            pair = ds.arrays.get((name, organelle))
            entry[organelle] = score_image(pair[1], pair[0], organelle) if pair else {}
        results.append(entry)
    return build_metrics(results, ds.modality, ds.deviation)


def _assert_same(got: dict, want: dict) -> None:
    """Equal nested dicts, floats to 1e-9, NaN equal to NaN, keys compared as strings (json)."""
    if isinstance(want, dict):
        assert {str(k) for k in got} == {str(k) for k in want}
        by_str = {str(k): v for k, v in got.items()}
        for k, v in want.items():
            _assert_same(by_str[str(k)], v)
    elif isinstance(want, list):
        assert len(got) == len(want)
        for g, w in zip(got, want):
            _assert_same(g, w)
    elif isinstance(want, float):
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, rel=1e-9, abs=1e-12)
    else:
        assert got == want


def test_score_flat_layout_matches_direct_computation(dataset, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    rc = main(["score", "--pred", str(dataset.good), "--gt", str(dataset.flat), "--csv", str(dataset.csv),
               "--input", str(dataset.inputs), "--json", str(out), "--workers", "2", "--quiet"])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    metrics = json.loads(out.read_text())
    assert list(metrics) == ["results", "agregate", "transmitted_light", "z_deviation"]
    _assert_same(metrics, _expected(dataset))
    assert metrics["results"][0]["tubulin"] == {}     # no ground truth: empty, as the challenge writes it
    assert "organelle" in printed.out and "|dz|=2" in printed.out and "nucleus" in printed.out


def test_score_study_layout_gives_the_same_metrics(dataset, tmp_path, capsys):
    """No CSV, no input folder: names from the predictions, focus from Study_1/bestz.csv."""
    out = tmp_path / "metrics.json"
    rc = main(["score", "--pred", str(dataset.good), "--gt", str(dataset.study), "--json", str(out),
               "--workers", "1", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    _assert_same(json.loads(out.read_text()), _expected(dataset))


def test_one_study_folder_works_as_ground_truth(dataset, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    rc = main(["score", "--pred", str(dataset.good), "--gt", str(dataset.study / "Study_1"), "--json", str(out),
               "--workers", "1", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    _assert_same(json.loads(out.read_text()), _expected(dataset))


def test_modality_from_ome_metadata_without_csv(dataset, tmp_path, capsys):
    out = tmp_path / "metrics.json"
    rc = main(["score", "--pred", str(dataset.good), "--gt", str(dataset.flat), "--input", str(dataset.inputs),
               "--json", str(out), "--workers", "1", "--quiet"])
    assert rc == 0
    metrics = read_metrics_json(out)
    want = _expected(dataset)
    _assert_same(metrics["transmitted_light"], want["transmitted_light"])
    assert metrics["z_deviation"] == {}               # best z unknown without a CSV
    assert "no focus information" in capsys.readouterr().out


def _copy_predictions(ds: Dataset, dest: Path) -> Path:
    shutil.copytree(ds.good, dest)
    return dest


def test_missing_prediction_and_wrong_shape_are_reported_per_file(dataset, tmp_path, capsys):
    pred = _copy_predictions(dataset, tmp_path / "pred")
    missing = pred / OUTPUT_SUBDIRS["nucleus"] / dataset.names[0]
    missing.unlink()
    wrong = pred / OUTPUT_SUBDIRS["mitochondria"] / dataset.names[-1]
    write_ome_tiff(wrong, np.zeros((7, 9), np.uint16), channel_name="mitochondria")
    out = tmp_path / "metrics.json"
    rc = main(["score", "--pred", str(pred), "--gt", str(dataset.flat), "--csv", str(dataset.csv),
               "--json", str(out), "--workers", "2", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1
    assert f"{missing}: missing prediction" in err
    assert "(7, 9)" in err and str(wrong) in err and "ground truth" in err
    results = {e["image_name"]: e for e in json.loads(out.read_text())["results"]}
    assert results[dataset.names[0]]["nucleus"] == {}
    assert results[dataset.names[-1]]["mitochondria"] == {}
    assert results[dataset.names[0]]["mitochondria"] != {}   # the other organelles still scored


def test_baselines_write_the_output_layout_and_score(dataset, tmp_path, capsys):
    assert main(["baselines", "--input", str(dataset.inputs), "--out", str(tmp_path / "b")]) == 0
    for baseline in ("constant", "tl_input"):
        for organelle in ORGANELLES:
            files = sorted(p.name for p in (tmp_path / "b" / baseline / OUTPUT_SUBDIRS[organelle]).iterdir())
            assert files == dataset.names
    capsys.readouterr()
    out = tmp_path / "metrics.json"
    rc = main(["score", "--pred", str(dataset.good), "--gt", str(dataset.flat), "--csv", str(dataset.csv),
               "--baselines", str(dataset.inputs), "--json", str(out), "--workers", "1", "--quiet"])
    printed = capsys.readouterr().out
    assert rc == 0
    assert "side by side" in printed and "constant" in printed and "tl_input" in printed
    constant = read_metrics_json(tmp_path / "metrics.constant.json")
    assert constant["agregate"]["nucleus"]["PCC"] == 0.0
    assert constant["agregate"]["nucleus"]["C_dist"] == 1.0
    tl = read_metrics_json(tmp_path / "metrics.tl_input.json")
    assert set(tl["agregate"]) == {"nucleus", "mitochondria", "tubulin", "actin"}


def test_bare_baselines_flag_uses_study_inputs(dataset, tmp_path, capsys):
    rc = main(["score", "--pred", str(dataset.good), "--gt", str(dataset.study), "--baselines",
               "--json", str(tmp_path / "m.json"), "--workers", "1", "--quiet"])
    assert rc == 0, capsys.readouterr().err
    assert read_metrics_json(tmp_path / "m.constant.json")["agregate"]["nucleus"]["PCC"] == 0.0


def test_rank_puts_the_good_model_first(dataset, tmp_path, capsys):
    good_json = tmp_path / "good.json"
    main(["score", "--pred", str(dataset.good), "--gt", str(dataset.flat), "--csv", str(dataset.csv),
          "--json", str(good_json), "--workers", "1", "--quiet"])
    capsys.readouterr()
    board = tmp_path / "board.json"
    rc = main(["rank", f"good={good_json}", f"bad={dataset.bad}", "--gt", str(dataset.flat),
               "--csv", str(dataset.csv), "--baselines", str(dataset.inputs), "--json", str(board),
               "--workers", "1", "--quiet"])
    printed = capsys.readouterr().out
    assert rc == 0
    leaderboard = json.loads(board.read_text())["leaderboard"]
    assert leaderboard[0]["name"] == "good" and leaderboard[0]["position"] == 1
    assert {e["name"] for e in leaderboard} == {"good", "bad", "baseline:constant", "baseline:tl_input"}
    assert "leaderboard" in printed and "good" in printed


def test_report_writes_pngs_and_index(dataset, tmp_path, capsys):
    rc = main(["report", "--pred", str(dataset.good), "--gt", str(dataset.study), "--out", str(tmp_path / "r"),
               "--workers", "1", "--quiet"])
    assert rc == 0
    index = (tmp_path / "r" / "index.html").read_text()
    for organelle in ORGANELLES:
        for kind in ("examples", "focus"):
            png = tmp_path / "r" / f"{organelle}_{kind}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert png.name in index


def test_bad_ground_truth_folder_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc = main(["score", "--pred", str(tmp_path), "--gt", str(tmp_path / "empty"), "--quiet"])
    assert rc == 2
    assert "neither the challenge layout" in capsys.readouterr().err
