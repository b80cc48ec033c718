"""Training data: which fields of view exist, how they are split, and their images, decoded once.

The real Light My Cells set and the simulator share one layout (preprocessing/layout.py): every
TL z-slice of a field of view (FOV) pairs with that FOV's best-focus organelle ground truth (GT).

Normalisation (the contract with inference, recorded in each checkpoint's spec as `input_norm`):
the 2nd and 99.8th percentiles of the WHOLE image map to -1 and +1, linearly, with no clipping.
TL inputs and GT targets are both normalised this way, each on its own whole image, before any
crop; so a crop's values depend only on its image, never on where the crop was taken. Both use
preprocessing/normalization.py and preprocessing/resampling.py, the very code inference runs.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from preprocessing.evaluation_sets import check_usable
from preprocessing.layout import BESTZ_CSV, FieldOfView, index_studies, read_bestz_csv
from preprocessing.normalization import normalise
from preprocessing.ome_io import MODALITIES, ORGANELLES, read_ome_tiff
from preprocessing.resampling import to_model_grid

INPUT_NORM = {"kind": "percentile", "low": 2.0, "high": 99.8}


# ---------------------------------------------------------------- indexing, exclusion, split
def load_fovs(root: str | os.PathLike, *, modalities: tuple[str, ...] | None = None,
              organelles: tuple[str, ...] = ORGANELLES, exclude: set[str] | None = None,
              max_defocus: int | None = None, use: str = "training") -> list[FieldOfView]:
    """Every usable FOV under ROOT/Study_*/: of a wanted modality, with TL slices and with GT for
    at least one wanted organelle. GT for unwanted organelles is dropped from the returned FOVs.

    `use` ("training" or "calibration") decides which evaluation sets may be read: training none,
    calibration only the development set (preprocessing/evaluation_sets.py); others raise
    EvaluationSetError.

    `max_defocus`: keep only slices at most this many z-steps from best focus (the challenge's
    inputs are 0-5 away), read from ROOT/bestz.csv and ROOT/Study_*/bestz.csv; FOVs with no
    record keep all their slices."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: data folder does not exist")
    check_usable(root, use)
    check_names(modalities, organelles)
    records = read_focus_records(root) if max_defocus is not None else {}
    return select_fovs(index_studies(root), str(root), modalities=modalities, organelles=organelles,
                       exclude=exclude, max_defocus=max_defocus, focus_records=records)


def check_names(modalities: tuple[str, ...] | None, organelles: tuple[str, ...]) -> None:
    for m in modalities or ():
        if m not in MODALITIES:
            raise ValueError(f"unknown modality {m!r}; expected one of {MODALITIES}")
    for o in organelles:
        if o not in ORGANELLES:
            raise ValueError(f"unknown organelle {o!r}; expected one of {ORGANELLES}")


def select_fovs(fovs: list[FieldOfView], where: str, *, modalities: tuple[str, ...] | None,
                organelles: tuple[str, ...], exclude: set[str] | None, max_defocus: int | None,
                focus_records: dict) -> list[FieldOfView]:
    """The FOVs of `fovs` that load_fovs keeps (its filters, applied to an index already made:
    a data folder's or a training store's). `where` names the source in the error."""
    check_names(modalities, organelles)
    fovs = apply_exclusions(fovs, exclude or set())
    if max_defocus is not None:
        fovs = limit_defocus(fovs, focus_records, max_defocus)
    kept = []
    for fov in fovs:
        if modalities and fov.modality not in modalities:
            continue
        gt = {o: p for o, p in fov.ground_truth.items() if o in organelles}
        if fov.slices and gt:
            kept.append(FieldOfView(fov.study, fov.image_id, fov.modality, dict(fov.slices), gt))
    if not kept:
        raise ValueError(f"{where}: no field of view with modality in {modalities or MODALITIES} and "
                         f"ground truth for any of {organelles}")
    return kept


def read_focus_records(root: Path) -> dict:
    """TL file name -> FocusRecord from every bestz.csv under ROOT (top level and per study)."""
    records = {}
    for csv_path in [root / BESTZ_CSV, *sorted(root.glob(f"Study*/{BESTZ_CSV}"))]:
        if csv_path.is_file():
            records.update(read_bestz_csv(csv_path))
    if not records:
        raise FileNotFoundError(f"{root}: max_defocus needs a {BESTZ_CSV} (name,modality,image_z,best_z)")
    return records


def limit_defocus(fovs: list[FieldOfView], records: dict, max_defocus: int) -> list[FieldOfView]:
    """FOVs with only the slices within `max_defocus` of best focus (unrecorded FOVs unchanged)."""
    out = []
    for fov in fovs:
        best = {records[p.name].best_z for p in fov.slices.values() if p.name in records}
        if not best:
            out.append(fov)
            continue
        best_z = best.pop()
        slices = {z: p for z, p in fov.slices.items() if abs(z - best_z) <= max_defocus}
        out.append(FieldOfView(fov.study, fov.image_id, fov.modality, slices, dict(fov.ground_truth)))
    return out


