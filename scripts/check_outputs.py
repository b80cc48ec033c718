"""Check a prediction folder against its input folder, the way the evaluator will meet it.

    python -m scripts.check_outputs --input STAGE --pred OUT
INPUT is the TL folder (…/images/organelles-transmitted-light-ome-tiff) or a root holding it; PRED is
the prediction root holding images/<organelle>-fluorescence-ome-tiff/. For every input and organelle:
the file exists (and no stray ones), it decodes, its plane has the input's height and width, its
OME-XML parses (xmltodict) with Pixels SizeX/SizeY matching the data, and it keeps the input's
physical pixel size. The evaluator fails a whole job on one missing file or one wrong shape, so
every problem is listed, not only the first. Exit status 0 = all good, 1 = problems (listed), 2 =
the input folder itself is unusable.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import tifffile  # noqa: E402
import xmltodict  # noqa: E402

from preprocessing.layout import INPUT_SUBDIR, OUTPUT_SUBDIRS  # noqa: E402
from preprocessing.ome_io import ORGANELLES, OmeReadError, list_tiffs, read_ome_tiff  # noqa: E402

# OME length units -> micrometres (the units the data set uses, and a few a writer might pick).
_UNIT_TO_UM = {"µm": 1.0, "um": 1.0, "nm": 1e-3, "mm": 1e3, "m": 1e6, "Å": 1e-4}
PIXEL_SIZE_RTOL = 1e-4   # OME-XML writers round floats; a real change of pixel size is far larger


@dataclass
class CheckReport:
    inputs: int = 0
    files_checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def input_folder(path: str | os.PathLike) -> Path:
    """The TL folder itself, or ROOT/images/organelles-transmitted-light-ome-tiff when given ROOT."""
    path = Path(path)
    nested = path / INPUT_SUBDIR
    return nested if nested.is_dir() else path


def _pixels(ome_xml: str, path: Path) -> dict:
    try:
        doc = xmltodict.parse(ome_xml)
    except Exception as exc:  # xmltodict raises expat errors of several kinds
        raise ValueError(f"{path}: OME-XML does not parse ({exc})") from exc
    ome = doc.get("OME") if isinstance(doc, dict) else None
    if not isinstance(ome, dict):
        raise ValueError(f"{path}: OME-XML has no <OME> root")
    image = ome.get("Image")
    if isinstance(image, list):
        image = image[0]
    pixels = image.get("Pixels") if isinstance(image, dict) else None
    if not isinstance(pixels, dict):
        raise ValueError(f"{path}: OME-XML has no Image/Pixels element")
    return pixels


def _physical_size_um(pixels: dict, axis: str) -> float | None:
    raw = pixels.get(f"@PhysicalSize{axis}")
    if raw is None:
        return None
    unit = pixels.get(f"@PhysicalSize{axis}Unit", "µm")
    if unit not in _UNIT_TO_UM:
        raise ValueError(f"PhysicalSize{axis}Unit {unit!r} is not a length unit this check knows")
    return float(raw) * _UNIT_TO_UM[unit]


def check_file(path: Path, shape: tuple[int, int], pixel_size_um: tuple[float, float] | None) -> list[str]:
    """Problems of one prediction file, given its input's (H, W) and pixel size (y, x) in µm."""
    problems: list[str] = []
    try:
        with tifffile.TiffFile(path) as tif:
            ome_xml = tif.ome_metadata
            data = tif.asarray()
    except Exception as exc:  # tifffile raises many kinds on a corrupt or truncated file
        return [f"{path}: cannot be read as TIFF ({type(exc).__name__}: {exc})"]
    plane_shape = tuple(n for n in data.shape if n != 1)
    if plane_shape != tuple(shape):
        problems.append(f"{path}: shape {data.shape} (plane {plane_shape}) != input shape {tuple(shape)}")
    if data.dtype.kind not in "uif":
        problems.append(f"{path}: dtype {data.dtype} is not numeric")
    elif data.dtype.kind == "f" and not np.isfinite(data).all():
        problems.append(f"{path}: contains NaN or infinite values")
    if not ome_xml:
        problems.append(f"{path}: no OME-XML metadata (not an OME-TIFF)")
        return problems
    try:
        pixels = _pixels(ome_xml, path)
    except ValueError as exc:
        return problems + [str(exc)]
    try:
        size_y, size_x = int(pixels.get("@SizeY", -1)), int(pixels.get("@SizeX", -1))
    except ValueError:
        size_y = size_x = -1
    if (size_y, size_x) != plane_shape:   # a wrong data shape is reported above, once
        problems.append(f"{path}: OME-XML SizeY x SizeX = {size_y} x {size_x} disagrees with the data "
                        f"{plane_shape}")
    if pixel_size_um is not None:
        try:
            kept = (_physical_size_um(pixels, "Y"), _physical_size_um(pixels, "X"))
        except ValueError as exc:
            return problems + [f"{path}: {exc}"]
        if None in kept:
            problems.append(f"{path}: OME-XML lost the physical pixel size (input has {pixel_size_um} µm)")
        elif not all(math.isclose(a, b, rel_tol=PIXEL_SIZE_RTOL) for a, b in zip(kept, pixel_size_um)):
            problems.append(f"{path}: physical pixel size {kept} µm != input's {pixel_size_um} µm")
    return problems


