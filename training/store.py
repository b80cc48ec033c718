"""The training store: a data set's images decoded once, normalised and resampled exactly as the
direct reader (dataset.ImageCache) and inference do, kept as float16 arrays that are memory-mapped,
so a sample reads only its crop's rows.

Layout of STORE/ (written by training/prepare.py, read here):
    store.json                        what it is prepared with (StoreSpec): format, normalisation,
                                      grid, source folder, selection (modalities, exclusions, focus)
    fovs/<study>/<image_id>.json      one record per prepared field of view (resume skips these)
    arrays/<study>/<file stem>.npy    one float16 H x W array per TL slice and per GT image
    index.json                        written last: every field's record and the focus records

Why one memory-mapped .npy per image (not zarr): a crop of a row-major array is `crop` row
segments of one mapping, served from the page cache without a decode or a library call per
chunk; the benchmark (benchmarks/bench_data.py, training/README.md) measures it far above the
target with no new dependency. Chunked tiles would read fewer bytes from a cold disk (a random
256-px crop of a 2048-px float16 row touches 256 pages of 4 KiB = 1 MiB, 128 KiB of it wanted),
which only matters when the store does not fit in the page cache (see the README's scale notes).

float16: normalised values are about -1..1 (p2 -> -1, p99.8 -> +1); float16 keeps them to
~5e-4, below what an L1 loss on [-1, 1] outputs resolves. Values beyond float16's range (65504)
would only come from a hot pixel in an almost flat image; they are clipped and counted in the
image's record ("clipped").
"""
from __future__ import annotations

import json
import math
import os
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from preprocessing.evaluation_sets import check_usable
from preprocessing.layout import FieldOfView, FocusRecord
from preprocessing.ome_io import MODALITIES

from .dataset import select_fovs

FORMAT_VERSION = 1
DTYPE = "float16"
HEADER, INDEX = "store.json", "index.json"
FOV_RECORDS, ARRAYS = "fovs", "arrays"
PREPARE_COMMAND = "python -m training.prepare"


class StoreError(ValueError):
    """A store that is unusable or does not match what reads it; the message says why in one line."""


@dataclass(frozen=True)
class StoreSpec:
    """What a store was prepared with. What makes its arrays (ARRAY_FIELDS) must be the same for
    every prepare that adds to a store and for every run that trains from it; the selection
    (modalities, exclusions, focus range) may change between prepares, and a run may want less."""

    source: str                              # absolute path of the data folder
    pixel_size_um: float | None              # the grid (None: each file's native pixels)
    input_norm: dict                         # preprocessing.normalization spec
    modalities: tuple[str, ...] | None       # None: every modality
    exclude: tuple[str, ...]                 # exclusion entries applied (sorted)
    max_defocus: int | None                  # only slices this close to best focus (None: all)
    format: int = FORMAT_VERSION
    dtype: str = DTYPE

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> StoreSpec:
        data = dict(data)
        for key in ("modalities", "exclude"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        return cls(**data)

    def difference(self, other: StoreSpec, keys: tuple[str, ...] | None = None) -> str | None:
        """The first of `keys` (default: all fields) in which two specs differ, said in words;
        None when they agree."""
        for key in keys or tuple(asdict(self)):
            mine, theirs = getattr(self, key), getattr(other, key)
            if key == "pixel_size_um" and _same_size(mine, theirs):
                continue
            if mine != theirs:
                return f"{key} {_say(mine)} vs {_say(theirs)}"
        return None


ARRAY_FIELDS = ("format", "dtype", "input_norm", "pixel_size_um", "source")


def _same_size(a: float | None, b: float | None) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9))


def _say(value) -> str:
    return "none" if value is None else ("[" + ", ".join(value) + "]" if isinstance(value, tuple) else repr(value))


def _grid(pixel_size_um: float | None) -> str:
    return "native pixels" if pixel_size_um is None else f"pixel size {pixel_size_um} um"


