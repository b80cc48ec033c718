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


def test_odd_but_readable_inputs_get_four_outputs_and_the_reduction_is_logged(tmp_path, weights_dir, caplog):  # noqa: F811
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
                "alpha.tiff": ((24, 20), "1 alpha sample(s) dropped"),
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
    # Interleaved samples that OME names one channel each follow the channel rule, not RGB's.
    xml = ('<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image ID="Image:0"><Pixels '
           'ID="Pixels:0" DimensionOrder="XYCZT" Type="uint16" SizeX="16" SizeY="16" SizeC="3" SizeZ="1" '
           'SizeT="1" Interleaved="true">' + "".join(
               f'<Channel ID="Channel:0:{k}" Name="{n}" SamplesPerPixel="1"/>'
               for k, n in enumerate(["Hoechst", "BF", "Phalloidin"])) + '<TiffData/></Pixels></Image></OME>')
    tifffile.imwrite(tmp_path / "s.tiff", np.stack([other, bf, other], axis=-1), photometric="rgb",
                     description=xml, metadata=None)
    image, notes = load_input(tmp_path / "s.tiff")
    np.testing.assert_array_equal(image.array, bf)
    assert "transmitted-light channel 'BF' (index 1)" in notes[0]
    # Unspecified extra samples are data, not alpha: three samples averaged.
    tifffile.imwrite(tmp_path / "x.tiff", np.stack([other, bf, other], axis=-1), photometric="minisblack",
                     planarconfig="contig", extrasamples=["unspecified", "unspecified"])
    image, notes = load_input(tmp_path / "x.tiff")
    np.testing.assert_allclose(image.array, (2 * other.astype(np.float64) + bf) / 3, rtol=1e-5)
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


def test_unprocessed_entries_are_named_and_dropped_inputs_fail_the_run(tmp_path, weights_dir, caplog):  # noqa: F811
    import os
    inp, out = tmp_path / "in", tmp_path / "out"
    long_name = "n" * 245 + ".tiff"                     # 250 bytes: the old temporary name was longer
    write_tl(inp / long_name, tl_array((16, 16)))
    write_tl(inp / ".hidden.tiff", tl_array((16, 16)))
    (inp / "broken.tiff").symlink_to(tmp_path / "nowhere.tiff")
    os.mkfifo(inp / "pipe.tiff")                         # opening it would block: must never be read
    (inp / "folder.tiff").mkdir()
    (inp / "notes.txt").write_text("x")
    (inp / "link.tiff").symlink_to(inp / long_name)      # a link to a file is an input
    caplog.set_level(logging.INFO)
    assert _run(inp, out, weights_dir) == 1
    assert _shape_of_outputs(out, long_name) == {(16, 16)} and _shape_of_outputs(out, "link.tiff") == {(16, 16)}
    log = caplog.text
    for name, reason in [(".hidden.tiff", "hidden"), ("broken.tiff", "broken symbolic link"),
                         ("pipe.tiff", "FIFO"), ("folder.tiff", "directory"), ("notes.txt", "not a TIFF or other image")]:
        assert f"skipped {name}: " in log and reason in _lines(caplog, f"skipped {name}"), name
    assert "3 entries looked like input(s) but could not be read: broken.tiff, folder.tiff, pipe.tiff" in log


def test_hidden_and_foreign_entries_alone_do_not_fail_the_run(tmp_path, weights_dir, caplog):  # noqa: F811
    write_tl(tmp_path / "in" / "a.tiff", tl_array((16, 16)))
    (tmp_path / "in" / ".DS_Store").write_bytes(b"\0")
    (tmp_path / "in" / "readme.md").write_text("x")
    assert _run(tmp_path / "in", tmp_path / "out", weights_dir) == 0
    assert "skipped .DS_Store: hidden file" in caplog.text and "skipped readme.md" in caplog.text


def test_input_may_be_one_file_and_bad_inputs_are_one_line(tmp_path, weights_dir, caplog, monkeypatch):  # noqa: F811
    path = write_tl(tmp_path / "in" / "one.tiff", tl_array((16, 16)))
    write_tl(tmp_path / "in" / "other.tiff", tl_array((16, 16)))
    assert _run(path, tmp_path / "out", weights_dir) == 0
    assert _shape_of_outputs(tmp_path / "out", "one.tiff") == {(16, 16)}
    assert not _shape_of_outputs(tmp_path / "out", "other.tiff")
    assert _run(tmp_path / "in" / "missing.tiff", tmp_path / "out", weights_dir) == 1
    assert "input " + str(tmp_path / "in" / "missing.tiff") + " does not exist" in caplog.text

    import preprocessing.input_listing as listing

    def unlistable(folder):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(listing, "list_inputs", unlistable)
    assert _run(tmp_path / "in", tmp_path / "out", weights_dir) == 1
    assert f"cannot list the input folder {tmp_path / 'in'}: Permission denied" in caplog.text


