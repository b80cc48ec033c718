"""The training data path alone, in samples/s: the direct reader against a training store (in the
training process and from DataLoader workers), beside the model's step rate on this machine.

    python -m benchmarks.bench_data [--distinct 24] [--fields 300] [--size 2048] [--slices 20]
        [--pixel-size 0.2] [--crop 256] [--batch-size 8] [--seconds 20] [--workers 0 1 2]
        [--model-steps 2] [--work DIR]

Layout: `distinct` simulated fields of size x size pixels at 0.1 um (training.toy_studies: `slices`
TL slices and 1-3 GT images each, ~22 files), hard-linked under other study names up to `fields`
fields (the data path's costs do not depend on what the pixels show; hard links keep the disk to
the distinct fields). The direct reader's cache gets the share of the layout's working set that
its default 2 GB is of the real set's (--cache-fraction, 2 / 27 GB at the 0.2 um grid): with
random sampling nearly every sample misses, as it would on the real set. The store is prepared
from the distinct fields (timed: the per-image cost for the real-set extrapolation) and linked
up to `fields` the same way; so its arrays come from the page cache, as a store that fits in a
training machine's memory would (the README says what a store that does not fit costs).
The model's rate is the real training loop (pix2pix `small`, the shipped recipe's objective:
L1 only) from the store, on this CPU.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from preprocessing.layout import GT_NAME, TL_NAME
from training.dataset import ImageCache, load_fovs
from training.loader import BatchLoader
from training.prepare import prepare
from training.sampler import BalancedSampler, SamplerConfig
from training.store import ARRAYS, FOV_RECORDS, TrainingStore, record_path
from training.toy_studies import write_toy_studies
from training.train_pix2pix import PIX2PIX_LOSS, Pix2PixFamily
from training.trainer import TrainConfig, train

FIELDS_PER_STUDY = 6
REAL_CACHE_FRACTION = 2.0 / 27.0    # default cache / the real set's working set at 0.2 um (issue 21)
REAL_DOC = Path(__file__).resolve().parents[1] / ".." / "shared" / "real" / "lmc_training_doc"


# ---------------------------------------------------------------- the layout and its store
def write_distinct(root: Path, args) -> None:
    studies = -(-args.distinct // FIELDS_PER_STUDY)
    write_toy_studies(root, studies=studies, fovs_per_study=FIELDS_PER_STUDY, size=args.size,
                      z_slices=args.slices, seed=1)


def link_studies(root: Path, store: Path | None, fields: int) -> None:
    """Hard-link the distinct studies (and their store arrays and records) to `fields` fields."""
    distinct = sorted((p for p in root.glob("Study_*")), key=lambda p: int(p.name.split("_")[1]))
    n, copy = len(distinct) * FIELDS_PER_STUDY, 0
    while n < fields:
        source = distinct[copy % len(distinct)]
        name = f"Study_{len(distinct) + copy + 1}"
        copy += 1
        n += FIELDS_PER_STUDY
        _link_tree(source, root / name)
        if store is not None:
            _link_tree(store / ARRAYS / source.name, store / ARRAYS / name)
            for record in (store / FOV_RECORDS / source.name).glob("*.json"):
                data = json.loads(record.read_text())
                data["study"] = name
                target = record_path(store, name, data["image_id"])
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(json.dumps(data))


def _link_tree(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        os.link(path, target / path.name)


# ---------------------------------------------------------------- rates
def rate(next_batch, batch_size: int, seconds: float, warmup: int = 2) -> float:
    for _ in range(warmup):
        next_batch()
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        next_batch()
        n += batch_size
    return n / (time.perf_counter() - start)


MEMORY_FIELDS = ("Private_Dirty", "Pss_File")


def memory_of(pid: int) -> dict[str, int]:
    """Bytes of a process: Private_Dirty, the memory it adds (its heap and the parent's pages it
    wrote to; the rest of what it inherited by fork stays shared), and Pss_File, its share of
    mapped files (the store's pages it touched, in the page cache, and the libraries)."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in MEMORY_FIELDS:
                out[key] = int(value.split()[0]) * 1024
    return out


def bench_direct(root: Path, store: TrainingStore, config: SamplerConfig, args) -> tuple[float, str]:
    """(samples/s, note) of the direct reader; its cache is freed on return, so the workers
    forked afterwards do not inherit it."""
    working_set = sum(int(np.prod(i["shape"])) * 4 for r in store.records
                      for i in [*r["slices"].values(), *r["ground_truth"].values()])
    cache = ImageCache(args.pixel_size, int(working_set * args.cache_fraction))
    direct = BalancedSampler(load_fovs(root), cache, config)
    samples = rate(direct.next_batch, config.batch_size, args.seconds, warmup=0)
    hit = cache.hits / max(1, cache.hits + cache.misses)
    return samples, (f"cache {cache.max_bytes / 1e9:.1f} GB of {working_set / 1e9:.0f} GB, "
                     f"hit rate {100 * hit:.1f} % (a GT serves all its field's slices)")


def bench_store(store: TrainingStore, config: SamplerConfig, workers: int, seconds: float
                ) -> tuple[float, list[dict[str, int]]]:
    """(samples/s, memory_of each worker process)."""
    sampler = BalancedSampler(store.fovs, store.images(), config)
    if workers == 0:
        return rate(sampler.next_batch, config.batch_size, seconds), []
    loader = BatchLoader(sampler, workers)
    try:
        samples = rate(loader.next_batch, config.batch_size, seconds, warmup=2 * workers)
        memory = [memory_of(w.pid) for w in loader._batches._workers]
    finally:
        loader.close()
    return samples, memory


def bench_model(store: TrainingStore, tmp: Path, args) -> float:
    """Samples/s of the training loop itself (data from the store in-process, on this CPU)."""
    out = tmp / "model_run"
    cfg = TrainConfig(data=None, store=str(store.path), out=str(out), preset="small",
                      steps=2 * args.model_steps, batch_size=args.batch_size, crop=args.crop,
                      pixel_size_um=args.pixel_size, log_every=args.model_steps, val_fraction=0.0,
                      val_every=10 ** 9, ckpt_every=10 ** 9, progress=False, device="cpu",
                      threads=args.threads, loss=replace(PIX2PIX_LOSS, gan_weight=0.0))
    train(cfg, Pix2PixFamily())
    with open(out / "train_log.csv") as handle:
        return float(list(csv.DictReader(handle))[-1]["samples_per_s"])


def crop_read_ms(store: TrainingStore, tmp: Path, crop: int, n: int = 400) -> dict[str, float]:
    """Milliseconds per random crop x crop read (into memory) of a store's arrays: from their
    memory maps, and where zarr is installed (it is not a dependency) from zarr copies of the
    same arrays, chunked crop x crop, uncompressed and with zarr's default compressor."""
    keys = [(r["study"], i["file"]) for r in store.records[:FIELDS_PER_STUDY]
            for i in [*r["slices"].values(), *r["ground_truth"].values()]][:48]
    images = store.images()
    arrays = [images.array(*key) for key in keys]
    rng = np.random.default_rng(0)
    picks = [(int(rng.integers(len(arrays))),) + tuple(int(rng.integers(max(1, s - crop + 1))) for s in
             arrays[0].shape) for _ in range(n)]

    def timed(sources) -> float:
        for i, y, x in picks[:20]:
            np.array(sources[i][y:y + crop, x:x + crop])   # a copy: the read itself
        start = time.perf_counter()
        for i, y, x in picks:
            np.array(sources[i][y:y + crop, x:x + crop])   # a copy: the read itself
        return (time.perf_counter() - start) / n * 1e3

    out = {"memory-mapped .npy": timed(arrays)}
    try:
        import zarr
    except ImportError:
        return out
    for label, compressors in ((f"zarr {zarr.__version__}, {crop}^2 chunks, raw", None),
                               (f"zarr {zarr.__version__}, {crop}^2 chunks, default codec", "auto")):
        copies = []
        for k, array in enumerate(arrays):
            z = zarr.create_array(store=str(tmp / f"zarr_{len(out)}_{k}.zarr"), shape=array.shape,
                                  chunks=(crop, crop), dtype=array.dtype, compressors=compressors)
            z[:] = np.asarray(array)
            copies.append(z)
        out[label] = timed(copies)
    return out


# ---------------------------------------------------------------- the real set, extrapolated
def real_set_files() -> list[tuple[float, str, int]] | None:
    """(pixel size nm, field key, z or -1 for GT) of every distinct real file, from the organizers'
    file lists and REMBI sheet in ../shared/real; None where they are absent."""
    lists, sheet = REAL_DOC / "FileList", REAL_DOC / "rembi_studies.csv"
    if not lists.is_dir() or not sheet.is_file():
        return None
    with open(sheet, newline="") as handle:
        pixel_nm = {int(r["study"].split()[-1]): float(r["pixel_size_nm"]) for r in csv.DictReader(handle)}
    files = []
    for tsv in lists.glob("Study*.tsv"):
        study = int(tsv.stem.removeprefix("Study"))
        for name in sorted({line.strip() for line in tsv.read_text().splitlines() if line.strip()}):
            if tl := TL_NAME.match(name):
                files.append((pixel_nm[study], f"{study}/{tl['id']}", int(tl["z"])))
            elif gt := GT_NAME.match(name):
                files.append((pixel_nm[study], f"{study}/{gt['id']}", -1))
    return files


def extrapolate(files, seconds_per_2048: float, grid_um: float, cores: int) -> list[str]:
    """Disk and time of preparing the real set with every image taken as 2048 x 2048 (the largest:
    upper bounds, the set spans 512^2 to 2048^2), all slices and with --max-defocus 5 (at most
    11 slices a field: which 11 depends on bestz.csv, absent here)."""
    slices: dict[str, int] = {}
    for _, key, z in files:
        slices[key] = slices.get(key, 0) + (z >= 0)
    pixel = {key: nm for nm, key, _ in files}
    gt = len([f for f in files if f[2] < 0])
    lines = []
    for label, per_field in (("every slice", lambda n: n), ("--max-defocus 5", lambda n: min(n, 11))):
        count = {key: per_field(n) for key, n in slices.items()}
        images = gt + sum(count.values())
        grid_px = sum(count[key] * (2048 * pixel[key] / 1000 / grid_um) ** 2 for key in count) + \
            sum((2048 * nm / 1000 / grid_um) ** 2 for nm, _, z in files if z < 0)
        lines.append(f"real set, {label}: {images} images, all taken as 2048^2: store <= "
                     f"{grid_px * 2 / 1e9:.0f} GB at the {grid_um} um grid, prepare <= "
                     f"{images * seconds_per_2048 / cores / 60:.0f} min on {cores} cores at this "
                     f"machine's {seconds_per_2048:.3f} s per 2048^2 image per core")
    return lines


# ---------------------------------------------------------------- the command
def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--distinct", type=int, default=24, help="simulated fields (the rest are hard links)")
    p.add_argument("--fields", type=int, default=300)
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--slices", type=int, default=20)
    p.add_argument("--pixel-size", type=float, default=0.2, help="the store's and the runs' grid (um)")
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seconds", type=float, default=20.0, help="per measured data path")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="DataLoader workers to try")
    p.add_argument("--cache-fraction", type=float, default=REAL_CACHE_FRACTION)
    p.add_argument("--model-steps", type=int, default=2, help="warm-up steps, then as many timed (0: skip)")
    p.add_argument("--threads", type=int, default=None, help="torch threads of the model's run")
    p.add_argument("--work", default=None, help="folder for the layout and store (default: a temp dir)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.work) as tmp_name:
        tmp = Path(tmp_name)
        root, store_dir = tmp / "data", tmp / "store"
        cores = len(os.sched_getaffinity(0))
        print(f"{cores} cores, load average {os.getloadavg()[0]:.1f}; layout: {args.distinct} distinct "
              f"fields of {args.size}^2 at 0.1 um, {args.slices} slices, linked to {args.fields} fields; "
              f"grid {args.pixel_size} um, crop {args.crop}, batch {args.batch_size}", flush=True)
        start = time.perf_counter()
        write_distinct(root, args)
        print(f"simulated in {time.perf_counter() - start:.0f} s", flush=True)

        result = prepare(root, store_dir, pixel_size_um=args.pixel_size, progress=False, log=lambda line: None)
        per_image = result.seconds * cores / result.images
        seconds_per_2048 = per_image * (2048 / args.size) ** 2
        print(f"prepare: {result.images} images in {result.seconds:.1f} s on {cores} workers = "
              f"{per_image:.3f} s per {args.size}^2 image per core", flush=True)
        link_studies(root, store_dir, args.fields)
        indexed = prepare(root, store_dir, pixel_size_um=args.pixel_size, progress=False, log=lambda line: None)
        store = TrainingStore(store_dir)
        print(f"store: {len(store.fovs)} fields, {store.images_count} images, index in {indexed.seconds:.1f} s; "
              f"{store.bytes / store.images_count * 1000 / 1e9:.2f} GB per 1,000 images at the grid "
              f"(float16, from {args.size}^2 at 0.1 um)", flush=True)

        config = SamplerConfig(batch_size=args.batch_size, crop=args.crop, seed=0)
        direct_rate, note = bench_direct(root, store, config, args)
        rows = [("direct reader (ImageCache)", 0, direct_rate, note)]
        for workers in args.workers:
            samples, memory = bench_store(store, config, workers, args.seconds)
            note = "in the training process"
            if memory:
                mean = {k: np.mean([m.get(k, 0) for m in memory]) / 1e6 for k in MEMORY_FIELDS}
                note = (f"per worker: {mean['Private_Dirty']:.0f} MB private, {mean['Pss_File']:.0f} MB "
                        f"share of mapped files (store pages in the page cache, libraries)")
            rows.append(("store", workers, samples, note))
        print(f"\n{'data path':28} {'workers':>7} {'samples/s':>10} {'x direct':>9}  note")
        for name, workers, samples, note in rows:
            print(f"{name:28} {workers:7d} {samples:10.1f} {samples / direct_rate:9.1f}  {note}")
        for label, ms in crop_read_ms(store, tmp, args.crop).items():
            print(f"crop read, {label}: {ms:.3f} ms per {args.crop}^2 crop", flush=True)
        if args.model_steps:
            model = bench_model(store, tmp, args)
            print(f"{'model step (pix2pix small)':28} {'':7} {model:10.2f} {'':9}  training loop, L1 only, "
                  f"CPU, {torch.get_num_threads()} threads")
        files = real_set_files()
        if files is None:
            print("../shared/real/lmc_training_doc absent: no real-set extrapolation")
        else:
            for line in extrapolate(files, seconds_per_2048, args.pixel_size, cores):
                print(line)


if __name__ == "__main__":
    main()
