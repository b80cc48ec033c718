"""process.py end to end: a folder of good and bad inputs, outputs the evaluator can read."""
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import xmltodict
from ome_types import from_xml
from test_inference_support import tl_array, weights_dir, write_tl  # noqa: F401

import process
from preprocessing.layout import OUTPUT_SUBDIRS
from preprocessing.ome_io import ORGANELLE_FILE_NAMES, ORGANELLES

REPO = Path(__file__).resolve().parents[1]
FAST = ["--tta", "none", "--device", "cpu", "--quiet"]


def _outputs(out: Path, name: str) -> dict[str, Path]:
    return {o: out / OUTPUT_SUBDIRS[o] / name for o in ORGANELLES}


def _run(inp, out, weights, *extra):
    return process.main(["--input", str(inp), "--output", str(out), "--weights", str(weights), *FAST, *extra])


def test_good_folder_writes_four_readable_outputs_and_exits_zero(tmp_path, weights_dir, caplog):  # noqa: F811
    inp = tmp_path / "in"
    write_tl(inp / "image_1_BF_z0.ome.tiff", tl_array((48, 64)), "BF", (0.0812, 0.065))
    write_tl(inp / "opaque-id.tiff", tl_array((37, 29), seed=1), "DIC", (0.11, 0.11))
    caplog.set_level(logging.INFO)
    assert _run(inp, tmp_path / "out", weights_dir, "--tta", "rot4") == 0
    for name, shape, pixel, modality in [("image_1_BF_z0.ome.tiff", (48, 64), (0.0812, 0.065), "BF"),
                                         ("opaque-id.tiff", (37, 29), (0.11, 0.11), "DIC")]:
        for organelle, path in _outputs(tmp_path / "out", name).items():
            with tifffile.TiffFile(path) as tif:
                data, xml = tif.asarray(), tif.ome_metadata
                x_res = tif.pages[0].tags["XResolution"].value
            assert data.dtype == np.uint16 and data.squeeze().shape == shape
            ome = from_xml(xml)
            pixels = ome.images[0].pixels
            assert (pixels.size_y, pixels.size_x) == shape
            assert pixels.physical_size_y == pytest.approx(pixel[0])
            assert pixels.physical_size_x == pytest.approx(pixel[1])
            assert pixels.channels[0].name == ORGANELLE_FILE_NAMES[organelle]
            parsed = xmltodict.parse(xml)["OME"]["Image"]["Pixels"]
            assert float(parsed["@PhysicalSizeX"]) == pytest.approx(pixel[1])
            assert x_res[0] / x_res[1] == pytest.approx(1e4 / pixel[1], rel=1e-4)  # pixels per cm
        line = next(r.getMessage() for r in caplog.records
                    if r.getMessage().startswith(name + ":") and "modality=" in r.getMessage())
        assert f"modality={modality}" in line and "models=" in line and line.endswith("s")


def test_bad_inputs_are_named_and_never_stop_the_others(tmp_path, weights_dir, caplog):  # noqa: F811
    inp = tmp_path / "in"
    write_tl(inp / "good.tiff", tl_array((40, 40)))
    tifffile.imwrite(inp / "nometa.tif", tl_array((33, 47), seed=2))                    # no OME at all
    write_tl(inp / "unnamed.tiff", tl_array((24, 24), seed=3), modality=None, pixel_size_um=None)
    write_tl(inp / "tiny.tiff", tl_array((10, 10), seed=4))
    write_tl(inp / "constant.tiff", np.full((32, 36), 812, np.uint16))
    write_tl(inp / "zeros.tiff", np.zeros((30, 30), np.uint16))
    rgb = np.stack([tl_array((28, 34), seed=5) // 256] * 3, axis=-1).astype(np.uint8)
    tifffile.imwrite(inp / "rgb.tiff", rgb, photometric="rgb")
    nan = tl_array((26, 26), seed=6).astype(np.float32)
    nan[3, 4], nan[10, 10] = np.nan, np.inf
    write_tl(inp / "nan.tiff", nan)
    good_bytes = (inp / "good.tiff").read_bytes()
    (inp / "truncated.tiff").write_bytes(good_bytes[: len(good_bytes) // 2])
    (inp / "garbage.tif").write_text("not a tiff")
    (inp / "readme.txt").write_text("ignored")
    caplog.set_level(logging.INFO)

    assert _run(inp, tmp_path / "out", weights_dir) == 1
    written = {"good.tiff": (40, 40), "nometa.tif": (33, 47), "unnamed.tiff": (24, 24), "tiny.tiff": (10, 10),
               "constant.tiff": (32, 36), "zeros.tiff": (30, 30), "rgb.tiff": (28, 34), "nan.tiff": (26, 26)}
    for name, shape in written.items():
        for path in _outputs(tmp_path / "out", name).values():
            assert tifffile.imread(path).squeeze().shape == shape, name
    for name in ("truncated.tiff", "garbage.tif", "readme.txt"):
        assert not any(p.exists() for p in _outputs(tmp_path / "out", name).values())
    log = "\n".join(r.getMessage() for r in caplog.records)
    for name, reason in [("truncated.tiff", "FAILED"), ("garbage.tif", "FAILED"), ("rgb.tiff", "colour"),
                         ("nan.tiff", "NaN"), ("constant.tiff", "constant"), ("zeros.tiff", "constant"),
                         ("tiny.tiff", "small"), ("nometa.tif", "fallback"), ("unnamed.tiff", "pixel size")]:
        assert any(name in line and reason in line for line in log.splitlines()), (name, reason)
    assert "2 input(s) failed: garbage.tif, truncated.tiff" in log


def test_environment_variables_set_the_folders(tmp_path, weights_dir, monkeypatch):  # noqa: F811
    write_tl(tmp_path / "in" / "a.tiff", tl_array((20, 24)))
    monkeypatch.setenv("LMC_INPUT", str(tmp_path / "in"))
    monkeypatch.setenv("LMC_OUTPUT", str(tmp_path / "out"))
    monkeypatch.setenv("LMC_WEIGHTS", str(weights_dir))
    assert process.main(FAST) == 0
    assert all(p.is_file() for p in _outputs(tmp_path / "out", "a.tiff").values())


def test_missing_weights_empty_input_and_bad_settings_exit_nonzero(tmp_path, weights_dir, caplog):  # noqa: F811
    write_tl(tmp_path / "in" / "a.tiff", tl_array((20, 24)))
    (tmp_path / "empty").mkdir()
    assert _run(tmp_path / "in", tmp_path / "out", tmp_path / "no-weights") == 1
    assert "manifest not found" in caplog.text
    assert _run(tmp_path / "empty", tmp_path / "out", weights_dir) == 1
    assert "no input images (.tif/.tiff, .png, .jpg, ...)" in caplog.text
    assert _run(tmp_path / "missing", tmp_path / "out", weights_dir) == 1
    assert _run(tmp_path / "in", tmp_path / "out", weights_dir, "--overlap", "1.0") == 2


def test_help_is_instant_because_torch_is_imported_lazily():
    code = "import sys, process; print('torch' in sys.modules, 'models.registry' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    helptext = subprocess.run([sys.executable, "process.py", "--help"], cwd=REPO, capture_output=True,
                              text=True, check=True).stdout
    for flag in ("--input", "--output", "--weights", "--overlap", "--tta", "--batch-size", "--device", "--quiet"):
        assert flag in helptext
