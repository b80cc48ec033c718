"""The simulator's output: layout, names, CSVs, OME metadata, label rules and determinism."""
from __future__ import annotations

import collections

import numpy as np
import pytest
import SimpleITK as sitk
import tifffile
import xmltodict

from preprocessing.layout import GT_NAME, TL_NAME, index_studies, read_bestz_csv
from preprocessing.ome_io import MODALITIES, ORGANELLES, read_ome_tiff
from synthetic import SimulationConfig, choose_organelles, generate_studies, image_id, sample_study
from synthetic.__main__ import main as cli_main
from synthetic.fov import draw_focus

SMALL = ((96, 96), (80, 112))  # tiny square and non-square images keep the suite fast


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("syn")
    config = SimulationConfig(studies=3, seed=11, fovs_per_study=2, max_slices=4, shapes=SMALL, quiet=True,
                              profile="v1")  # v1's ranges are asserted below (lmc: test_synthetic_profiles.py)
    return out, config, generate_studies(out, config)


def test_layout_names_and_csv(written):
    out, config, fovs = written
    studies = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert studies == ["Study_1", "Study_2", "Study_3"]
    root = read_bestz_csv(out / "bestz.csv")
    all_tl = sorted(p.name for p in out.glob("Study_*/*") if TL_NAME.match(p.name))
    assert sorted(root) == all_tl
    indexed = index_studies(out)
    assert [f.key for f in indexed] == [f.key for f in fovs]
    assert len({f.image_id for f in indexed}) == len(indexed) == 3 * 2
    for fov in indexed:
        per_study = read_bestz_csv(out / fov.study / "bestz.csv")
        zs = sorted(fov.slices)
        assert zs == list(range(len(zs))) and 1 <= len(zs) <= config.max_slices
        best = {root[p.name].best_z for p in fov.slices.values()}
        assert len(best) == 1 and 0 <= best.pop() < len(zs)
        for z, path in fov.slices.items():
            rec = root[path.name]
            assert per_study[path.name] == rec
            assert (rec.modality, rec.image_z) == (fov.modality, z)
        study = sample_study(config, int(fov.study.split("_")[1]))
        assert set(fov.ground_truth) == set(study.organelles)
        assert fov.modality == study.optics.modality
    for path in out.glob("Study_*/*.tiff"):
        assert TL_NAME.match(path.name) or GT_NAME.match(path.name), path.name


def test_metadata_readable_everywhere(written):
    out, config, fovs = written
    for fov in fovs:
        study = sample_study(config, int(fov.study.split("_")[1]))
        h, w = study.shape
        paths = [(p, fov.modality) for p in fov.slices.values()]
        paths += [(p, p.name.split("_")[-1].split(".")[0]) for p in fov.ground_truth.values()]
        for path, channel in paths:
            with tifffile.TiffFile(path) as tif:
                data = tif.series[0].asarray()
                pixels = xmltodict.parse(tif.ome_metadata)["OME"]["Image"]["Pixels"]
            assert data.dtype == np.uint16 and data.size == h * w
            assert (int(pixels["@SizeY"]), int(pixels["@SizeX"])) == (h, w)
            assert pixels["@Type"] == "uint16"
            assert pixels["Channel"]["@Name"] == channel
            assert float(pixels["@PhysicalSizeX"]) == pytest.approx(study.pixel_size_um)
            assert float(pixels["@PhysicalSizeY"]) == pytest.approx(study.pixel_size_um)
            assert 0.065 <= study.pixel_size_um <= 0.110
            itk = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
            assert itk.squeeze().shape == (h, w)
            np.testing.assert_array_equal(itk.squeeze(), data.squeeze())
            image = read_ome_tiff(path)
            assert image.pixel_size_um == pytest.approx((study.pixel_size_um,) * 2)
            if channel in MODALITIES:
                assert image.modality == channel
    shapes = {sample_study(config, n).shape for n in (1, 2, 3)}
    assert shapes <= set(SMALL)


def test_images_are_not_flat(written):
    _, _, fovs = written
    fov = fovs[0]
    for path in list(fov.slices.values()) + list(fov.ground_truth.values()):
        array = read_ome_tiff(path).array
        assert array.std() > 0.5, path.name
        assert 0 < array.min() and array.max() < 65535, path.name  # offset, no saturation


