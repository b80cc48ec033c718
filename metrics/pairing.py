"""Which files to compare: prediction folders paired by name with the ground truth, plus focus metadata.

Predictions are in the challenge's output layout, PRED/images/<organelle>-fluorescence-ome-tiff/<name>
(PRED/<organelle>-fluorescence-ome-tiff/<name> is accepted too). Ground truth is either
- flat, the challenge's own layout: GT/images/<organelle>-fluorescence-ome-tiff/<name>, or
- a study layout root, GT/Study_*/... (or one Study_<n> folder), where a TL name maps to its field
  of view's organelle files.

The images scored are the inputs when an input folder is given; otherwise every name with ground
truth (flat) or every predicted name (study: only the slices someone predicted can be scored).
Modality and focus come from a CSV (name,modality,image_z,best_z) when one is given or found beside
the ground truth, else from the OME metadata of the input (or prediction), the study's field of view,
and the `_z<k>` in the name. Nothing here reads pixels.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import tifffile

from preprocessing.layout import (
    BESTZ_CSV,
    INPUT_SUBDIR,
    OUTPUT_SUBDIRS,
    TL_NAME,
    FieldOfView,
    FocusRecord,
    index_studies,
    index_study,
    read_bestz_csv,
)
from preprocessing.ome_io import ORGANELLES, list_tiffs, parse_ome_metadata


@dataclass
class ImageRecord:
    """One scored image: its files per organelle and where it sits in focus."""

    name: str
    predictions: dict[str, Path] = field(default_factory=dict)   # organelle -> existing prediction file
    ground_truth: dict[str, Path] = field(default_factory=dict)  # organelle -> ground-truth file
    input_path: Path | None = None                                # the TL input, when known
    modality: str | None = None
    image_z: int | None = None
    best_z: int | None = None
    in_csv: bool = False                                          # modality and z came from a focus CSV

    @property
    def deviation(self) -> int | None:
        if self.image_z is None or self.best_z is None:
            return None
        return abs(self.image_z - self.best_z)


@dataclass
class Pairing:
    images: list[ImageRecord]
    gt_layout: str                                         # "flat" | "study"
    missing: list[tuple[str, str]] = field(default_factory=list)   # (name, organelle) with GT, no prediction
    problems: list[str] = field(default_factory=list)     # one readable line per file
    # Every one of the four output files that a scored image lacks, ground truth or not: the
    # organizers' evaluation stops on any of them (strict mode).
    missing_files: list[Path] = field(default_factory=list)
    csv_paths: list[Path] = field(default_factory=list)   # the focus CSVs read, in the order applied

    def by_name(self) -> dict[str, ImageRecord]:
        return {r.name: r for r in self.images}


def organelle_dirs(root: str | os.PathLike) -> dict[str, Path]:
    """organelle -> its folder under ROOT (challenge layout, with or without the images/ level)."""
    root = Path(root)
    dirs = {}
    for organelle, sub in OUTPUT_SUBDIRS.items():
        for candidate in (root / sub, root / sub.name):
            if candidate.is_dir():
                dirs[organelle] = candidate
                break
    return dirs


def input_dir(root: str | os.PathLike) -> Path:
    """The folder holding the TL inputs: ROOT/images/organelles-transmitted-light-ome-tiff or ROOT."""
    root = Path(root)
    return root / INPUT_SUBDIR if (root / INPUT_SUBDIR).is_dir() else root


def detect_gt_layout(gt: str | os.PathLike) -> str:
    gt = Path(gt)
    if not gt.is_dir():
        raise FileNotFoundError(f"{gt}: ground-truth folder does not exist")
    if organelle_dirs(gt):
        return "flat"
    if any(p.is_dir() and p.name.lower().startswith("study") for p in gt.iterdir()):
        return "study"
    if any(TL_NAME.match(p.name) for p in gt.iterdir()):
        return "study"  # one study folder given directly
    raise ValueError(f"{gt}: neither the challenge layout (images/<organelle>-fluorescence-ome-tiff/) "
                     "nor a study layout (Study_*/ or one study's image_<id>_<BF|PC|DIC>_z<k> files)")


def _index(gt: Path) -> list[FieldOfView]:
    has_studies = any(p.is_dir() and p.name.lower().startswith("study") for p in gt.iterdir())
    return index_studies(gt) if has_studies else index_study(gt)


def _names(folder: Path | None) -> dict[str, Path]:
    return {p.name: p for p in list_tiffs(folder)} if folder is not None and folder.is_dir() else {}


def _header_modality(path: Path | None) -> str | None:
    """Modality from a file's OME-XML without reading its pixels; None when absent or unreadable."""
    if path is None:
        return None
    try:
        with tifffile.TiffFile(path) as tif:
            return parse_ome_metadata(tif.ome_metadata)[0]
    except Exception:  # metadata is a nicety here; a broken file is reported when it is scored
        return None


