"""Simulator profiles (synthetic/profiles.py): "v1" stays bit for bit what every existing table was
made with; "lmc" follows the 30 real training studies; "new-site" lies outside them."""
from __future__ import annotations

import collections
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from preprocessing.layout import index_studies
from preprocessing.ome_io import MODALITIES, ORGANELLES, read_ome_tiff
from synthetic import SimulationConfig, profiles, sample_study, simulate_fov
from synthetic.__main__ import main as cli_main
from synthetic.acquisitions import REAL_ACQUISITIONS
from synthetic.fov import draw_study_focus
from synthetic.realism import nucleus_statistics

# What three small fields of each profile look like, stored as exact study facts and as 16x16
# block means of every TL slice and organelle (test/data/simulator_reference.npz). The v1 fields
# are those of main at f468ecd, before profiles existed; lmc and new-site those of main at ee81eae,
# before low-mag and debris existed (both checked there bit for bit by sha256). If a profile's
# random streams change, the committed held-out sets, the benchmark's sets and the shipped weights'
# training data no longer regenerate, and every block moves by a good part of the image's range.
# The pixels are not compared bit for bit: a sha256 of them that held on earlier machines fails on
# an AVX2-only one for the same code, most likely because numpy picks its float32 sin/cos/exp by
# the CPU's SIMD features (AVX-512 or AVX2), which differ in the last bits.
REFERENCE = Path(__file__).parent / "data" / "simulator_reference.npz"
REFERENCE_PROFILES = ("v1", "lmc", "new-site")
BLOCK = 16


def _blocks(array: np.ndarray) -> np.ndarray:
    a = np.asarray(array, np.float64)
    h, w = a.shape[-2] // BLOCK, a.shape[-1] // BLOCK
    return a[..., :h * BLOCK, :w * BLOCK].reshape(a.shape[:-2] + (h, BLOCK, w, BLOCK)).mean(axis=(-3, -1))


def _field(profile: str, number: int, seed: int = 123):
    """Study `number` of (seed, profile) and its first small field, every organelle drawn."""
    study = sample_study(SimulationConfig(seed=seed, shapes=((128, 160),), profile=profile), number)
    return study, simulate_fov(study, 0, 123, max_slices=4, organelles=ORGANELLES)


def _fields(profile: str) -> dict[str, np.ndarray]:
    """Study facts (as text) and block means of three small fields of `profile`."""
    out = {}
    for number in (1, 2, 3):
        study, sim = _field(profile, number)
        out[f"{number}/facts"] = np.array(
            f"{study.modality} {study.organelles} {study.pixel_size_um} {study.z_step_um} {study.n_fovs} "
            f"{sim.best_z} {sim.defocus_um.tolist()}")
        out[f"{number}/tl"] = _blocks(sim.tl)
        for organelle in ORGANELLES:
            out[f"{number}/{organelle}"] = _blocks(sim.organelles[organelle])
    return out


def write_reference() -> None:
    """Rewrite the reference: only after a deliberate change of what a profile draws."""
    REFERENCE.parent.mkdir(exist_ok=True)
    np.savez_compressed(REFERENCE, **{f"{p}/{k}": v for p in REFERENCE_PROFILES for k, v in _fields(p).items()})


def _assert_draws_as_reference(profile: str) -> None:
    stored = np.load(REFERENCE)
    now = _fields(profile)
    assert sorted(now) == sorted(k.split("/", 1)[1] for k in stored.files if k.startswith(profile + "/"))
    for key, value in now.items():
        ref = stored[f"{profile}/{key}"]
        if value.dtype.kind == "U":
            assert str(value) == str(ref), f"{profile} {key}"
        else:
            scale = max(float(np.abs(ref).max()), 1e-12)
            assert np.abs(value - ref).max() <= 1e-3 * scale, f"{profile} {key}"


def test_profile_v1_draws_the_simulator_before_profiles():
    _assert_draws_as_reference("v1")


def test_lmc_and_new_site_draw_as_before_low_mag_existed():
    _assert_draws_as_reference("lmc")
    _assert_draws_as_reference("new-site")


