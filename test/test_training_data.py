"""training/dataset.py and training/sampler.py on small study folders written to tmp dirs."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from preprocessing.layout import gt_file_name, tl_file_name
from preprocessing.ome_io import ORGANELLES, read_ome_tiff, write_ome_tiff
from training.dataset import ImageCache, apply_exclusions, load_fovs, read_exclusion_list, split_by_study
from training.sampler import BalancedSampler, SamplerConfig
from training.toy_studies import write_toy_studies


def _independent_norm(array: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(array.astype(np.float64), [2.0, 99.8])
    return (2.0 * (array - lo) / (hi - lo) - 1.0).astype(np.float32)


def test_load_fovs_filters_and_pairs_slices_with_ground_truth(tmp_path):
    root = write_toy_studies(tmp_path, studies=2, fovs_per_study=3, size=32, z_slices=3)
    fovs = load_fovs(root)
    assert len(fovs) == 6 and all(len(f.slices) == 3 for f in fovs)
    assert all(1 <= len(f.ground_truth) <= 3 for f in fovs)
    only_actin = load_fovs(root, organelles=("actin",))
    assert only_actin and all(set(f.ground_truth) == {"actin"} for f in only_actin)
    with pytest.raises(ValueError, match="no field of view"):
        load_fovs(root, modalities=("DIC",))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_fovs(tmp_path / "nowhere")


def test_exclusion_list_drops_studies_fovs_slices_and_gt(tmp_path):
    root = write_toy_studies(tmp_path / "d", studies=2, fovs_per_study=2, size=32, z_slices=2)
    fovs = load_fovs(root)
    victim = fovs[1]
    gt_name = next(iter(victim.ground_truth.values())).name
    listing = tmp_path / "exclude.txt"
    listing.write_text(f"# mislabelled\nStudy_2\n{fovs[0].slices[0].name}  # one slice\n{gt_name}\n")
    entries = read_exclusion_list(listing)
    kept = {f.key: f for f in apply_exclusions(fovs, entries)}
    assert not any(k.startswith("Study_2/") for k in kept)
    assert set(kept[fovs[0].key].slices) == {1}
    assert gt_name not in {p.name for p in kept[victim.key].ground_truth.values()}
    with pytest.raises(FileNotFoundError, match="exclusion list"):
        read_exclusion_list(tmp_path / "missing.txt")


def test_split_is_stratified_by_study_and_disjoint(tmp_path):
    root = write_toy_studies(tmp_path, studies=3, fovs_per_study=5, size=16, z_slices=1)
    fovs = load_fovs(root)
    train, val = split_by_study(fovs, 0.2, seed=3)
    assert {f.key for f in train}.isdisjoint({f.key for f in val})
    assert len(train) + len(val) == len(fovs)
    assert Counter(f.study for f in val) == {"Study_1": 1, "Study_2": 1, "Study_3": 1}
    assert split_by_study(fovs, 0.2, seed=3) == (train, val)


def test_cache_normalises_whole_image_and_resamples(tmp_path):
    root = write_toy_studies(tmp_path, studies=1, fovs_per_study=1, size=40, z_slices=1,
                             pixel_size_um=0.2)
    fov = load_fovs(root)[0]
    raw = read_ome_tiff(fov.slices[0]).array
    tl, gts = ImageCache().pair(fov, 0)
    np.testing.assert_allclose(tl, _independent_norm(raw), atol=1e-5)
    for organelle, gt in gts.items():
        np.testing.assert_allclose(gt, _independent_norm(read_ome_tiff(fov.ground_truth[organelle]).array),
                                   atol=1e-5)
    # 0.2 um pixels resampled to 0.1 um: twice the pixels per side, same normalised range.
    tl_fine, gts_fine = ImageCache(pixel_size_um=0.1).pair(fov, 0)
    assert tl_fine.shape == (80, 80) and all(g.shape == (80, 80) for g in gts_fine.values())
    np.testing.assert_allclose(tl_fine.mean(), tl.mean(), atol=0.05)


def test_cache_is_bounded_and_counts_hits(tmp_path):
    root = write_toy_studies(tmp_path, studies=1, fovs_per_study=3, size=32, z_slices=1)
    fovs = load_fovs(root)
    cache = ImageCache(max_bytes=3 * 32 * 32 * 4)
    for fov in fovs:
        cache.get(fov.slices[0])
    assert cache._bytes <= cache.max_bytes and len(cache._items) == 3
    cache.get(fovs[-1].slices[0])
    assert cache.hits == 1
    cache.get(next(iter(fovs[0].ground_truth.values())))   # evicts the oldest
    assert len(cache._items) == 3 and str(fovs[0].slices[0]) not in cache._items


def test_ground_truth_shape_mismatch_names_the_file(tmp_path):
    root = write_toy_studies(tmp_path, studies=1, fovs_per_study=1, size=32, z_slices=1,
                             organelles_of={0: ("nucleus",)})
    bad = root / "Study_1" / gt_file_name("1x1", "nucleus")
    write_ome_tiff(bad, np.ones((16, 16), np.uint16), channel_name="nucleus")
    with pytest.raises(ValueError, match=bad.name):
        ImageCache().pair(load_fovs(root)[0], 0)


def _skewed_studies(tmp_path, n_nucleus: int = 40):
    """n_nucleus FOVs with nucleus GT, of which one also has actin: actin is 40x rarer."""
    organelles_of = {i: ("nucleus",) for i in range(n_nucleus)}
    organelles_of[0] = ("nucleus", "actin")
    organelles_of[1] = ("nucleus", "mitochondria")
    return write_toy_studies(tmp_path, studies=1, fovs_per_study=n_nucleus, size=16, z_slices=2,
                             organelles_of=organelles_of)


def test_sampler_balances_organelles_even_when_one_is_rare(tmp_path):
    fovs = load_fovs(_skewed_studies(tmp_path))
    sampler = BalancedSampler(fovs, ImageCache(), SamplerConfig(batch_size=6, crop=16, seed=1))
    drawn, labelled = Counter(), Counter()
    for _ in range(20):
        batch = sampler.next_batch()
        drawn.update(ORGANELLES[k] for k in batch.sampled.tolist())
        labelled.update(ORGANELLES[k] for b, k in zip(*np.nonzero(batch.mask.numpy())))
        # every sample is labelled for the organelle it was drawn for
        assert batch.mask[np.arange(6), batch.sampled].all()
    assert set(drawn) == {"nucleus", "mitochondria", "actin"}        # tubulin has no data
    assert max(drawn.values()) - min(drawn.values()) <= 1            # 40 each out of 120
    assert labelled["actin"] >= drawn["actin"] == 40                  # 40 of 120, not 3 of 120
    assert labelled["nucleus"] == 120                                 # every FOV has nucleus


def test_sampler_mask_and_targets_match_the_fov(tmp_path):
    root = write_toy_studies(tmp_path, studies=1, fovs_per_study=2, size=16, z_slices=1,
                             organelles_of={0: ("mitochondria",), 1: ("tubulin",)})
    fovs = load_fovs(root)
    cfg = SamplerConfig(batch_size=4, crop=16, flips=False, rot90=False, seed=0)
    batch = BalancedSampler(fovs, ImageCache(), cfg).next_batch()
    cache = ImageCache()
    for b in range(4):
        k = int(batch.sampled[b])
        fov = fovs[0] if ORGANELLES[k] == "mitochondria" else fovs[1]
        tl, gts = cache.pair(fov, 0)
        np.testing.assert_array_equal(batch.inputs[b, 0].numpy(), tl)   # crop == whole 16x16
        np.testing.assert_array_equal(batch.targets[b, k].numpy(), gts[ORGANELLES[k]])
        assert batch.mask[b].tolist() == [ORGANELLES[j] in gts for j in range(4)]
        assert not batch.targets[b, ~batch.mask[b]].any()


def test_sampler_augmentations_are_rotations_and_flips_of_the_pair(tmp_path):
    root = write_toy_studies(tmp_path, studies=1, fovs_per_study=1, size=24, z_slices=1,
                             organelles_of={0: ("nucleus",)})
    fov = load_fovs(root)[0]
    tl, gts = ImageCache().pair(fov, 0)
    views = [np.rot90(a, k) for k in range(4) for a in (tl, tl[:, ::-1])]
    sampler = BalancedSampler([fov], ImageCache(), SamplerConfig(batch_size=8, crop=24, seed=5))
    seen = set()
    for _ in range(4):
        batch = sampler.next_batch()
        for b in range(8):
            x = batch.inputs[b, 0].numpy()
            match = [i for i, v in enumerate(views) if np.array_equal(x, v)]
            assert len(match) == 1
            seen.add(match[0])
            # the target went through the same transform as the input
            gt_views = [np.rot90(a, k) for k in range(4) for a in (gts["nucleus"], gts["nucleus"][:, ::-1])]
            np.testing.assert_array_equal(batch.targets[b, 0].numpy(), gt_views[match[0]])
    assert len(seen) >= 6


def test_sampler_scale_jitter_and_small_images(tmp_path):
    root = write_toy_studies(tmp_path, studies=1, fovs_per_study=1, size=20, z_slices=1)
    fovs = load_fovs(root)
    sampler = BalancedSampler(fovs, ImageCache(), SamplerConfig(batch_size=3, crop=32,
                                                                scale_jitter=(0.7, 0.95), seed=2))
    batch = sampler.next_batch()        # images smaller than the crop are mirror-padded
    assert batch.inputs.shape == (3, 1, 32, 32) and batch.targets.shape == (3, 4, 32, 32)
    assert np.isfinite(batch.inputs.numpy()).all()
    with pytest.raises(ValueError, match="scale_jitter"):
        SamplerConfig(scale_jitter=(0.9, 0.5))


def test_sampler_state_restores_the_stream(tmp_path):
    fovs = load_fovs(write_toy_studies(tmp_path, studies=1, fovs_per_study=3, size=32, z_slices=2))
    cfg = SamplerConfig(batch_size=4, crop=16, scale_jitter=(0.7, 0.95), seed=9)
    a = BalancedSampler(fovs, ImageCache(), cfg)
    a.next_batch()
    state = a.state_dict()
    expected = [a.next_batch() for _ in range(3)]
    b = BalancedSampler(fovs, ImageCache(), cfg)
    b.load_state_dict(state)
    for want in expected:
        got = b.next_batch()
        assert all(np.array_equal(getattr(got, f).numpy(), getattr(want, f).numpy())
                   for f in ("inputs", "targets", "mask", "sampled"))


def test_tl_name_roundtrip_in_toy_studies(tmp_path):
    root = write_toy_studies(tmp_path, studies=1, fovs_per_study=1, size=16, z_slices=2, modality="PC")
    assert (root / "Study_1" / tl_file_name("1x1", "PC", 1)).is_file()
    assert read_ome_tiff(root / "Study_1" / tl_file_name("1x1", "PC", 1)).pixel_size_um == (0.1, 0.1)


def test_max_defocus_keeps_slices_near_best_focus(tmp_path):
    from preprocessing.layout import FocusRecord, write_bestz_csv
    root = write_toy_studies(tmp_path, studies=1, fovs_per_study=2, size=16, z_slices=4)
    fovs = load_fovs(root)
    # FOV 1x1 is in focus at z=3; FOV 1x2 has no record and keeps every slice
    write_bestz_csv(root / "bestz.csv", [FocusRecord(p.name, "BF", z, 3) for z, p in fovs[0].slices.items()])
    near = {f.key: f for f in load_fovs(root, max_defocus=1)}
    assert sorted(near[fovs[0].key].slices) == [2, 3]
    assert sorted(near[fovs[1].key].slices) == [0, 1, 2, 3]
    (root / "bestz.csv").unlink()
    with pytest.raises(FileNotFoundError, match="bestz.csv"):
        load_fovs(root, max_defocus=1)


def test_dataloader_workers_yield_the_sampler_stream_and_its_resume_state(tmp_path):
    """Two worker processes, a shard of stride 2 (rank 1 of 2): the batches and the state are the
    sampler's own, whatever the workers have made ahead."""
    from training.loader import BatchLoader
    fovs = load_fovs(write_toy_studies(tmp_path, studies=1, fovs_per_study=3, size=32, z_slices=2))
    cfg = SamplerConfig(batch_size=2, crop=16, seed=4, scale_jitter=(0.7, 0.95))
    direct = BalancedSampler(fovs, ImageCache(), cfg, start=1, stride=2)
    loader = BatchLoader(BalancedSampler(fovs, ImageCache(), cfg, start=1, stride=2), workers=2, prefetch=3)
    try:
        for _ in range(5):
            want, got = direct.next_batch(), loader.next_batch()
            for name in ("inputs", "targets", "mask", "sampled"):
                assert torch.equal(getattr(want, name), getattr(got, name)), name
            assert loader.state_dict() == direct.state_dict()   # not the workers', ahead
    finally:
        loader.close()
    assert direct.state_dict() == {"next_index": 11}


def test_sampler_batches_depend_on_their_number_only(tmp_path):
    """Batch n is the same from any sampler; ranks (start, stride) never share a batch."""
    fovs = load_fovs(write_toy_studies(tmp_path, studies=1, fovs_per_study=3, size=32, z_slices=2))
    cfg = SamplerConfig(batch_size=3, crop=16, seed=7)
    whole = BalancedSampler(fovs, ImageCache(), cfg)
    stream = [whole.next_batch() for _ in range(4)]
    rank1 = BalancedSampler(fovs, ImageCache(), cfg, start=1, stride=2)
    for n in (1, 3):
        assert torch.equal(rank1.next_batch().inputs, stream[n].inputs)
    assert not torch.equal(stream[0].inputs, stream[1].inputs)
    other_seed = BalancedSampler(fovs, ImageCache(), SamplerConfig(batch_size=3, crop=16, seed=8))
    assert not torch.equal(other_seed.batch(0).inputs, stream[0].inputs)
    with pytest.raises(ValueError, match="older trainer"):
        whole.load_state_dict({"rng": {}, "cursor": 3})