def check_outputs(inputs: str | os.PathLike, pred: str | os.PathLike) -> CheckReport:
    """Every problem of PRED against INPUTS; raises ValueError when INPUTS has no usable images."""
    folder = input_folder(inputs)
    if not folder.is_dir():
        raise ValueError(f"{folder}: input folder does not exist")
    report = CheckReport()
    expected: dict[str, tuple[tuple[int, int], tuple[float, float] | None]] = {}
    for path in list_tiffs(folder):
        try:
            image = read_ome_tiff(path)
        except OmeReadError as exc:
            raise ValueError(f"input {exc}") from exc
        expected[path.name] = (image.shape, image.pixel_size_um)
    if not expected:
        raise ValueError(f"{folder}: no .tif/.tiff input images")
    report.inputs = len(expected)
    pred = Path(pred)
    for organelle in ORGANELLES:
        out_dir = pred / OUTPUT_SUBDIRS[organelle]
        if not out_dir.is_dir():
            report.problems.append(f"{out_dir}: missing organelle folder ({organelle}): "
                                   f"all {len(expected)} outputs absent")
            continue
        present = {p.name for p in list_tiffs(out_dir)}
        for name in sorted(set(expected) - present):
            report.problems.append(f"{out_dir / name}: missing ({organelle} prediction for input {name})")
        for name in sorted(present - set(expected)):
            report.problems.append(f"{out_dir / name}: no input of that name (stray or renamed output)")
        for name in sorted(set(expected) & present):
            shape, pixel_size = expected[name]
            report.problems.extend(check_file(out_dir / name, shape, pixel_size))
            report.files_checked += 1
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, type=Path, help="TL input folder, or a root holding "
                        f"{INPUT_SUBDIR}")
    parser.add_argument("--pred", required=True, type=Path, help="prediction root holding images/<organelle>-"
                        "fluorescence-ome-tiff/")
    args = parser.parse_args(argv)
    try:
        report = check_outputs(args.input, args.pred)
    except ValueError as exc:
        print(f"check_outputs: {exc}", file=sys.stderr)
        return 2
    if report.ok:
        print(f"check_outputs: OK: {report.inputs} inputs x {len(ORGANELLES)} organelles, "
              f"{report.files_checked} files checked")
        return 0
    print(f"check_outputs: FAILED: {len(report.problems)} problem(s) in {args.pred} "
          f"({report.inputs} inputs x {len(ORGANELLES)} organelles expected):", file=sys.stderr)
    for problem in report.problems:
        print(f"  - {problem}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