def test_the_reference_comparison_catches_a_changed_stream():
    """Another seed is another draw: the tolerance must not let it through."""
    stored = np.load(REFERENCE)
    _, sim = _field("lmc", 1, seed=124)
    ref = stored["lmc/1/nucleus"]
    assert np.abs(_blocks(sim.organelles["nucleus"]) - ref).max() > 0.05 * np.abs(ref).max()


REAL = Path(__file__).resolve().parents[2] / "shared" / "real"
FILE_LISTS = REAL / "lmc_training_doc" / "FileList"


def test_the_real_marginals_in_the_code_match_the_organizers_file_lists():
    if not FILE_LISTS.is_dir():
        pytest.skip(f"no file lists at {FILE_LISTS}")
    from synthetic.study_profile import _GT, _ORGANELLE, real_profile
    mix = real_profile(FILE_LISTS)
    assert collections.Counter(mix.slices_per_field) == profiles.REAL_SLICES_PER_FIELD
    for tsv in FILE_LISTS.glob("Study*.tsv"):
        labels = {_ORGANELLE[m["organelle"].lower()] for name in tsv.read_text().split() if (m := _GT.match(name))}
        assert set(profiles.REAL_LABELS[int(tsv.stem.removeprefix("Study"))]) == labels, tsv.name
    assert set(profiles.REAL_LABELS) == {a.study for a in REAL_ACQUISITIONS}


def _shares(counter, total):
    return {k: v / total for k, v in counter.items()}


def test_lmc_study_marginals_follow_the_real_studies():
    config = SimulationConfig(seed=7, profile="lmc")
    studies = [sample_study(config, n) for n in range(1, 301)]
    modality = collections.Counter(s.modality for s in studies)
    real_modality = collections.Counter(a.modality for a in REAL_ACQUISITIONS)
    for m in MODALITIES:
        assert modality[m] / 300 == pytest.approx(real_modality[m] / 30, abs=0.07), m
    organelle = collections.Counter(o for s in studies for o in s.organelles)
    real_organelle = collections.Counter(o for labels in profiles.REAL_LABELS.values() for o in labels)
    for o in ORGANELLES:
        assert organelle[o] / 300 == pytest.approx(real_organelle[o] / 30, abs=0.07), o
    acquisitions = {(a.modality, a.pixel_size_nm / 1000, a.na) for a in REAL_ACQUISITIONS}
    for s in studies:
        assert (s.modality, s.pixel_size_um, s.optics.na_objective) in acquisitions   # a real acquisition
        assert not (s.modality == "DIC" and "actin" in s.organelles)
        assert s.optics.na_condenser < s.optics.na_objective and s.profile == "lmc"
    assert {round(s.pixel_size_um * 1000) for s in studies} == {round(a.pixel_size_nm) for a in REAL_ACQUISITIONS}


def test_lmc_slices_per_field_follow_the_real_fields_and_the_cap():
    rng = np.random.default_rng(0)
    counts = [profiles.draw_real_slices(None, rng) for _ in range(3000)]
    assert np.median(counts) == 21 and max(counts) <= 33
    real_total = sum(profiles.REAL_SLICES_PER_FIELD.values())
    assert np.mean(np.array(counts) == 21) == pytest.approx(profiles.REAL_SLICES_PER_FIELD[21] / real_total, abs=0.04)
    assert max(profiles.draw_real_slices(11, rng) for _ in range(300)) == 11
    study = sample_study(SimulationConfig(seed=3, profile="lmc"), 1)
    for cap in (None, 5):
        best, defocus = draw_study_focus(study, cap, rng)
        assert 0 <= best < len(defocus) <= (cap or 33) and np.argmin(np.abs(defocus)) == best