def test_a_killed_runs_leftovers_are_removed_and_a_live_runs_kept(tmp_path, weights_dir, caplog):  # noqa: F811
    import os
    write_tl(tmp_path / "in" / "a.tiff", tl_array((16, 16)))
    folder = _outputs(tmp_path / "out", "a.tiff")["nucleus"].parent
    folder.mkdir(parents=True)
    dead = folder / ".lmc-4194304999-deadbeef.partial"      # no such pid
    legacy = folder / ".a.tiff.x1y2.partial"                 # the older writer's name
    live = folder / f".lmc-{os.getppid()}-cafe0000.partial"  # a run still going on beside this one
    for path in (dead, legacy, live):
        path.write_bytes(b"half")
    assert _run(tmp_path / "in", tmp_path / "out", weights_dir) == 0
    assert not dead.exists() and not legacy.exists() and live.exists()
    assert "removed 2 temporary file(s) left by an interrupted run" in caplog.text
    assert sorted(p.name for p in folder.iterdir()) == sorted(["a.tiff", live.name])


def test_an_unwritable_output_is_found_before_any_inference(tmp_path, weights_dir, caplog):  # noqa: F811
    write_tl(tmp_path / "in" / "a.tiff", tl_array((16, 16)))
    (tmp_path / "out").write_text("a file where the output folder should be")
    caplog.set_level(logging.INFO)
    assert _run(tmp_path / "in", tmp_path / "out", weights_dir) == 1
    assert "output folder not writable" in caplog.text and "modality=" not in caplog.text


def test_a_full_disk_is_named_and_leaves_none_of_the_four(tmp_path, weights_dir, caplog, monkeypatch):  # noqa: F811
    import errno

    import preprocessing.ome_io as ome_io
    write_tl(tmp_path / "in" / "a.tiff", tl_array((16, 16)))
    write_tl(tmp_path / "in" / "b.tiff", tl_array((16, 16)))
    real, calls = ome_io.tifffile.imwrite, []

    def third_write_fills_the_disk(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)
    monkeypatch.setattr(ome_io.tifffile, "imwrite", third_write_fills_the_disk)
    assert _run(tmp_path / "in", tmp_path / "out", weights_dir) == 1
    assert not _shape_of_outputs(tmp_path / "out", "a.tiff")          # not 2 of 4: none
    assert _shape_of_outputs(tmp_path / "out", "b.tiff") == {(16, 16)}
    assert "disk full" in _lines(caplog, "FAILED")
    leftovers = [p for p in (tmp_path / "out").rglob("*") if p.is_file() and p.suffix == ".partial"]
    assert leftovers == []


