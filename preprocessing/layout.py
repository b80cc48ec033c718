"""Where files live: the data set's study layout and the grand-challenge folder layout.

Study layout (the real Light My Cells set and the simulator's output):
    ROOT/Study_<n>/image_<id>_<BF|PC|DIC>_z<k>.ome.tiff        transmitted light, one z-slice
    ROOT/Study_<n>/image_<id>_<Nucleus|...|Actin>.ome.tiff      best-focus fluorescence
    ROOT/bestz.csv  (and ROOT/Study_<n>/bestz.csv)              name,modality,image_z,best_z
Challenge layout (what the container reads and writes):
    /input/images/organelles-transmitted-light-ome-tiff/<name>.tiff
    /output/images/<organelle>-fluorescence-ome-tiff/<name>.tiff
    /output/uncertainty/<organelle>-spread/<name>.tiff     (only with --uncertainty; float32)
"""
from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .ome_io import ORGANELLE_FILE_NAMES, ORGANELLES

INPUT_SUBDIR = Path("images/organelles-transmitted-light-ome-tiff")
OUTPUT_SUBDIRS = {organelle: Path(f"images/{organelle}-fluorescence-ome-tiff") for organelle in ORGANELLES}
# process.py --uncertainty: the spread maps, beside images/ and never inside the challenge's folders.
SPREAD_SUBDIRS = {organelle: Path(f"uncertainty/{organelle}-spread") for organelle in ORGANELLES}
BESTZ_CSV = "bestz.csv"
BESTZ_COLUMNS = ("name", "modality", "image_z", "best_z")

TL_NAME = re.compile(r"^image_(?P<id>.+)_(?P<modality>BF|PC|DIC)_z(?P<z>\d+)\.ome\.tiff?$", re.IGNORECASE)
GT_NAME = re.compile(r"^image_(?P<id>.+)_(?P<organelle>Nucleus|Mitochondria|Tubulin|Actin)\.ome\.tiff?$",
                     re.IGNORECASE)
_ORGANELLE_BY_FILE_NAME = {v.lower(): k for k, v in ORGANELLE_FILE_NAMES.items()}


def tl_file_name(image_id: str, modality: str, z: int) -> str:
    return f"image_{image_id}_{modality}_z{z}.ome.tiff"


def gt_file_name(image_id: str, organelle: str) -> str:
    return f"image_{image_id}_{ORGANELLE_FILE_NAMES[organelle]}.ome.tiff"


@dataclass
class FieldOfView:
    """One field of view of a study: its TL z-slices and the organelles that have ground truth."""

    study: str
    image_id: str
    modality: str
    slices: dict[int, Path] = field(default_factory=dict)          # z → TL file
    ground_truth: dict[str, Path] = field(default_factory=dict)    # organelle → GT file

    @property
    def key(self) -> str:
        return f"{self.study}/{self.image_id}"


def index_study(folder: str | os.PathLike) -> list[FieldOfView]:
    """Every field of view in one Study_<n> folder, sorted by image id. Unknown files are ignored."""
    folder = Path(folder)
    fovs: dict[str, FieldOfView] = {}
    ground_truth: dict[str, dict[str, Path]] = {}
    for path in sorted(folder.iterdir()):
        if match := TL_NAME.match(path.name):
            image_id, modality = match["id"], match["modality"].upper()
            fov = fovs.setdefault(image_id, FieldOfView(folder.name, image_id, modality))
            if fov.modality != modality:
                raise ValueError(f"{path}: field of view {image_id} mixes modalities "
                                 f"{fov.modality} and {modality}")
            fov.slices[int(match["z"])] = path
        elif match := GT_NAME.match(path.name):
            organelle = _ORGANELLE_BY_FILE_NAME[match["organelle"].lower()]
            ground_truth.setdefault(match["id"], {})[organelle] = path
    for image_id, gts in ground_truth.items():
        if image_id in fovs:
            fovs[image_id].ground_truth.update(gts)
    return [fovs[k] for k in sorted(fovs, key=_natural_key)]


def index_studies(root: str | os.PathLike) -> list[FieldOfView]:
    """Every field of view under ROOT/Study_*/, studies in natural order."""
    root = Path(root)
    studies = sorted((p for p in root.iterdir() if p.is_dir() and p.name.lower().startswith("study")),
                     key=lambda p: _natural_key(p.name))
    return [fov for study in studies for fov in index_study(study)]


def _natural_key(text: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text)]


@dataclass(frozen=True)
class FocusRecord:
    name: str
    modality: str
    image_z: int
    best_z: int

    @property
    def deviation(self) -> int:
        return abs(self.image_z - self.best_z)


def read_bestz_csv(path: str | os.PathLike) -> dict[str, FocusRecord]:
    """name → FocusRecord from a CSV with columns name,modality,image_z,best_z."""
    path = Path(path)
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = set(BESTZ_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing column(s) {sorted(missing)}; expected {list(BESTZ_COLUMNS)}")
        records = {}
        for line, row in enumerate(reader, start=2):
            try:
                records[row["name"]] = FocusRecord(row["name"], row["modality"].upper(),
                                                   int(row["image_z"]), int(row["best_z"]))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{line}: bad row {row!r} ({exc})") from exc
    return records


def write_bestz_csv(path: str | os.PathLike, records: list[FocusRecord]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(BESTZ_COLUMNS)
        for r in records:
            writer.writerow([r.name, r.modality, r.image_z, r.best_z])
    return path