def test_a_profile_is_its_own_stream_and_the_cli_takes_it(tmp_path):
    v1, lmc = (sample_study(SimulationConfig(seed=5, profile=p), 2) for p in ("v1", "lmc"))
    assert (v1.profile, lmc.profile) == ("v1", "lmc") and v1.cell_line != lmc.cell_line
    assert SimulationConfig().profile == "lmc"
    with pytest.raises(ValueError, match="profile"):
        SimulationConfig(profile="v2")
    cli_main(["--out", str(tmp_path), "--studies", "1", "--seed", "3", "--fovs-per-study", "1", "--max-size", "96",
              "--max-slices", "3", "--profile", "new-site", "--quiet"])
    fov = index_studies(tmp_path)[0]
    image = read_ome_tiff(next(iter(fov.slices.values())))
    assert 1 <= len(fov.slices) <= 3 and image.shape == (96, 96)
    assert round(image.pixel_size_um[0] * 1000) in {p for p, _, _ in profiles.NEW_SITE_ACQUISITIONS}


def test_new_site_acquisitions_lie_outside_the_real_ones():
    real = {(round(a.pixel_size_nm), a.na) for a in REAL_ACQUISITIONS}
    studies = [sample_study(SimulationConfig(seed=9, profile="new-site"), n) for n in range(1, 61)]
    assert all((round(s.pixel_size_um * 1000), s.optics.na_objective) not in real for s in studies)
    assert {round(s.pixel_size_um * 1000) for s in studies} == {p for p, _, _ in profiles.NEW_SITE_ACQUISITIONS}
    assert all(s.tl_camera.read_noise >= 8 for s in studies)


# Per-statistic realism: lmc nuclei lie inside the real references' spread (synthetic/README.md,
# realism report), measured as the report measures them. Small fields (512 px) keep this fast; at
# the 162 nm pixels of the real 40x studies (6, 8, 9) such a field holds several whole nuclei.
@pytest.fixture(scope="module")
def lmc_nuclei():
    config = SimulationConfig(seed=41, max_size=512, profile="lmc", modalities=("BF",))
    stats = []
    for number in range(801, 809):
        study = sample_study(config, number)
        study = dataclasses.replace(study, organelles=("nucleus",), pixel_size_um=0.162)
        sim = simulate_fov(study, 0, 41, defocus_um=[0.0], best_z=0)
        stats.append(nucleus_statistics(sim.organelles["nucleus"], study.pixel_size_um))
    return stats


def _median(stats, name):
    values = [s[name] for s in stats if np.isfinite(s[name])]
    assert len(values) >= 4, name
    return float(np.median(values))


def test_lmc_nucleus_diameter_is_the_real_one(lmc_nuclei):
    assert 10 <= _median(lmc_nuclei, "diameter_um") <= 18        # references 15-16; v1 7.9


def test_lmc_nuclei_differ_in_brightness_as_real_ones(lmc_nuclei):
    assert 0.12 <= _median(lmc_nuclei, "brightness_cv") <= 0.4    # references 0.17-0.34; v1 0.05


def test_lmc_nucleus_outlines_are_as_irregular_as_real_ones(lmc_nuclei):
    assert 0.91 <= _median(lmc_nuclei, "solidity") <= 0.975       # references 0.94-0.97


def test_lmc_chromatin_spectrum_is_shallower_than_v1s(lmc_nuclei):
    assert -5 <= _median(lmc_nuclei, "slope_texture") <= -2.5     # v1 -6.5


def test_lmc_nuclei_have_mitotic_figures_and_stay_inside_their_cells():
    from synthetic.phantom import make_phantom
    study = sample_study(SimulationConfig(seed=2, profile="lmc", shapes=((512, 512),)), 1)
    line = dataclasses.replace(study.cell_line, mitotic_fraction=0.5, confluence=0.9)
    phantom = make_phantom((512, 512), 0.162, line, np.random.default_rng(0),
                           biology_rng=np.random.default_rng(1))
    assert np.all(phantom.labels[phantom.nucleus] > 0)           # every nucleus pixel lies in a cell
    dna = phantom.organelles["nucleus"]
    peaks = [dna[phantom.labels == k].max() for k in np.unique(phantom.labels[phantom.nucleus])]
    assert max(peaks) > 1.8 * np.median(peaks)                   # condensed, bright mitotic chromatin