def test_tifffile_fallbacks_are_not_errors_for_files_that_are_read(tmp_path, weights_dir, caplog):  # noqa: F811
    inp = tmp_path / "in"
    inp.mkdir()
    broken_ome = '<?xml version="1.0"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06"><Image'
    tifffile.imwrite(inp / "badome.tiff", tl_array((16, 16)), description=broken_ome, metadata=None)
    tifffile.imwrite(inp / "latin1.tiff", tl_array((16, 16)), description=b"caf\xe9\x81 <x/>", metadata=None)
    assert _run(inp, tmp_path / "out", weights_dir) == 0
    assert _shape_of_outputs(tmp_path / "out", "badome.tiff") == {(16, 16)}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_process_py_prints_no_traceback_for_input_problems(tmp_path, weights_dir):  # noqa: F811
    import os
    import subprocess
    import sys
    inp = tmp_path / "in"
    write_tl(inp / "ok.tiff", tl_array((16, 16)))
    (inp / "garbage.tiff").write_bytes(b"II*\x00" + bytes(range(256)) * 4)
    (inp / "broken.tiff").symlink_to(tmp_path / "nowhere")
    os.mkfifo(inp / "pipe.tiff")
    tifffile.imwrite(inp / "stack.tiff", np.zeros((3, 2, 16, 16), np.uint16))
    repo = Path(__file__).resolve().parents[1]
    runs = [["--input", str(inp)], ["--input", str(tmp_path / "missing")], ["--input", str(inp / "pipe.tiff")]]
    for args in runs:
        done = subprocess.run([sys.executable, "process.py", *args, "--output", str(tmp_path / "out"),
                               "--weights", str(weights_dir), *FAST], cwd=repo, capture_output=True, text=True,
                              timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert _shape_of_outputs(tmp_path / "out", "stack.tiff") == {(16, 16)}


# --- the contract over random inputs ---------------------------------------------------------------

_DTYPES = (np.uint8, np.uint16, np.int16, np.uint32, np.float32, np.float64)
_PIXELS = (None, (0.065, 0.065), (0.1, 0.08), (5.0, 5.0), (1e-30, 1e-30), (1000.0, 1000.0), (5e-324, 5e-324))
_UNITS = {"µm": 1.0, "nm": 1e3, "cm": 1e-4, "\u03bcm": 1.0, "pm": 1e6}
_NAMES = ("BF", "PC", "DIC", "phase-contrast", "Nomarski", "Ph2", "GFP", None)


def _random_input(rng: np.random.Generator, folder: Path, index: int) -> tuple[str, tuple[int, int], tuple | None]:
    """Write one random readable input; (name, the plane's H x W, its pixel size in µm or None)."""
    shape = (int(rng.integers(1, 49)), int(rng.integers(1, 49)))
    dtype = _DTYPES[rng.integers(len(_DTYPES))]
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    high = min(info.max, 60000) if info else 1e3 if rng.random() < 0.7 else 1e300
    with np.errstate(over="ignore"):   # 1e300 in float32 is inf: an odd input the reader must survive
        plane = rng.uniform(0, high, size=shape).astype(dtype)
    layout = ("plain", "plane", "zstack", "channels", "rgb")[rng.integers(5)]
    pixel = _PIXELS[rng.integers(len(_PIXELS))]
    unit = list(_UNITS)[rng.integers(len(_UNITS))]
    name = f"case{index:03d}_{layout}_{np.dtype(dtype).name}.tiff"
    path = folder / name
    meta: dict = {}
    if pixel is not None:
        meta = {"PhysicalSizeY": pixel[0] * _UNITS[unit], "PhysicalSizeX": pixel[1] * _UNITS[unit],
                "PhysicalSizeYUnit": unit, "PhysicalSizeXUnit": unit}
    channel = _NAMES[rng.integers(len(_NAMES))]
    if layout == "plain":
        tifffile.imwrite(path, plane)
        pixel = None
    elif layout == "plane":
        _ome(path, plane, "YX", [channel] if channel else None, **meta)
    elif layout == "zstack":
        _ome(path, np.stack([plane] * int(rng.integers(2, 4))), "ZYX", **meta)
    elif layout == "channels":
        _ome(path, np.stack([plane, plane // 2]), "CYX", [channel or "Hoechst", "Actin"], **meta)
    else:
        rgb = np.stack([np.nan_to_num(np.clip(plane, 0, 255)).astype(np.uint8)] * 3, axis=-1)
        tifffile.imwrite(path, rgb, photometric="rgb")
        pixel = None
    return name, shape, pixel


def _check_contract(out: Path, name: str, shape: tuple[int, int], pixel: tuple | None, caplog) -> None:
    from ome_types import from_xml
    outputs = _outputs(out, name)
    assert all(p.is_file() for p in outputs.values()), name
    said = _lines(caplog, name)
    for path in outputs.values():
        with tifffile.TiffFile(path) as tif:
            assert tif.asarray().shape[-2:] == shape, name
            pixels = from_xml(tif.ome_metadata).images[0].pixels    # valid OME-XML
        assert (pixels.size_y, pixels.size_x) == shape
        kept = pixels.physical_size_x is not None
        if pixel is not None and kept:
            assert (pixels.physical_size_y, pixels.physical_size_x) == pytest.approx(pixel, rel=1e-5), name
        if not kept:
            assert "pixel size" in said, name    # none in the outputs: the log says why


def test_random_inputs_keep_the_contract(tmp_path, weights_dir, caplog):  # noqa: F811
    rng = np.random.default_rng(20)
    (tmp_path / "in").mkdir()
    cases = [_random_input(rng, tmp_path / "in", i) for i in range(10)]
    caplog.set_level(logging.INFO)
    assert _run(tmp_path / "in", tmp_path / "out", weights_dir) == 0     # all readable: the exit code says so
    for name, shape, pixel in cases:
        _check_contract(tmp_path / "out", name, shape, pixel, caplog)


@pytest.mark.slow
def test_soak_200_mixed_files_nothing_lost(tmp_path, weights_dir, caplog):  # noqa: F811
    rng = np.random.default_rng(200)
    inp = tmp_path / "in"
    inp.mkdir()
    cases = [_random_input(rng, inp, i) for i in range(190)]
    bad = [f"bad{i:02d}.tiff" for i in range(10)]
    for i, name in enumerate(bad):
        (inp / name).write_bytes(b"II*\x00" + rng.bytes(int(rng.integers(0, 200))) if i % 2 else b"")
    caplog.set_level(logging.INFO)
    assert _run(inp, tmp_path / "out", weights_dir) == 1
    for name, shape, pixel in cases:
        _check_contract(tmp_path / "out", name, shape, pixel, caplog)
    failed = "\n".join(r.getMessage() for r in caplog.records if r.getMessage().startswith("FAILED"))
    assert all(name in failed for name in bad)
    assert f"{len(bad)} input(s) failed" in caplog.text
    assert not [p for p in (tmp_path / "out").rglob("*.partial")]