def _study_csvs(gt: Path) -> list[Path]:
    return [path for path in [gt / BESTZ_CSV, *sorted(gt.glob(f"Study_*/{BESTZ_CSV}"))] if path.is_file()]


def pair(pred: str | os.PathLike, gt: str | os.PathLike, *, csv: str | os.PathLike | None = None,
         inputs: str | os.PathLike | None = None, names: list[str] | None = None) -> Pairing:
    """Pair prediction files with ground truth by name. `names` overrides which images are scored."""
    gt = Path(gt)
    layout = detect_gt_layout(gt)
    pred_dirs = organelle_dirs(pred)
    pred_files = {o: _names(pred_dirs.get(o)) for o in ORGANELLES}
    input_files = _names(input_dir(inputs)) if inputs is not None else {}
    if inputs is not None and not input_files:
        raise ValueError(f"{input_dir(inputs)}: no TL input .tif/.tiff files")
    problems: list[str] = []
    if not pred_dirs:
        problems.append(f"{pred}: no <organelle>-fluorescence-ome-tiff folder found; every prediction is missing")

    fov_of: dict[str, FieldOfView] = {}
    if layout == "flat":
        gt_dirs = organelle_dirs(gt)
        gt_files = {o: _names(gt_dirs.get(o)) for o in ORGANELLES}
        csv_paths = [gt / BESTZ_CSV] if (gt / BESTZ_CSV).is_file() else []
        default_names = sorted({n for files in gt_files.values() for n in files})
    else:
        fov_of = {path.name: fov for fov in _index(gt) for path in fov.slices.values()}
        csv_paths = _study_csvs(gt)
        default_names = sorted({n for files in pred_files.values() for n in files})
    if csv is not None:
        csv_paths.append(Path(csv))  # read last: an explicit CSV wins over one found beside the GT
    focus: dict[str, FocusRecord] = {}
    for path in csv_paths:
        focus.update(read_bestz_csv(path))
    if names is None:
        names = sorted(input_files) if inputs is not None else default_names

    images: list[ImageRecord] = []
    for name in names:
        record = ImageRecord(name=name, input_path=input_files.get(name))
        record.predictions = {o: pred_files[o][name] for o in ORGANELLES if name in pred_files[o]}
        if layout == "flat":
            record.ground_truth = {o: gt_files[o][name] for o in ORGANELLES if name in gt_files[o]}
        elif name in fov_of:
            fov = fov_of[name]
            record.ground_truth = dict(fov.ground_truth)
            record.input_path = record.input_path or next(p for p in fov.slices.values() if p.name == name)
        else:
            problems.append(f"{name}: not a transmitted-light slice of any study under {gt}; skipped")
            continue
        _fill_focus(record, focus.get(name), fov_of.get(name))
        images.append(record)

    missing, missing_files = [], []
    for record in images:
        for organelle in ORGANELLES:
            if organelle in record.predictions:
                continue
            folder = pred_dirs.get(organelle, Path(pred) / OUTPUT_SUBDIRS[organelle])
            missing_files.append(folder / record.name)
            if organelle in record.ground_truth:
                missing.append((record.name, organelle))
                problems.append(f"{folder / record.name}: missing prediction ({organelle} has ground truth; "
                                "left empty in metrics.json)")
            else:
                problems.append(f"{folder / record.name}: missing prediction (no {organelle} ground truth, "
                                "but the platform fails a job without all four outputs)")
    scored = {r.name for r in images}
    for organelle in ORGANELLES:
        for name, path in pred_files[organelle].items():
            if name not in scored and (layout == "flat" or name in fov_of):
                problems.append(f"{path}: prediction with no matching image to score; ignored")
    return Pairing(images=images, gt_layout=layout, missing=missing, problems=problems,
                   missing_files=missing_files, csv_paths=csv_paths)


def _fill_focus(record: ImageRecord, csv_record: FocusRecord | None, fov: FieldOfView | None) -> None:
    """Modality and z, from the most to the least trustworthy source."""
    if csv_record is not None:
        record.modality, record.image_z, record.best_z = (csv_record.modality, csv_record.image_z,
                                                          csv_record.best_z)
        record.in_csv = True
        return
    match = TL_NAME.match(record.name)
    record.modality = (_header_modality(record.input_path)
                       or (fov.modality if fov is not None else None)
                       or (match["modality"].upper() if match else None)
                       or _header_modality(next(iter(record.predictions.values()), None)))
    record.image_z = int(match["z"]) if match else None