def array_path(root: Path, study: str, file_name: str) -> Path:
    """Where the array of a source file lives in a store."""
    stem = file_name
    for suffix in (".ome.tiff", ".ome.tif", ".tiff", ".tif"):
        if stem.lower().endswith(suffix):
            stem = stem[:-len(suffix)]
            break
    return root / ARRAYS / study / f"{stem}.npy"


def record_path(root: Path, study: str, image_id: str) -> Path:
    return root / FOV_RECORDS / study / f"{image_id}.json"


STAMP_FIELDS = ("bytes", "mtime_ns")
STAMPS_CHECKED = 64          # source files a run compares with the store's records


def source_stamp(path: Path) -> dict:
    """Size and modification time of a source file: a store's record of what it was made from."""
    stat = path.stat()
    return {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def read_json(path: Path, what: str) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path}: unreadable {what} ({type(exc).__name__}: {exc})") from exc


def fov_from_record(record: dict, source: Path) -> FieldOfView:
    """The FieldOfView a record describes, with its source paths (exclusion lists and focus
    records name files; the store finds each file's array by its study and name)."""
    study = record["study"]
    return FieldOfView(study, record["image_id"], record["modality"],
                       {int(z): source / study / item["file"] for z, item in record["slices"].items()},
                       {o: source / study / item["file"] for o, item in record["ground_truth"].items()})


