"""Every kind of 2D image a person brings gets its four outputs at the right scale, routed right:
PNG/JPEG/GIF through Pillow, plain and ImageJ TIFFs, OME-TIFFs with free-text channel names, and
stacks with a chosen plane. Study folders' ground-truth files are named and skipped."""
from __future__ import annotations

import logging

import numpy as np
import pytest
import tifffile
from PIL import Image
from test_inference_support import tl_array, weights_dir, write_tl  # noqa: F401

import process
from inference.inputs import load_input
from preprocessing.image_files import read_image_file
from preprocessing.input_listing import list_inputs
from preprocessing.ome_io import OmeReadError, read_ome_tiff

FAST = ["--tta", "none", "--quiet", "--device", "cpu"]


def _run(inp, out, weights, *extra) -> int:
    return process.main(["--input", str(inp), "--output", str(out), "--weights", str(weights), *FAST, *extra])


def _outputs(out, name) -> list:
    return [read_ome_tiff(p) for p in sorted(out.glob(f"images/*-fluorescence-ome-tiff/{name}"))]


def _png(path, array, **save):
    Image.fromarray(array).save(path, **save)
    return path


def test_png_gets_four_ome_tiffs_at_the_given_scale_and_route(tmp_path, weights_dir, caplog):  # noqa: F811
    grey8 = (tl_array((24, 28)) >> 8).astype(np.uint8)
    _png((tmp_path / "in").mkdir() or tmp_path / "in" / "cells.png", grey8)
    caplog.set_level(logging.INFO)
    assert _run(tmp_path / "in", tmp_path / "out", weights_dir, "--modality", "Ph2", "--pixel-size", "0.2") == 0
    outputs = _outputs(tmp_path / "out", "cells.ome.tiff")
    assert len(outputs) == 4
    assert all(o.shape == (24, 28) and o.pixel_size_um == pytest.approx((0.2, 0.2)) for o in outputs)
    assert "modality=PC models=" in caplog.text and "(fallback)" not in caplog.text


def test_png_density_gives_the_pixel_size_and_display_defaults_do_not(tmp_path):
    grey = (tl_array((20, 20)) >> 8).astype(np.uint8)
    # 50800 dots per inch = 0.5 µm pixels; stored in PNG's pHYs as pixels per metre.
    image, _ = load_input(_png(tmp_path / "calibrated.png", grey, dpi=(50800, 50800)))
    assert image.pixel_size_um == pytest.approx((0.5, 0.5), rel=1e-3)
    assert image.modality is None
    image, _ = load_input(_png(tmp_path / "screen.png", grey, dpi=(96, 96)))
    assert image.pixel_size_um is None


def test_sixteen_bit_png_keeps_its_values_and_rgba_drops_alpha(tmp_path):
    wide = tl_array((16, 18))
    raw = read_image_file(_png(tmp_path / "deep.png", wide))
    assert raw.data.dtype == np.uint16 or raw.data.dtype == np.int32
    np.testing.assert_array_equal(raw.data, wide)
    rgba = np.zeros((16, 18, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2], rgba[..., 3] = 30, 60, 90, 255
    image, notes = load_input(_png(tmp_path / "colour.png", rgba))
    np.testing.assert_allclose(image.array, 60.0)
    assert "alpha sample(s) dropped" in notes[0] and "averaged to grey" in notes[0]


def test_jpeg_reads_as_grey(tmp_path):
    grey = (tl_array((32, 32)) >> 8).astype(np.uint8)
    image, _ = load_input(_png(tmp_path / "cells.jpg", grey, quality=95))
    assert image.shape == (32, 32)
    assert np.abs(image.array - grey).mean() < 3          # lossy, but the same picture


def test_animated_gif_takes_the_middle_frame_or_the_one_asked_for(tmp_path):
    frames = [Image.fromarray(np.full((8, 10), v, np.uint8), mode="L") for v in (10, 120, 240)]
    path = tmp_path / "stack.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    image, notes = load_input(path)
    assert float(image.array.mean()) == pytest.approx(120, abs=2)
    assert "page stack of 3: the middle plane (index 1) used" in notes[0]
    image, notes = load_input(path, plane=2)
    assert float(image.array.mean()) == pytest.approx(240, abs=2)
    assert "plane 2 used, as asked" in notes[0]


def test_broken_image_files_fail_alone_naming_the_file(tmp_path, weights_dir, caplog):  # noqa: F811
    (tmp_path / "in").mkdir()
    good = _png(tmp_path / "in" / "good.png", (tl_array((20, 20)) >> 8).astype(np.uint8))
    (tmp_path / "in" / "cut.png").write_bytes(good.read_bytes()[:60])
    (tmp_path / "in" / "text.jpg").write_text("not a picture")
    with pytest.raises(OmeReadError, match="text.jpg: not an image Pillow can read"):
        read_image_file(tmp_path / "in" / "text.jpg")
    assert _run(tmp_path / "in", tmp_path / "out", weights_dir) == 1
    assert len(_outputs(tmp_path / "out", "good.ome.tiff")) == 4
    assert "FAILED" in caplog.text and "cut.png" in caplog.text and "text.jpg" in caplog.text


def test_imagej_tiff_calibration_reaches_the_outputs(tmp_path, weights_dir):  # noqa: F811
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "ij.tif", tl_array((24, 24)), imagej=True,
                     resolution=(1 / 0.25, 1 / 0.25), metadata={"unit": "micron"})
    assert _run(tmp_path / "in", tmp_path / "out", weights_dir, "--modality", "DIC") == 0
    outputs = _outputs(tmp_path / "out", "ij.tif")
    assert len(outputs) == 4 and all(o.pixel_size_um == pytest.approx((0.25, 0.25)) for o in outputs)


