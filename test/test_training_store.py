"""The training store (training/store.py, training/prepare.py) against the direct reader
(dataset.ImageCache): same arrays, same crops, same batch statistics; refusals; resume; workers."""
from __future__ import annotations

import json
import pickle
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from preprocessing.evaluation_sets import EvaluationSetError, write_marker
from preprocessing.layout import FocusRecord, write_bestz_csv
from preprocessing.ome_io import ORGANELLES
from training import prepare as prepare_module
from training.checkpointing import load_training_checkpoint
from training.dataset import INPUT_NORM, ImageCache, load_fovs, read_focus_records
from training.loader import BatchLoader
from training.prepare import PrepareError, prepare
from training.sampler import BalancedSampler, SamplerConfig
from training.store import INDEX, StoreError, TrainingStore
from training.toy_studies import write_toy_studies
from training.train_pix2pix import PIX2PIX_LOSS, Pix2PixFamily
from training.trainer import TrainConfig, train

# float16 keeps 11 significant bits: a normalised value v is stored within |v| * 2^-11, or one step
# (2^-10 |v|) where rounding would have moved it from beyond -1 or +1 onto it (prepare.to_float16).
F16_RTOL, F16_ATOL = 2.0 ** -10, 1e-6


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _studies(root: Path, **kw) -> Path:
    """2 studies x 3 FOVs, 40 px at 0.1 um, 3 slices, best focus at z=1 for every slice."""
    args = dict(studies=2, fovs_per_study=3, size=40, z_slices=3, seed=3)
    args.update(kw)
    root = write_toy_studies(root, **args)
    fovs = load_fovs(root)
    write_bestz_csv(root / "bestz.csv", [FocusRecord(p.name, f.modality, z, 1)
                                         for f in fovs for z, p in f.slices.items()])
    return root


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Path:
    return _studies(tmp_path_factory.mktemp("layout") / "data")


@pytest.fixture(scope="module")
def store(layout, tmp_path_factory) -> TrainingStore:
    """The layout prepared at the 0.2 um grid by 2 worker processes."""
    out = tmp_path_factory.mktemp("store") / "store"
    prepare(layout, out, pixel_size_um=0.2, workers=2, progress=False, log=lambda line: None)
    return TrainingStore(out)


def _quiet(lines: list | None = None):
    return (lines.append if lines is not None else (lambda line: None))


def test_store_round_trip_equals_the_direct_reader(layout, store):
    cache = ImageCache(pixel_size_um=0.2)
    fovs = load_fovs(layout)
    assert [f.key for f in store.fovs] == [f.key for f in fovs]
    images = store.images()
    for fov, mine in zip(fovs, store.fovs):
        assert {z: p.name for z, p in mine.slices.items()} == {z: p.name for z, p in fov.slices.items()}
        assert set(mine.ground_truth) == set(fov.ground_truth)
        for z in fov.slices:
            tl, gts = images.pair(mine, z)
            want_tl, want_gts = cache.pair(fov, z)
            assert isinstance(tl, np.memmap) and tl.dtype == np.float16 and tl.shape == want_tl.shape == (20, 20)
            np.testing.assert_allclose(tl.astype(np.float32), want_tl, rtol=F16_RTOL, atol=F16_ATOL)
            for organelle, gt in gts.items():
                np.testing.assert_allclose(gt.astype(np.float32), want_gts[organelle], rtol=F16_RTOL,
                                           atol=F16_ATOL)
    files = list((store.path / "arrays").rglob("*.npy"))
    assert store.images_count == len(files) == sum(len(f.slices) + len(f.ground_truth) for f in fovs)
    assert store.bytes == sum(p.stat().st_size for p in files)
    assert store.focus_records == read_focus_records(layout)
    assert store.spec.pixel_size_um == 0.2 and store.spec.input_norm == INPUT_NORM
    # Selection from the index is load_fovs' selection from the folder.
    for kw in ({"max_defocus": 0}, {"organelles": ("actin",)}, {"exclude": {"Study_1", fovs[4].slices[2].name}}):
        args = {"modalities": None, "organelles": ORGANELLES, "exclude": None, "max_defocus": None, **kw}
        want = load_fovs(layout, **args)
        got = store.select(**args)
        assert [(f.key, sorted(f.slices), sorted(f.ground_truth)) for f in got] == \
               [(f.key, sorted(f.slices), sorted(f.ground_truth)) for f in want]