def test_same_seed_same_bytes_other_seed_differs(tmp_path, written):
    out, config, fovs = written
    again = generate_studies(tmp_path / "again", SimulationConfig(studies=1, seed=11, fovs_per_study=2,
                                                                  max_slices=4, shapes=SMALL, quiet=True,
                                                                  profile="v1"))
    for a, b in zip(again, fovs):
        assert a.slices.keys() == b.slices.keys() and a.ground_truth.keys() == b.ground_truth.keys()
        for z in a.slices:
            np.testing.assert_array_equal(tifffile.imread(a.slices[z]), tifffile.imread(b.slices[z]))
        for o in a.ground_truth:
            np.testing.assert_array_equal(tifffile.imread(a.ground_truth[o]), tifffile.imread(b.ground_truth[o]))
    assert (tmp_path / "again/Study_1/bestz.csv").read_text() == (out / "Study_1/bestz.csv").read_text()
    other = generate_studies(tmp_path / "s12", SimulationConfig(studies=1, seed=12, fovs_per_study=1,
                                                                shapes=((96, 96),), quiet=True))
    mine = tifffile.imread(fovs[0].slices[0])
    theirs = tifffile.imread(other[0].slices[0])
    assert mine.shape != theirs.shape or not np.array_equal(mine, theirs)


def test_cli_max_size_crops_and_keeps_pixel_size(tmp_path):
    cli_main(["--out", str(tmp_path), "--studies", "2", "--seed", "3", "--fovs-per-study", "1",
              "--max-size", "96", "--max-slices", "2", "--modalities", "PC", "--quiet", "--profile", "v1"])
    fovs = index_studies(tmp_path)
    assert {f.modality for f in fovs} == {"PC"}
    for fov in fovs:
        image = read_ome_tiff(next(iter(fov.slices.values())))
        assert max(image.shape) <= 96
        assert 0.065 <= image.pixel_size_um[0] <= 0.110


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli_main(["--out", str(tmp_path), "--studies", "0"])
    assert "studies" in capsys.readouterr().err


def test_partial_label_rules_over_many_studies():
    config = SimulationConfig(seed=5, profile="v1")
    studies = [sample_study(config, n) for n in range(1, 401)]
    counts = collections.Counter(o for s in studies for o in s.organelles)
    for s in studies:
        assert 1 <= len(s.organelles) <= 3
        assert list(s.organelles) == [o for o in ORGANELLES if o in s.organelles]
        assert not (s.optics.modality == "DIC" and "actin" in s.organelles)
        assert 0.065 <= s.pixel_size_um <= 0.110
        assert 512 <= min(s.shape) and max(s.shape) <= 2048
    assert counts["nucleus"] > 0.75 * len(studies)
    assert counts["mitochondria"] > counts["tubulin"] > counts["actin"] > 0
    assert counts["actin"] < 0.15 * len(studies)
    assert {s.optics.modality for s in studies} == set(MODALITIES)
    assert any(s.shape[0] != s.shape[1] for s in studies)
    assert len({round(np.rad2deg(s.optics.dic_shear_angle)) for s in studies if s.optics.modality == "DIC"}) > 5


def test_choose_organelles_never_all_four():
    rng = np.random.default_rng(0)
    for _ in range(2000):
        modality = MODALITIES[int(rng.integers(3))]
        chosen = choose_organelles(modality, rng)
        assert 1 <= len(chosen) <= 3 and (modality != "DIC" or "actin" not in chosen)


def test_focus_draws_cover_deviations_zero_to_five():
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(300):
        best, defocus = draw_focus(11, 0.5, rng)
        assert 0 <= best < len(defocus) <= 11
        assert abs(defocus[best]) <= 0.3 * 0.5 + 1e-6  # the best slice is the one nearest focus
        assert np.argmin(np.abs(defocus)) == best
        seen |= set(np.abs(np.arange(len(defocus)) - best).tolist())
    assert set(range(6)) <= seen
    assert draw_focus(1, 0.5, rng)[0] == 0


def test_image_ids_unique_and_digits():
    ids = {image_id(s, f) for s in range(1, 120) for f in range(0, 30)}
    assert len(ids) == 119 * 30 and all(i.isdigit() for i in ids)
    with pytest.raises(ValueError):
        image_id(1, 10000)


def test_montage_png(tmp_path):
    import matplotlib.image as mpimg

    from synthetic.montage import montage_fovs, render

    fovs = montage_fovs(seed=2, size=96, deviation=3)
    assert set(fovs) == set(MODALITIES)
    assert set(fovs["BF"].organelles) == set(ORGANELLES)
    for fov in fovs.values():
        assert fov.tl.shape == (2, 96, 96) and fov.best_z == 0
        assert list(fov.deviations) == [0, 3]
    path = render(tmp_path / "m.png", seed=2, size=96, deviation=3)
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 500
    assert image[..., :3].std() > 0.05