def test_ome_tiff_named_phase_contrast_routes_to_pc(tmp_path, weights_dir, caplog):  # noqa: F811
    write_tl(tmp_path / "in" / "pc.ome.tiff", tl_array((24, 24)), modality="phase-contrast", pixel_size_um=(0.3, 0.3))
    caplog.set_level(logging.INFO)
    assert _run(tmp_path / "in", tmp_path / "out", weights_dir) == 0
    assert "modality=PC models=" in caplog.text
    outputs = _outputs(tmp_path / "out", "pc.ome.tiff")
    assert len(outputs) == 4 and all(o.pixel_size_um == pytest.approx((0.3, 0.3)) for o in outputs)


def test_plane_flag_picks_a_z_slice_and_an_impossible_one_fails_that_file(tmp_path, weights_dir, caplog):  # noqa: F811
    stack = np.stack([tl_array((20, 20), seed=k) for k in range(5)])
    (tmp_path / "in").mkdir()
    tifffile.imwrite(tmp_path / "in" / "z.ome.tif", stack, metadata={"axes": "ZYX"})
    caplog.set_level(logging.INFO)
    assert _run(tmp_path / "in", tmp_path / "out", weights_dir, "--plane", "4") == 0
    assert "z-stack of 5: plane 4 used, as asked" in caplog.text
    caplog.clear()
    assert _run(tmp_path / "in", tmp_path / "out2", weights_dir, "--plane", "7") == 1
    assert "plane 7 asked for, but the z-stack has 5 planes (0 to 4)" in caplog.text
    assert _run(tmp_path / "in", tmp_path / "out3", weights_dir, "--plane", "-1") == 2


def test_study_folder_ground_truth_is_skipped_with_its_reason(tmp_path, weights_dir, caplog):  # noqa: F811
    study = tmp_path / "Study_1"
    write_tl(study / "image_7_BF_z0.ome.tiff", tl_array((20, 20)))
    write_tl(study / "image_7_Nucleus.ome.tiff", tl_array((20, 20)), modality="Nucleus")
    files, skipped = list_inputs(study)
    assert [p.name for p in files] == ["image_7_BF_z0.ome.tiff"]
    assert [(s.name, s.dropped) for s in skipped] == [("image_7_Nucleus.ome.tiff", False)]
    assert "Nucleus ground truth of a study folder" in skipped[0].reason
    assert _run(study, tmp_path / "out", weights_dir) == 0       # a skipped ground truth is not a failure
    assert caplog.text.count("image_7_Nucleus.ome.tiff") == 1


def test_a_png_whose_output_name_is_taken_is_dropped_not_overwritten(tmp_path):
    write_tl(tmp_path / "a.ome.tiff", tl_array((20, 20)))
    _png(tmp_path / "a.png", (tl_array((20, 20)) >> 8).astype(np.uint8))
    (tmp_path / "notes.txt").write_text("x")
    files, skipped = list_inputs(tmp_path)
    assert [p.name for p in files] == ["a.ome.tiff"]
    by_name = {s.name: s for s in skipped}
    assert by_name["a.png"].dropped and "like those of a.ome.tiff" in by_name["a.png"].reason
    assert not by_name["notes.txt"].dropped and ".png" in by_name["notes.txt"].reason