def test_native_grid_store_holds_the_independent_normalisation(tmp_path):
    root = write_toy_studies(tmp_path / "d", studies=1, fovs_per_study=1, size=24, z_slices=1)
    prepare(root, tmp_path / "s", workers=1, progress=False, log=_quiet())
    from preprocessing.ome_io import read_ome_tiff
    fov = TrainingStore(tmp_path / "s").fovs[0]
    tl, _ = TrainingStore(tmp_path / "s").images().pair(fov, 0)
    raw = read_ome_tiff(fov.slices[0]).array.astype(np.float64)
    lo, hi = np.percentile(raw, [2.0, 99.8])
    np.testing.assert_allclose(tl.astype(np.float64), 2 * (raw - lo) / (hi - lo) - 1, rtol=F16_RTOL, atol=1e-5)


@pytest.mark.parametrize("crop,jitter", [(16, None), (16, (0.7, 0.95)), (32, None)])
def test_store_crops_equal_the_direct_readers_crops(layout, store, crop, jitter):
    """Same seed, same batch numbers: the same FOVs, slices, windows, rotations and flips, so the
    pixels agree to float16's precision (crop 32 > the 20 px images: the mirror-padded path)."""
    cfg = SamplerConfig(batch_size=6, crop=crop, scale_jitter=jitter, seed=11)
    direct = BalancedSampler(load_fovs(layout), ImageCache(pixel_size_um=0.2), cfg)
    stored = BalancedSampler(store.fovs, store.images(), cfg)
    for _ in range(6):
        want, got = direct.next_batch(), stored.next_batch()
        assert torch.equal(want.mask, got.mask) and torch.equal(want.sampled, got.sampled)
        # resize (scale jitter) mixes neighbours: the float16 error stays of the same order
        np.testing.assert_allclose(got.inputs.numpy(), want.inputs.numpy(), rtol=4 * F16_RTOL, atol=1e-4)
        np.testing.assert_allclose(got.targets.numpy(), want.targets.numpy(), rtol=4 * F16_RTOL, atol=1e-4)


def test_batch_statistics_from_store_and_direct_reader_agree(layout, store):
    """Over 40 batches: the organelle counts are equal and every per-organelle mean and standard
    deviation of inputs and targets agrees within 1e-3."""
    cfg = SamplerConfig(batch_size=8, crop=16, scale_jitter=(0.7, 0.95), seed=2)
    stats = []
    for fovs, images in ((load_fovs(layout), ImageCache(pixel_size_um=0.2)), (store.fovs, store.images())):
        sampler = BalancedSampler(fovs, images, cfg)
        drawn, values = Counter(), {}
        for _ in range(40):
            batch = sampler.next_batch()
            drawn.update(batch.sampled.tolist())
            for k in range(len(ORGANELLES)):
                rows = batch.mask[:, k]
                values.setdefault(("target", k), []).append(batch.targets[rows, k].numpy().ravel())
                values.setdefault(("input", k), []).append(batch.inputs[batch.sampled == k].numpy().ravel())
        stats.append((drawn, {key: (np.concatenate(v).mean(), np.concatenate(v).std())
                              for key, v in values.items() if np.concatenate(v).size}))
    (drawn_a, moments_a), (drawn_b, moments_b) = stats
    assert drawn_a == drawn_b and max(drawn_a.values()) - min(drawn_a.values()) <= 1
    assert moments_a.keys() == moments_b.keys()
    for key in moments_a:
        np.testing.assert_allclose(moments_b[key], moments_a[key], atol=1e-3, err_msg=str(key))