class TrainingStore:
    """A finished store: its spec, fields of view and focus records (from index.json)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        index_file = self.path / INDEX
        if not index_file.is_file():
            if (self.path / HEADER).is_file():
                done = sum(1 for _ in (self.path / FOV_RECORDS).glob("*/*.json"))
                raise StoreError(f"{self.path}: its prepare has not finished ({done} fields of view "
                                 f"done); run {PREPARE_COMMAND} again with the same flags to complete it")
            raise StoreError(f"{self.path}: not a training store (no {INDEX}); make one with {PREPARE_COMMAND}")
        index = read_json(index_file, "store index")
        if index.get("format") != FORMAT_VERSION:
            raise StoreError(f"{self.path}: store format {index.get('format')!r}, this code reads format "
                             f"{FORMAT_VERSION}; prepare it again with {PREPARE_COMMAND}")
        self.spec = StoreSpec.from_json(index["spec"])
        self.source = Path(self.spec.source)
        self.records: list[dict] = index["fovs"]
        self.fovs = [fov_from_record(r, self.source) for r in self.records]
        self.focus_records = {name: FocusRecord(name, *values) for name, values in index["focus"].items()}
        self.images_count = int(index["images"])
        self.bytes = int(index["bytes"])

    def check_run(self, *, data: str | None, pixel_size_um: float | None, input_norm: dict,
                  modalities: tuple[str, ...] | None, exclude: set[str] | None,
                  max_defocus: int | None) -> None:
        """StoreError, one line, when a run with these settings must not train from this store:
        another normalisation, grid or source, or data the store left out. The source's
        evaluation-set markers are checked again (one may have been added since the prepare)."""
        spec = self.spec
        fix = f"prepare a store for this run with {PREPARE_COMMAND}"
        if spec.input_norm != input_norm:
            raise StoreError(f"{self.path}: prepared with normalisation {spec.input_norm}, this run "
                             f"uses {input_norm}; {fix}")
        if not _same_size(spec.pixel_size_um, pixel_size_um):
            raise StoreError(f"{self.path}: prepared at {_grid(spec.pixel_size_um)}, this run trains at "
                             f"{_grid(pixel_size_um)}; {fix}")
        if data is not None and Path(data).resolve() != self.source:
            raise StoreError(f"{self.path}: prepared from {self.source}, this run's data is "
                             f"{Path(data).resolve()}; {fix}")
        if spec.modalities is not None and not set(modalities or MODALITIES) <= set(spec.modalities):
            raise StoreError(f"{self.path}: holds modalities {_say(spec.modalities)} only, this run "
                             f"wants {_say(tuple(modalities)) if modalities else 'every modality'}; {fix}")
        left_out = set(spec.exclude) - set(exclude or ())
        if left_out:
            raise StoreError(f"{self.path}: prepared without {len(left_out)} exclusion entr"
                             f"{'y' if len(left_out) == 1 else 'ies'} this run keeps (e.g. "
                             f"{sorted(left_out)[0]!r}); {fix}")
        if spec.max_defocus is not None and (max_defocus is None or max_defocus > spec.max_defocus):
            raise StoreError(f"{self.path}: holds slices up to {spec.max_defocus} steps from best focus, "
                             f"this run wants {'all' if max_defocus is None else max_defocus}; {fix}")
        if self.source.is_dir():
            check_usable(self.source, "training")
            self._check_sources_unchanged()
        check_usable(self.path, "training")

    def _check_sources_unchanged(self) -> None:
        """StoreError when a spread sample of the source files changed since the prepare (a data
        folder simulated again keeps its names): the store would train on the old images."""
        items = [(r["study"], i) for r in self.records
                 for i in [*r["slices"].values(), *r["ground_truth"].values()]]
        for study, item in items[::max(1, len(items) // STAMPS_CHECKED)]:
            path = self.source / study / item["file"]
            now = source_stamp(path) if path.is_file() else None
            if now != {k: item[k] for k in STAMP_FIELDS}:
                raise StoreError(f"{path}: {'gone' if now is None else 'changed'} since the store "
                                 f"{self.path} was prepared; run {PREPARE_COMMAND} again (it redoes "
                                 f"the changed fields)")

    def select(self, *, modalities: tuple[str, ...] | None, organelles: tuple[str, ...],
               exclude: set[str] | None, max_defocus: int | None) -> list[FieldOfView]:
        """The fields of view a run wants, filtered exactly as dataset.load_fovs filters a folder."""
        if max_defocus is not None and not self.focus_records:
            raise StoreError(f"{self.path}: max_defocus needs focus records, and its source had no bestz.csv")
        return select_fovs(self.fovs, str(self.path), modalities=modalities, organelles=organelles,
                           exclude=exclude, max_defocus=max_defocus, focus_records=self.focus_records)

    def images(self, max_open: int = 256) -> StoreImages:
        return StoreImages(self.path, max_open)


class StoreImages:
    """(TL, {organelle: GT}) of a (FOV, z) as read-only float16 memory maps of a store's arrays.

    Slicing a map reads only the rows (pages) it covers. At most `max_open` maps stay open (each
    holds a file descriptor and a mapping; the real set has 57,022 images), least recently used
    closed first. Picklable: each DataLoader worker opens its own maps."""

    def __init__(self, root: Path, max_open: int = 256):
        self.root = Path(root)
        self.max_open = max(1, max_open)
        self._open: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()

    def __getstate__(self) -> dict:
        return {"root": self.root, "max_open": self.max_open}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["root"], state["max_open"])

    def pair(self, fov: FieldOfView, z: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        tl = self.array(fov.study, fov.slices[z].name)
        gts = {}
        for organelle, path in fov.ground_truth.items():
            gt = self.array(fov.study, path.name)
            if gt.shape != tl.shape:
                raise StoreError(f"{array_path(self.root, fov.study, path.name)}: shape {gt.shape} differs "
                                 f"from its TL slice {fov.slices[z].name} {tl.shape}; prepare the store again")
            gts[organelle] = gt
        return tl, gts

    def array(self, study: str, file_name: str) -> np.ndarray:
        key = (study, file_name)
        if key in self._open:
            self._open.move_to_end(key)
            return self._open[key]
        path = array_path(self.root, study, file_name)
        try:
            array = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as exc:
            raise StoreError(f"{path}: missing or unreadable store array ({type(exc).__name__}: {exc}); "
                             f"prepare the store again") from exc
        if array.dtype != np.dtype(DTYPE) or array.ndim != 2:
            raise StoreError(f"{path}: expected a 2D {DTYPE} array, found {array.dtype} {array.shape}")
        self._open[key] = array
        while len(self._open) > self.max_open:
            self._open.popitem(last=False)      # the map closes when no crop refers to it
        return array
