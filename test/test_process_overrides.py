"""process.py --modality / --pixel-size fill in or replace metadata; --device cuda without CUDA stops at once."""
from __future__ import annotations

import logging

import pytest
import tifffile
from test_inference_support import tl_array, weights_dir, write_tl  # noqa: F401

import process

FAST = ["--tta", "none", "--quiet"]


def _run(inp, out, weights, *extra) -> int:
    return process.main(["--input", str(inp), "--output", str(out), "--weights", str(weights), "--device", "cpu",
                         *FAST, *extra])


def _output_pixel_size(out, name) -> tuple[float, float] | None:
    from preprocessing.ome_io import read_ome_tiff
    return read_ome_tiff(next(out.glob(f"images/nucleus-*/{name}"))).pixel_size_um


def test_flags_fill_in_what_a_plain_tiff_lacks(tmp_path, weights_dir, caplog):  # noqa: F811
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "plain.tif", tl_array((24, 24)))
    caplog.set_level(logging.INFO)
    assert _run(tmp_path / "in", tmp_path / "out", weights_dir, "--modality", "phase-contrast",
                "--pixel-size", "0.2") == 0
    text = caplog.text
    assert "modality=PC models=" in text and "(fallback)" not in text
    assert _output_pixel_size(tmp_path / "out", "plain.tif") == pytest.approx((0.2, 0.2))


def test_flags_replace_metadata_and_say_so(tmp_path, weights_dir, caplog):  # noqa: F811
    write_tl(tmp_path / "in" / "a.tiff", tl_array((24, 24)), modality="BF")
    caplog.set_level(logging.INFO)
    assert _run(tmp_path / "in", tmp_path / "out", weights_dir, "--modality", "DIC") == 0
    assert "a.tiff: modality BF from its metadata replaced by --modality DIC" in caplog.text
    assert "modality=DIC models=" in caplog.text


@pytest.mark.parametrize("extra, message", [
    (["--modality", "fluorescence"], "--modality 'fluorescence' is not bright field"),
    (["--pixel-size", "0"], "--pixel-size must be a finite number"),
    (["--pixel-size", "nan"], "--pixel-size must be a finite number"),
])
def test_bad_flags_are_one_line_and_exit_2(tmp_path, weights_dir, caplog, extra, message):  # noqa: F811
    write_tl(tmp_path / "in" / "a.tiff", tl_array((24, 24)))
    assert _run(tmp_path / "in", tmp_path / "out", weights_dir, *extra) == 2
    assert message in caplog.text
    assert not (tmp_path / "out").exists()          # stopped before anything was read or written


def test_cuda_requested_without_cuda_stops_once_before_any_image(tmp_path, weights_dir, caplog, monkeypatch):  # noqa: F811
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    write_tl(tmp_path / "in" / "a.tiff", tl_array((24, 24)))
    code = process.main(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
                         "--weights", str(weights_dir), "--device", "cuda", *FAST])
    assert code == 2
    assert caplog.text.count("CUDA is not available") == 1 and "FAILED" not in caplog.text


def test_uncertainty_flag_writes_spread_maps_beside_the_challenge_folders(tmp_path, weights_dir):  # noqa: F811
    write_tl(tmp_path / "in" / "a.tiff", tl_array((24, 24)), modality="BF")
    out = tmp_path / "out"
    assert process.main(["--input", str(tmp_path / "in"), "--output", str(out), "--weights", str(weights_dir),
                         "--device", "cpu", "--tta", "rot4", "--quiet", "--uncertainty"]) == 0
    spreads = sorted(out.glob("uncertainty/*-spread/a.tiff"))
    assert [p.parent.name for p in spreads] == ["actin-spread", "mitochondria-spread", "nucleus-spread",
                                                "tubulin-spread"]
    from preprocessing.ome_io import read_ome_tiff
    maps = [read_ome_tiff(p) for p in spreads]
    assert all(m.dtype == "float32" and m.shape == (24, 24) and m.pixel_size_um == pytest.approx((0.1, 0.1))
               for m in maps)
    assert len(list(out.glob("images/*/a.tiff"))) == 4            # the challenge folders hold only the four
    assert not list((out / "images").rglob("*spread*"))
    plain = tmp_path / "plain"
    assert _run(tmp_path / "in", plain, weights_dir) == 0
    assert not (plain / "uncertainty").exists()


def test_weights_come_from_the_platform_model_folder_when_it_has_a_manifest(
        tmp_path, monkeypatch, caplog, weights_dir):  # noqa: F811
    monkeypatch.delenv("LMC_WEIGHTS", raising=False)
    monkeypatch.setattr(process, "PLATFORM_MODEL_DIR", tmp_path / "opt_ml_model")
    assert process.default_weights() == process.DEFAULT_WEIGHTS          # absent: the baked-in weights
    (tmp_path / "opt_ml_model").mkdir()
    assert process.default_weights() == process.DEFAULT_WEIGHTS          # empty: still the baked-in ones
    import shutil
    shutil.copytree(weights_dir, tmp_path / "opt_ml_model" / "weights")
    assert process.default_weights() == str(tmp_path / "opt_ml_model" / "weights")
    shutil.copytree(weights_dir, tmp_path / "opt_ml_model", dirs_exist_ok=True)
    assert process.default_weights() == str(tmp_path / "opt_ml_model")
    monkeypatch.setenv("LMC_WEIGHTS", str(weights_dir))                  # the environment wins
    assert process.default_weights() == str(weights_dir)
    monkeypatch.delenv("LMC_WEIGHTS")
    write_tl(tmp_path / "in" / "a.tiff", tl_array((24, 24)))
    caplog.set_level(logging.INFO)
    assert process.main(["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--device", "cpu",
                         *FAST]) == 0
    import torch
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("torch ")]
    assert f"torch {torch.__version__}" in line and "device cpu" in line
    assert f"weights {tmp_path / 'opt_ml_model'} (manifest sha256 " in line


def test_run_info_records_the_settings_for_the_report(tmp_path, weights_dir):  # noqa: F811
    import json
    write_tl(tmp_path / "in" / "a.tiff", tl_array((24, 24)))
    assert _run(tmp_path / "in", tmp_path / "out", weights_dir, "--modality", "PC", "--overlap", "0.5") == 0
    info = json.loads((tmp_path / "out" / "run_info.json").read_text())
    assert info["tta"] == "none" and info["overlap"] == 0.5 and info["modality_override"] == "PC"
    assert info["weights"] == str(weights_dir) and len(info["manifest_sha256"]) == 64
    from metrics.report_provenance import read_settings
    settings, source = read_settings(tmp_path / "out")
    assert settings["tta"] == "none" and source.endswith("run_info.json")