class _CropOnly:
    """An image that may be sliced but never read whole: proves a sample reads only its crop."""

    def __init__(self, array: np.ndarray, reads: list):
        self._array, self._reads, self.shape = array, reads, array.shape

    def __getitem__(self, key):
        self._reads.append(key)
        return self._array[key]

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole image was read")


def test_a_sample_reads_only_its_crop(store):
    reads: list = []

    class Images:
        def pair(self, fov, z):
            tl, gts = store.images().pair(fov, z)
            return _CropOnly(tl, reads), {o: _CropOnly(g, reads) for o, g in gts.items()}

    sampler = BalancedSampler(store.fovs, Images(), SamplerConfig(batch_size=4, crop=8, seed=0))
    sampler.next_batch()
    assert reads and all(k[0].stop - k[0].start == 8 and k[1].stop - k[1].start == 8 for k in reads)


def test_dataloader_with_two_workers_from_the_store(store):
    cfg = SamplerConfig(batch_size=4, crop=16, seed=5)
    direct = BalancedSampler(store.fovs, store.images(), cfg)
    loader = BatchLoader(BalancedSampler(store.fovs, store.images(), cfg), workers=2)
    try:
        for _ in range(6):
            want, got = direct.next_batch(), loader.next_batch()
            assert torch.equal(want.inputs, got.inputs) and torch.equal(want.targets, got.targets)
        assert loader.state_dict() == direct.state_dict() == {"next_index": 6}
    finally:
        loader.close()
    images = store.images()
    images.pair(store.fovs[0], 0)
    copy = pickle.loads(pickle.dumps(images))          # what a spawned worker gets: no open maps
    assert not copy._open and copy.root == images.root


def test_training_refuses_a_mismatched_store(layout, tmp_path):
    excluded = load_fovs(layout)[0].slices[0].name
    exclusion = tmp_path / "exclude.txt"
    exclusion.write_text(f"{excluded}\n")
    out = tmp_path / "s"
    prepare(layout, out, pixel_size_um=0.2, modalities=("BF",), exclude_file=exclusion, max_defocus=1,
            workers=1, progress=False, log=_quiet())
    store = TrainingStore(out)
    ok = dict(data=str(layout), pixel_size_um=0.2, input_norm=INPUT_NORM, modalities=("BF",),
              exclude={excluded}, max_defocus=1)
    store.check_run(**ok)
    store.check_run(**{**ok, "data": None, "exclude": {excluded, "Study_2"}, "max_defocus": 0})
    wrong = {"pixel size 0.2 um, this run trains at native pixels": {"pixel_size_um": None},
             "normalisation": {"input_norm": {"kind": "percentile", "low": 1.0, "high": 99.0}},
             "prepared from": {"data": str(tmp_path)},
             r"modalities \[BF\] only, this run wants every modality": {"modalities": None},
             "without 1 exclusion entry": {"exclude": None},
             "up to 1 steps from best focus, this run wants all": {"max_defocus": None}}
    for words, change in wrong.items():
        with pytest.raises(StoreError, match=words) as info:
            store.check_run(**{**ok, **change})
        assert "\n" not in str(info.value) and str(out) in str(info.value)
    # The trainer checks before it builds anything.
    with pytest.raises(StoreError, match="pixel size 0.2 um, this run trains at pixel size 0.1 um"):
        train(TrainConfig(data=None, store=str(out), out=str(tmp_path / "run"), pixel_size_um=0.1,
                          modalities=("BF",), exclude=str(exclusion), max_defocus=1, progress=False), Pix2PixFamily())
    index = json.loads((out / INDEX).read_text())
    (out / INDEX).write_text(json.dumps({**index, "format": 0}))
    with pytest.raises(StoreError, match="store format 0, this code reads format 1"):
        TrainingStore(out)
    (out / INDEX).unlink()
    with pytest.raises(StoreError, match="prepare has not finished"):
        TrainingStore(out)
    with pytest.raises(StoreError, match="not a training store"):
        TrainingStore(tmp_path)


