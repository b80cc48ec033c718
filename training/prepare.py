"""Prepare a training store (store.py) from a data folder: every image decoded, normalised and
resampled once, in parallel over cores, resumable.

    python -m training.prepare --data DIR --store STORE [--pixel-size UM] [--max-defocus N]
                               [--modalities BF PC] [--exclude FILE] [--workers N] [--quiet]

--pixel-size must be the grid of the runs that train from the store (their --pixel-size);
--modalities, --exclude and --max-defocus may leave out data that no run will want (the real set
has up to 33 slices per field, the challenge's inputs are within 5 of best focus). The folder
goes through the evaluation-set check of training (preprocessing/evaluation_sets.py).

Before it starts it prints the work, the disk it will take (from a sample of file headers) and
how long (from timing one sampled image). An interrupted prepare, or one that failed on some
files, keeps every field of view it finished: the same command again prepares only the rest.
index.json, which training needs, is written once every field is prepared.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
import torch
from tqdm import tqdm

from preprocessing.atomic_write import atomic_target, write_json
from preprocessing.layout import FieldOfView
from preprocessing.ome_io import MODALITIES, ORGANELLES, parse_ome_metadata
from preprocessing.resampling import scale_factors, scaled_shape

from .dataset import INPUT_NORM, load_fovs, read_exclusion_list, read_focus_records, read_normalised
from .store import (
    ARRAY_FIELDS,
    DTYPE,
    FORMAT_VERSION,
    HEADER,
    INDEX,
    STAMP_FIELDS,
    StoreError,
    StoreSpec,
    array_path,
    read_json,
    record_path,
    source_stamp,
)

FLOAT16_MAX = float(np.finfo(np.float16).max)
ABOVE_ONE = np.nextafter(np.float16(1), np.float16(2))      # the float16 after 1: 1 + 2^-10
NPY_HEADER_BYTES = 128
SAMPLED_HEADERS = 24          # files whose headers the size estimate reads


class PrepareError(RuntimeError):
    """Some fields of view could not be prepared (each named above it); the others are kept."""


@dataclass
class PrepareResult:
    store: Path
    fovs: int                 # fields of view in the store
    images: int
    bytes: int
    prepared: int             # fields prepared by this call (the rest were done before)
    seconds: float
    clipped: int              # pixels clipped to float16's range (store.py)


# ---------------------------------------------------------------- one field of view
def prepare_fov(fov: FieldOfView, root: Path, grid_um: float | None) -> dict:
    """Write the arrays of one field of view (its TL slices, then its GT resampled with the TL's
    pixel size, as ImageCache.pair does) and then its record, each file atomically."""
    record = {"study": fov.study, "image_id": fov.image_id, "modality": fov.modality,
              "slices": {}, "ground_truth": {}}
    reference = None
    shape = None
    for z in sorted(fov.slices):
        item, pixel_size = _prepare_image(fov.slices[z], root, fov.study, grid_um)
        reference = reference or pixel_size
        shape = shape or item["shape"]
        record["slices"][str(z)] = item
    for organelle, path in sorted(fov.ground_truth.items()):
        item, _ = _prepare_image(path, root, fov.study, grid_um, reference)
        for tl in record["slices"].values():
            if tl["shape"] != item["shape"]:
                raise ValueError(f"{path}: ground truth shape {tuple(item['shape'])} differs from its "
                                 f"transmitted-light image {tl['file']} {tuple(tl['shape'])}")
        record["ground_truth"][organelle] = item
    write_json(record_path(root, fov.study, fov.image_id), record)
    return record


def _prepare_image(path: Path, root: Path, study: str, grid_um: float | None,
                   pixel_size: tuple[float, float] | None = None) -> tuple[dict, tuple | None]:
    array, native = read_normalised(path, grid_um, pixel_size)
    clipped = int(np.count_nonzero(np.abs(array) > FLOAT16_MAX))
    if clipped:
        np.clip(array, -FLOAT16_MAX, FLOAT16_MAX, out=array)
    target = array_path(root, study, path.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(target) as tmp, open(tmp, "wb") as handle:   # np.save(path) would add ".npy"
        np.save(handle, to_float16(array))
    item = {"file": path.name, **source_stamp(path), "shape": list(array.shape),
            "pixel_size_um": list(native) if native else None, "clipped": clipped}
    return item, native


def to_float16(array: np.ndarray) -> np.ndarray:
    """float16 by rounding to nearest, except that a value beyond -1 or +1 never lands on it.

    -1 and +1 are p2 and p99.8, the edges of the weighted L1's full-weight band (losses.py:
    weight 1 for -1 <= target <= 1, else 0.1), and plateaus of pixels sit right there (a
    background at p2, resampling's undershoot of it by 3e-5). Rounding those onto the edge would
    give them 10x their weight; they take the next float16 outward instead (an error of one
    float16 step, 2^-10), so every stored pixel is on the same side of the band as the direct
    reader's float32 pixel."""
    stored = array.astype(DTYPE)
    crossed = (np.abs(array) > 1) & (np.abs(stored) <= 1)
    stored[crossed] = np.copysign(ABOVE_ONE, array[crossed])
    return stored


def _one_thread() -> None:
    torch.set_num_threads(1)    # one process per core; resampling in each is single-threaded


def _job(fov: FieldOfView, root: Path, grid_um: float | None) -> tuple[FieldOfView, dict | None, str | None]:
    """prepare_fov in a worker: (fov, record, None), or (fov, None, the reason it failed)."""
    try:
        return fov, prepare_fov(fov, root, grid_um), None
    except Exception as exc:   # one bad file must not stop the other fields
        return fov, None, f"{type(exc).__name__}: {exc}"


# ---------------------------------------------------------------- planning
def _files(fov: FieldOfView) -> dict:
    return {"slices": {str(z): {"file": p.name, **source_stamp(p)} for z, p in fov.slices.items()},
            "ground_truth": {o: {"file": p.name, **source_stamp(p)} for o, p in fov.ground_truth.items()}}


def _is_done(root: Path, fov: FieldOfView) -> bool:
    """A field counts as prepared when its record exists and names the same files, unchanged
    since (size and modification time)."""
    path = record_path(root, fov.study, fov.image_id)
    if not path.is_file():
        return False
    record = read_json(path, "field-of-view record")
    stamp = ("file",) + STAMP_FIELDS
    return {part: {key: {k: item[k] for k in stamp} for key, item in record[part].items()}
            for part in ("slices", "ground_truth")} == _files(fov)


def open_header(root: Path, spec: StoreSpec) -> None:
    """Start a new store, or continue one whose arrays were made the same way (ARRAY_FIELDS);
    a changed selection is recorded and the plan follows it (fields whose files changed are
    prepared again; arrays of files no longer selected stay on disk, unused)."""
    header = root / HEADER
    if header.is_file():
        difference = StoreSpec.from_json(read_json(header, "store header")).difference(spec, ARRAY_FIELDS)
        if difference:
            raise StoreError(f"{root}: a store prepared with other settings ({difference}, store vs "
                             f"this prepare); use another folder or delete it")
    elif root.exists() and any(root.iterdir()):
        raise StoreError(f"{root}: not empty and not a training store; choose a new or empty folder")
    (root / INDEX).unlink(missing_ok=True)     # the index is rewritten once the plan is complete
    write_json(header, spec.to_json())


def _n_images(fovs: list[FieldOfView]) -> int:
    return sum(len(f.slices) + len(f.ground_truth) for f in fovs)


def _header_shape(path: Path, grid_um: float | None) -> tuple[int, int]:
    """(source pixels, grid pixels) of a file from its header alone (no pixel data decoded)."""
    with tifffile.TiffFile(path) as tif:
        shape = [n for n in tif.series[0].shape if n != 1][-2:]
        _, pixel_size = parse_ome_metadata(tif.ome_metadata)
    grid = scaled_shape(tuple(shape), scale_factors(pixel_size, grid_um))
    return int(np.prod(shape)), int(np.prod(grid))


@dataclass
class Estimate:
    images: int
    bytes: int
    seconds: float            # with `workers` processes, assuming they scale with cores
    seconds_per_megapixel: float


def estimate(fovs: list[FieldOfView], grid_um: float | None, workers: int) -> Estimate:
    """Disk from the headers of a spread sample of files; time from decoding one of them (the
    second that decodes: the first also warms the libraries up)."""
    files = [p for f in fovs for p in [*f.slices.values(), *f.ground_truth.values()]]
    if not files:
        return Estimate(0, 0, 0.0, 0.0)
    picks, sizes = [], []
    for path in files[::max(1, len(files) // SAMPLED_HEADERS)][:SAMPLED_HEADERS]:
        try:
            sizes.append(_header_shape(path, grid_um))
            picks.append(path)
        except Exception:   # an unreadable file is reported by its field's job, with its reason
            continue
    if not picks:
        return Estimate(len(files), 0, 0.0, 0.0)
    sizes = np.array(sizes, float)
    per_mpx, timed = float("nan"), 0
    for path, (source_pixels, _) in zip(picks, sizes):
        start = time.perf_counter()
        try:
            read_normalised(path, grid_um)
        except Exception:
            continue
        per_mpx = (time.perf_counter() - start) / (source_pixels / 1e6)
        timed += 1
        if timed == 2 or len(picks) == 1:   # the first decode also pays for warming up the libraries
            break
    source_mpx = sizes[:, 0].mean() / 1e6 * len(files)
    disk = (sizes[:, 1].mean() * np.dtype(DTYPE).itemsize + NPY_HEADER_BYTES) * len(files)
    return Estimate(len(files), int(disk), per_mpx * source_mpx / max(1, workers), per_mpx)


# ---------------------------------------------------------------- the command
def prepare(data: str | os.PathLike, store: str | os.PathLike, *, pixel_size_um: float | None = None,
            modalities: tuple[str, ...] | None = None, exclude_file: str | os.PathLike | None = None,
            max_defocus: int | None = None, workers: int | None = None, progress: bool = True,
            log: Callable[[str], None] = print) -> PrepareResult:
    """Prepare (or finish preparing) STORE from DATA; see the module docstring."""
    start = time.perf_counter()
    root = Path(store)
    exclude = read_exclusion_list(exclude_file) if exclude_file else set()
    modalities = tuple(sorted(modalities, key=MODALITIES.index)) if modalities else None
    fovs = load_fovs(data, modalities=modalities, organelles=ORGANELLES, exclude=exclude,
                     max_defocus=max_defocus, use="training")
    spec = StoreSpec(source=str(Path(data).resolve()), pixel_size_um=pixel_size_um,
                     input_norm=dict(INPUT_NORM), modalities=modalities, exclude=tuple(sorted(exclude)),
                     max_defocus=max_defocus)
    open_header(root, spec)
    todo = [f for f in fovs if not _is_done(root, f)]
    workers = max(1, workers or len(os.sched_getaffinity(0)))
    grid = f"the {pixel_size_um} um grid" if pixel_size_um else "native pixels"
    if todo:
        est = estimate(todo, pixel_size_um, min(workers, len(todo)))
        free = shutil.disk_usage(root).free
        log(f"prepare {root}: {est.images} images in {len(todo)} fields of view "
            f"({len(fovs) - len(todo)} of {len(fovs)} already prepared) at {grid}; about "
            f"{est.bytes / 1e9:.2f} GB ({free / 1e9:.0f} GB free) and {est.seconds / 60:.1f} min with "
            f"{min(workers, len(todo))} worker(s) ({est.seconds_per_megapixel * 2048 * 2048 / 1e6:.2f} s per 2048x2048 image here)")
        if est.bytes > free:
            raise StoreError(f"{root}: about {est.bytes / 1e9:.1f} GB needed, {free / 1e9:.1f} GB free; "
                             f"free space or choose another folder")
    else:
        log(f"prepare {root}: all {len(fovs)} fields of view already prepared")
    failures = _run(todo, root, pixel_size_um, workers, progress) if todo else []
    if failures:
        for fov, reason in failures:
            log(f"{fov.key}: {reason}")
        raise PrepareError(f"{root}: {len(failures)} field(s) of view failed (listed above); the "
                           f"{len(fovs) - len(failures)} prepared are kept: fix or --exclude the files "
                           f"and run the same command again")
    result = write_index(root, spec, fovs, Path(data), prepared=len(todo), start=start)
    clipped = f"; {result.clipped} pixel(s) beyond float16's range clipped" if result.clipped else ""
    log(f"store {root}: {result.fovs} fields of view, {result.images} images, "
        f"{result.bytes / 1e9:.2f} GB; {len(todo)} fields prepared in {result.seconds:.1f} s{clipped}")
    return result


def _run(todo: list[FieldOfView], root: Path, grid_um: float | None, workers: int,
         progress: bool) -> list[tuple[FieldOfView, str]]:
    """Prepare the fields, `workers` processes at a time; the (field, reason) of each failure."""
    failures = []
    bar = tqdm(total=_n_images(todo), unit="img", desc="prepare", disable=not progress, dynamic_ncols=True)
    try:
        if workers == 1 or len(todo) <= 1:
            results = (_job(fov, root, grid_um) for fov in todo)
            for fov, _, error in results:
                bar.update(len(fov.slices) + len(fov.ground_truth))
                if error:
                    failures.append((fov, error))
        else:
            with ProcessPoolExecutor(min(workers, len(todo)), initializer=_one_thread) as pool:
                futures = [pool.submit(_job, fov, root, grid_um) for fov in todo]
                try:
                    for future in as_completed(futures):
                        fov, _, error = future.result()
                        bar.update(len(fov.slices) + len(fov.ground_truth))
                        if error:
                            failures.append((fov, error))
                except BaseException:
                    pool.shutdown(cancel_futures=True)    # finished fields stay; a rerun does the rest
                    raise
    finally:
        bar.close()
    return failures


def write_index(root: Path, spec: StoreSpec, fovs: list[FieldOfView], data: Path, *, prepared: int,
                start: float) -> PrepareResult:
    """index.json: every field's record (in load_fovs order) and the focus records of its slices."""
    records = [read_json(record_path(root, f.study, f.image_id), "field-of-view record") for f in fovs]
    items = [i for r in records for i in [*r["slices"].values(), *r["ground_truth"].values()]]
    size = sum(int(np.prod(i["shape"])) * np.dtype(DTYPE).itemsize + NPY_HEADER_BYTES for i in items)
    try:
        focus = read_focus_records(data)
    except FileNotFoundError:
        focus = {}
    names = {p.name for f in fovs for p in f.slices.values()}
    index = {"format": FORMAT_VERSION, "spec": spec.to_json(), "images": len(items), "bytes": size,
             "clipped": sum(i["clipped"] for i in items), "fovs": records,
             "focus": {n: [r.modality, r.image_z, r.best_z] for n, r in sorted(focus.items()) if n in names}}
    with atomic_target(root / INDEX) as tmp:    # compact: the real set's index has 57,022 images
        tmp.write_text(json.dumps(index, separators=(",", ":")))
    return PrepareResult(root, len(fovs), len(items), size, prepared, time.perf_counter() - start,
                         index["clipped"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, help="folder with Study_*/ (real layout or simulated)")
    p.add_argument("--store", required=True, help="the store folder (new, or one to finish)")
    p.add_argument("--pixel-size", type=float, default=None, help="the runs' grid in um (default: native)")
    p.add_argument("--modalities", nargs="+", choices=MODALITIES, default=None, help="default: all")
    p.add_argument("--exclude", default=None, help="exclusion list file (studies, FOVs or file names)")
    p.add_argument("--max-defocus", type=int, default=None,
                   help="only slices at most N z-steps from best focus (needs bestz.csv)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    try:
        prepare(args.data, args.store, pixel_size_um=args.pixel_size, modalities=args.modalities,
                exclude_file=args.exclude, max_defocus=args.max_defocus, workers=args.workers,
                progress=not args.quiet)
    except (PrepareError, StoreError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