def read_exclusion_list(path: str | os.PathLike) -> set[str]:
    """Entries of an exclusion file, one per line, '#' starts a comment. An entry is a study
    ("Study_7"), a FOV ("Study_7/image_12" or "image_12"), a TL file name (drops that slice) or a
    GT file name (drops that organelle of its FOV)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: exclusion list does not exist")
    entries = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            entries.add(line)
    return entries


def apply_exclusions(fovs: list[FieldOfView], exclude: set[str]) -> list[FieldOfView]:
    """FOVs with excluded studies, FOVs, slices and GT files removed (inputs are not modified)."""
    if not exclude:
        return fovs
    out = []
    for fov in fovs:
        if {fov.study, fov.key, f"image_{fov.image_id}"} & exclude:
            continue
        slices = {z: p for z, p in fov.slices.items() if p.name not in exclude}
        gt = {o: p for o, p in fov.ground_truth.items() if p.name not in exclude}
        out.append(FieldOfView(fov.study, fov.image_id, fov.modality, slices, gt))
    return out


def split_by_study(fovs: list[FieldOfView], val_fraction: float, seed: int
                   ) -> tuple[list[FieldOfView], list[FieldOfView]]:
    """Train/validation split stratified by study: each study gives round(val_fraction x its FOVs)
    to validation (at least one when it has two or more and val_fraction > 0), so every study, and
    with it every acquisition site and modality, is seen in both parts."""
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    rng = np.random.default_rng(seed)
    by_study: dict[str, list[FieldOfView]] = {}
    for fov in fovs:
        by_study.setdefault(fov.study, []).append(fov)
    train, val = [], []
    for study in sorted(by_study):
        members = by_study[study]
        n_val = int(round(val_fraction * len(members)))
        if val_fraction > 0 and len(members) >= 2:
            n_val = min(max(n_val, 1), len(members) - 1)
        order = rng.permutation(len(members))
        val.extend(members[i] for i in sorted(order[:n_val]))
        train.extend(members[i] for i in sorted(order[n_val:]))
    return train, val


# ---------------------------------------------------------------- decoded images, cached
def read_normalised(path: Path, grid_um: float | None, pixel_size: tuple[float, float] | None = None
                    ) -> tuple[np.ndarray, tuple[float, float] | None]:
    """(float32 image normalised with INPUT_NORM on the whole image, then resampled to `grid_um`;
    the native pixel size used). `pixel_size` overrides the file's metadata (GT files take their
    TL's). The one decoding path of the direct reader and of the training store (prepare.py)."""
    image = read_ome_tiff(path)
    pixel_size = pixel_size or image.pixel_size_um
    if grid_um is not None and pixel_size is None:
        raise ValueError(f"{path}: no pixel size in its metadata, cannot resample to {grid_um} um")
    array, _ = normalise(image.array, INPUT_NORM)
    return to_model_grid(array, pixel_size, grid_um), pixel_size


class ImageSource(Protocol):
    """What the sampler and validation read images through: ImageCache, or a training store's
    memory maps (store.StoreImages). Arrays may be float16 memory maps: readers slice first,
    then convert, so only the region they need is read."""

    def pair(self, fov: FieldOfView, z: int) -> tuple[np.ndarray, dict[str, np.ndarray]]: ...


@dataclass
class ImageCache:
    """Normalised (and resampled) float32 images by file, least recently used dropped first.

    Decoding and normalising a 2048x2048 TIFF costs far more than a training step's crop, so each
    file is read once and kept while it fits in `max_bytes`.
    """

    pixel_size_um: float | None = None     # resample to this pixel size; None keeps native pixels
    max_bytes: int = 2 << 30
    _items: OrderedDict = field(default_factory=OrderedDict, repr=False)
    # Threads may share one cache (a batch thread beside validation): reads are serialised.
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _bytes: int = 0
    hits: int = 0
    misses: int = 0

    def get(self, path: Path, pixel_size: tuple[float, float] | None = None) -> np.ndarray:
        """The normalised image of `path`. `pixel_size` overrides the file's metadata: GT files
        pass their TL's, so GT and input are always resampled alike (GT metadata may lack it)."""
        with self._lock:
            return self._get(path, pixel_size)

    def _get(self, path: Path, pixel_size: tuple[float, float] | None) -> np.ndarray:
        key = str(path)
        if key in self._items:
            self._items.move_to_end(key)
            self.hits += 1
            return self._items[key][0]
        self.misses += 1
        array, pixel_size = read_normalised(path, self.pixel_size_um, pixel_size)
        self._items[key] = (array, pixel_size)
        self._bytes += array.nbytes
        # The newest item always stays, so the caller's image is never evicted before it is used.
        while self._bytes > self.max_bytes and len(self._items) > 1:
            _, (old, _) = self._items.popitem(last=False)
            self._bytes -= old.nbytes
        return array

    def __getstate__(self) -> dict:
        # A worker process (DataLoader with spawn) gets an empty cache and a lock of its own.
        state = dict(self.__dict__, _items=OrderedDict(), _bytes=0)
        state.pop("_lock")
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _lock=threading.RLock())

    def pixel_size(self, path: Path) -> tuple[float, float] | None:
        """Native pixel size of a file already in the cache."""
        with self._lock:
            return self._items[str(path)][1]

    def pair(self, fov: FieldOfView, z: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(TL slice z, {organelle: GT}) of a FOV, all normalised, same shape (checked)."""
        tl_path = fov.slices[z]
        with self._lock:    # TL and its pixel size read together (no eviction in between)
            tl = self.get(tl_path)
            reference = self.pixel_size(tl_path)
        gts = {}
        for organelle, path in fov.ground_truth.items():
            gt = self.get(path, reference)
            if gt.shape != tl.shape:
                raise ValueError(f"{path}: ground truth shape {gt.shape} differs from its "
                                 f"transmitted-light image {tl_path.name} {tl.shape}")
            gts[organelle] = gt
        return tl, gts