def test_interrupted_prepare_resumes_where_it_stopped(layout, tmp_path, monkeypatch):
    real = prepare_module.prepare_fov
    calls = []

    def interrupted(fov, root, grid):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(fov.key)
        return real(fov, root, grid)

    monkeypatch.setattr(prepare_module, "prepare_fov", interrupted)
    out = tmp_path / "s"
    with pytest.raises(KeyboardInterrupt):
        prepare(layout, out, pixel_size_um=0.2, workers=1, progress=False, log=_quiet())
    with pytest.raises(StoreError, match=r"not finished \(2 fields of view done\)"):
        TrainingStore(out)
    first = {p: p.stat().st_mtime_ns for p in (out / "arrays").rglob("*.npy")}

    calls.clear()
    monkeypatch.setattr(prepare_module, "prepare_fov", lambda *a: (calls.append(a[0].key), real(*a))[1])
    lines: list = []
    result = prepare(layout, out, pixel_size_um=0.2, workers=1, progress=False, log=_quiet(lines))
    assert result.prepared == 4 and len(calls) == 4 and result.fovs == 6
    assert "(2 of 6 already prepared)" in lines[0] and "GB" in lines[0] and "min" in lines[0]
    assert all(p.stat().st_mtime_ns == t for p, t in first.items())     # not prepared again

    fresh = tmp_path / "fresh"
    prepare(layout, fresh, pixel_size_um=0.2, workers=1, progress=False, log=_quiet())
    a, b = json.loads((out / INDEX).read_text()), json.loads((fresh / INDEX).read_text())
    assert a == b
    for path in (fresh / "arrays").rglob("*.npy"):
        assert path.read_bytes() == (out / path.relative_to(fresh)).read_bytes()
    with pytest.raises(StoreError, match="other settings .pixel_size_um 0.2 vs 0.1"):
        prepare(layout, out, pixel_size_um=0.1, workers=1, progress=False, log=_quiet())


def test_prepare_reports_a_bad_file_keeps_the_rest_and_resumes_with_it_excluded(tmp_path):
    root = _studies(tmp_path / "d")
    bad = load_fovs(root)[2].slices[1]
    bad.write_bytes(b"not a tiff")
    lines: list = []
    with pytest.raises(PrepareError, match="1 field.s. of view failed .* the 5 prepared are kept"):
        prepare(root, tmp_path / "s", pixel_size_um=0.2, workers=2, progress=False, log=_quiet(lines))
    assert any(bad.name in line and "unreadable TIFF" in line for line in lines)
    assert len(list((tmp_path / "s" / "fovs").rglob("*.json"))) == 5
    exclusion = tmp_path / "exclude.txt"
    exclusion.write_text(bad.name + "\n")
    result = prepare(root, tmp_path / "s", pixel_size_um=0.2, exclude_file=exclusion, workers=1,
                     progress=False, log=_quiet())
    assert result.prepared == 1
    store = TrainingStore(tmp_path / "s")
    assert store.spec.exclude == (bad.name,)
    assert sorted(store.fovs[2].slices) == [0, 2]


def test_prepare_refuses_an_evaluation_set_and_writes_nothing(layout, tmp_path):
    root = write_toy_studies(tmp_path / "smoke", studies=1, fovs_per_study=1, size=16, z_slices=1)
    write_marker(root, "smoke", 900001, "test")
    with pytest.raises(EvaluationSetError, match="training may read only"):
        prepare(root, tmp_path / "s", workers=1, progress=False, log=_quiet())
    assert not (tmp_path / "s").exists()
    assert prepare_module.main(["--data", str(layout), "--store", str(tmp_path / "smoke"), "--quiet"]) == 1


def _config(store_dir, out, **kw) -> TrainConfig:
    base = dict(data=None, store=store_dir and str(store_dir), out=str(out), preset="tiny", steps=6, batch_size=4, crop=16,
                pixel_size_um=0.2, val_every=3, val_items=2, val_crop=16, ckpt_every=3, log_every=3,
                progress=False, loss=replace(PIX2PIX_LOSS, disc_preset="tiny"))
    base.update(kw)
    return TrainConfig(**base)


