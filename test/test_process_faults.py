"""Issue 20: every readable input gets its four outputs, bounded, and nothing odd crashes or lies.

Each class of awkward input is a case here, generated tiny in the test and run through process.py
with the tiny test checkpoints."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import tifffile
from test_inference_support import tl_array, weights_dir, write_tl  # noqa: F401

import process
from preprocessing.layout import OUTPUT_SUBDIRS
from preprocessing.ome_io import ORGANELLES

FAST = ["--tta", "none", "--device", "cpu", "--quiet"]


def _outputs(out: Path, name: str) -> dict[str, Path]:
    return {o: out / OUTPUT_SUBDIRS[o] / name for o in ORGANELLES}


def _run(inp, out, weights, *extra) -> int:
    return process.main(["--input", str(inp), "--output", str(out), "--weights", str(weights), *FAST, *extra])


def _shape_of_outputs(out: Path, name: str) -> set[tuple[int, ...]]:
    """The H x W of each output that exists (the file is TCZYX with T = C = Z = 1)."""
    return {tifffile.imread(p).shape[-2:] for p in _outputs(out, name).values() if p.exists()}


def _lines(caplog, name: str) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if name in r.getMessage())


def _ome(path: Path, array: np.ndarray, axes: str, names: list[str] | None = None, **meta) -> None:
    metadata = {"axes": axes, **meta}
    if names:
        metadata["Channel"] = {"Name": names}
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, array, ome=True, photometric="minisblack", metadata=metadata)


def test_readable_but_odd_inputs_all_get_four_outputs_with_the_reduction_logged(tmp_path, weights_dir, caplog):  # noqa: F811
    inp, out = tmp_path / "in", tmp_path / "out"
    plane = tl_array((24, 20))
    bf = tl_array((24, 20), seed=7)
    _ome(inp / "zstack.tiff", np.stack([plane, bf, plane]), "ZYX", PhysicalSizeX=0.1, PhysicalSizeY=0.1)
    _ome(inp / "tstack.tiff", np.stack([plane, bf]), "TYX")
    _ome(inp / "named.tiff", np.stack([plane // 3, bf, plane // 2]), "CYX", ["Hoechst", "BF", "Phalloidin"])
    _ome(inp / "unnamed.tiff", np.stack([plane, bf]), "CYX")
    grey_alpha = np.stack([plane, np.full_like(plane, 65535)], axis=-1)
    tifffile.imwrite(inp / "alpha.tiff", grey_alpha, photometric="minisblack", extrasamples=["unassalpha"])
    with tifffile.TiffWriter(inp / "pages.tiff") as writer:  # two pages of different shapes
        writer.write(plane)
        writer.write(tl_array((12, 9)))
    write_tl(inp / "row.tiff", tl_array((1, 37)))
    write_tl(inp / "column.tiff", tl_array((29, 1)))
    write_tl(inp / "dot.tiff", np.full((1, 1), 900, np.uint16))
    huge = tl_array((24, 20)).astype(np.float64) * 1e300
    write_tl(inp / "huge.tiff", huge)
    caplog.set_level(logging.INFO)

    assert _run(inp, out, weights_dir) == 0
    expected = {"zstack.tiff": ((24, 20), "z-stack of 3: the middle plane (index 1)"),
                "tstack.tiff": ((24, 20), "time series of 2: the middle plane (index 1)"),
                "named.tiff": ((24, 20), "transmitted-light channel 'BF' (index 1) used"),
                "unnamed.tiff": ((24, 20), "2 channels averaged"),
                "alpha.tiff": ((24, 20), "alpha/extra sample(s) dropped"),
                "pages.tiff": ((24, 20), None),
                "row.tiff": ((1, 37), "small image 1x37"), "column.tiff": ((29, 1), "small image 29x1"),
                "dot.tiff": ((1, 1), "small image 1x1"),
                "huge.tiff": ((24, 20), "values up to")}
    for name, (shape, note) in expected.items():
        assert _shape_of_outputs(out, name) == {shape}, name
        if note:
            assert note in _lines(caplog, name), name
    assert "modality=BF models=" in _lines(caplog, "named.tiff")


def test_the_tl_channel_is_picked_and_huge_floats_keep_their_structure(tmp_path):
    from inference.inputs import load_input
    bf, other = tl_array((16, 16), seed=1), tl_array((16, 16), seed=2)
    _ome(tmp_path / "c.tiff", np.stack([other, bf]), "CYX", ["Hoechst", "Brightfield"])
    image, _ = load_input(tmp_path / "c.tiff")
    np.testing.assert_array_equal(image.array, bf)
    assert image.modality == "BF"
    write_tl(tmp_path / "h.tiff", bf.astype(np.float64) * 1e300)
    image, notes = load_input(tmp_path / "h.tiff")
    assert np.isfinite(image.array).all() and np.corrcoef(image.array.ravel(), bf.ravel())[0, 1] > 0.999
    assert "float64 values up to" in notes[0]


@pytest.mark.parametrize("name,modality", [("phase-contrast", "PC"), ("Phase_Contrast", "PC"), ("Ph2", "PC"),
                                           ("TL DIC", "DIC"), ("Nomarski", "DIC"), ("DIC-TL", "DIC"),
                                           ("Bright Field", "BF"), ("TL-BF", "BF"), ("brightfield", "BF"),
                                           ("GFP", None), ("Phalloidin", None), ("BF DIC", None)])
def test_modality_spellings_route_correctly(name, modality):
    from preprocessing.ome_io import normalise_modality
    assert normalise_modality(name) == modality


def test_modality_spelling_reaches_the_route_through_process(tmp_path, weights_dir, caplog):  # noqa: F811
    write_tl(tmp_path / "in" / "a.tiff", tl_array((20, 20)), modality="Phase_Contrast")
    write_tl(tmp_path / "in" / "b.tiff", tl_array((20, 20)), modality="DIC-TL")
    caplog.set_level(logging.INFO)
    assert _run(tmp_path / "in", tmp_path / "out", weights_dir) == 0
    assert "modality=PC models=" in _lines(caplog, "a.tiff")
    assert "modality=DIC models=" in _lines(caplog, "b.tiff")


@pytest.mark.parametrize("pixel", [(5.0, 5.0), (1000.0, 1000.0), (1e-30, 1e-30), (5e-324, 5e-324)])
def test_absurd_pixel_sizes_are_bounded_and_said(tmp_path, weights_dir, caplog, pixel):  # noqa: F811
    inp = tmp_path / "in"
    inp.mkdir()
    xml = ('<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0">'
           '<Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint16" SizeX="20" SizeY="24" SizeC="1" '
           f'SizeZ="1" SizeT="1" PhysicalSizeX="{pixel[1]!r}" PhysicalSizeY="{pixel[0]!r}">'
           '<Channel ID="Channel:0" Name="BF" SamplesPerPixel="1"/><TiffData/></Pixels></Image></OME>')
    tifffile.imwrite(inp / "odd.tiff", tl_array((24, 20)), description=xml, metadata=None)
    caplog.set_level(logging.INFO)
    assert _run(inp, tmp_path / "out", weights_dir) == 0
    assert _shape_of_outputs(tmp_path / "out", "odd.tiff") == {(24, 20)}
    lines = _lines(caplog, "odd.tiff")
    assert f"resampling factor {pixel[0] / 0.1:.4g}" in lines and "outside [0.25, 2.0]" in lines
    if pixel[0] < 1e-38:   # not a float32: the outputs go without it, and say so
        assert "not a finite positive float32; omitted" in lines