def test_training_from_the_store_matches_the_direct_reader_and_resumes(layout, store, tmp_path):
    """The first step's losses from the store are those from the folder (same initial weights,
    batches float16 apart; later steps drift apart as Adam's first updates are nearly signs); a
    run from the store stopped and resumed with 2 workers ends bit for bit where one run ends."""
    train(_config(store.path, tmp_path / "a", log_every=1), Pix2PixFamily())
    train(_config(None, tmp_path / "direct", data=str(layout), steps=1, log_every=1), Pix2PixFamily())
    first = [dict(zip(*[row.split(",") for row in (tmp_path / run / "train_log.csv").read_text().splitlines()[:2]]))
             for run in ("a", "direct")]
    for key in ("total", "rec", "gan_g", "gan_d"):
        np.testing.assert_allclose(float(first[0][key]), float(first[1][key]), rtol=1e-3, err_msg=key)
    train(_config(store.path, tmp_path / "b", stop_after=3, workers=2), Pix2PixFamily())
    train(_config(store.path, tmp_path / "b", resume=True, workers=2), Pix2PixFamily())
    a, b = load_training_checkpoint(tmp_path / "a" / "last.pt"), load_training_checkpoint(tmp_path / "b" / "last.pt")
    assert a["step"] == b["step"] == 6 and a["samplers"] == b["samplers"] == [{"next_index": 6}]
    for key, value in a["generator"]["params"].items():
        assert torch.equal(value, b["generator"]["params"][key]), key


def test_float16_keeps_every_value_on_its_side_of_the_weighted_band():
    from training.prepare import to_float16
    values = np.array([-1.00003, -1.0, -0.99997, 0.3333, 0.99999, 1.0, 1.00002, 1.7, -250.123], np.float32)
    stored = to_float16(values)
    assert stored.dtype == np.float16
    inside = (values >= -1) & (values <= 1)
    np.testing.assert_array_equal((stored >= -1) & (stored <= 1), inside)
    np.testing.assert_array_equal(stored[[1, 3, 5, 7, 8]], values[[1, 3, 5, 7, 8]].astype(np.float16))
    assert stored[0] == -1.0009765625 and stored[6] == 1.0009765625


def test_a_changed_source_is_refused_and_prepared_again(tmp_path):
    root = _studies(tmp_path / "d", studies=1, fovs_per_study=2)
    prepare(root, tmp_path / "s", pixel_size_um=0.2, workers=1, progress=False, log=_quiet())
    run = dict(data=str(root), pixel_size_um=0.2, input_norm=INPUT_NORM, modalities=None, exclude=None,
               max_defocus=None)
    TrainingStore(tmp_path / "s").check_run(**run)
    _studies(tmp_path / "d", studies=1, fovs_per_study=2, seed=9)     # simulated again: same names
    with pytest.raises(StoreError, match="changed since the store"):
        TrainingStore(tmp_path / "s").check_run(**run)
    assert prepare(root, tmp_path / "s", pixel_size_um=0.2, workers=1, progress=False, log=_quiet()).prepared == 2
    store = TrainingStore(tmp_path / "s")
    store.check_run(**run)
    tl, _ = store.images().pair(store.fovs[0], 0)
    want, _ = ImageCache(pixel_size_um=0.2).pair(load_fovs(root)[0], 0)
    np.testing.assert_allclose(tl.astype(np.float32), want, rtol=F16_RTOL, atol=F16_ATOL)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="pinned memory and non-blocking copies need CUDA")
def test_workers_hand_over_pinned_batches_that_arrive_as_float32_on_the_gpu(store):
    loader = BatchLoader(BalancedSampler(store.fovs, store.images(), SamplerConfig(batch_size=2, crop=16)),
                         workers=1, pin_memory=True)
    try:
        batch = loader.next_batch()
        assert batch.inputs.is_pinned() and batch.inputs.dtype == torch.float16
        on_gpu = batch.to("cuda")
        assert on_gpu.inputs.is_cuda and on_gpu.inputs.dtype == torch.float32
        assert torch.equal(on_gpu.targets.cpu(), batch.targets.float())
    finally:
        loader.close()
