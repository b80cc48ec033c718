"""The "low-mag" profile (synthetic/profiles.py): 10x-20x objectives at coarse pixels, debris and
8-bit contrast-stretched TL (test_synthetic_profiles.py checks that lmc and new-site draw as before it)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from preprocessing.layout import index_studies
from preprocessing.ome_io import read_ome_tiff
from synthetic import SimulationConfig, profiles, sample_study, simulate_fov
from synthetic.__main__ import main as cli_main
from synthetic.camera import stretch_to_8bit
from synthetic.phantom import CellLine, make_phantom


def test_low_mag_studies_are_coarse_dry_objectives_half_of_them_8_bit():
    studies = [sample_study(SimulationConfig(seed=4, profile="low-mag"), n) for n in range(1, 81)]
    table = {(p, na) for p, _, na in profiles.LOW_MAG_ACQUISITIONS}
    assert all((round(s.pixel_size_um * 1000), s.optics.na_objective) in table for s in studies)
    assert min(s.pixel_size_um for s in studies) >= 0.3 and max(s.optics.na_objective for s in studies) <= 0.5
    eight = sum(s.tl_bits == 8 for s in studies)
    assert 25 <= eight <= 55 and {s.tl_bits for s in studies} == {8, 16}
    assert all(s.cell_line.debris_per_mm2 > 0 for s in studies)
    assert min(s.cell_line.confluence for s in studies) < 0.2   # sparse cultures too
    lmc = sample_study(SimulationConfig(seed=4, profile="lmc"), 1)
    assert lmc.tl_bits == 16 and lmc.cell_line.debris_per_mm2 == 0


def test_the_cli_writes_8_bit_tl_at_the_profile_pixel_size(tmp_path):
    config = SimulationConfig(seed=3, profile="low-mag")
    number = next(n for n in range(1, 50) if sample_study(config, n).tl_bits == 8)
    cli_main(["--out", str(tmp_path), "--studies", "1", "--seed", "3", "--first-study", str(number),
              "--fovs-per-study", "1", "--max-size", "128", "--max-slices", "3", "--profile", "low-mag", "--quiet"])
    fov = index_studies(tmp_path)[0]
    image = read_ome_tiff(next(iter(fov.slices.values())))
    assert image.array.max() == 255 and image.array.min() == 0 and image.modality in ("BF", "PC", "DIC")
    assert round(image.pixel_size_um[0] * 1000) in {p for p, _, _ in profiles.LOW_MAG_ACQUISITIONS}


def test_stretch_to_8bit_maps_each_plane_percentiles_to_0_and_255():
    ramp = np.arange(1000, 3000, dtype=np.uint16).reshape(40, 50)
    out = stretch_to_8bit(np.stack([ramp, ramp * 2]))
    assert out.dtype == np.uint16 and out.shape == (2, 40, 50)
    for plane in out:   # the same ramp scaled: the stretch removes the scale
        assert plane.min() == 0 and plane.max() == 255
        assert np.all(np.diff(plane.ravel().astype(int)) >= 0)
        assert abs(float(np.median(plane)) - 127.5) <= 1
    np.testing.assert_array_equal(out[0], out[1])


def test_debris_is_refractile_and_only_some_of_it_carries_dna():
    line = CellLine(cell_radius_um=8, confluence=0.05, nucleus_fraction=0.45)
    shape, px = (256, 256), 0.5
    plain = make_phantom(shape, px, line, np.random.default_rng(1), biology_rng=np.random.default_rng(2))
    with_debris = CellLine(**{**line.__dict__, "debris_per_mm2": 2000.0, "debris_dna_fraction": 0.0})
    dirty = make_phantom(shape, px, with_debris, np.random.default_rng(1), biology_rng=np.random.default_rng(2))
    outside = plain.labels == 0
    # The same cells (same streams), plus path difference in the medium; no DNA from DNA-free debris.
    np.testing.assert_array_equal(plain.labels, dirty.labels)
    assert (dirty.optical_path_um - plain.optical_path_um)[outside].max() > 0.1
    np.testing.assert_array_equal(plain.organelles["nucleus"], dirty.organelles["nucleus"])
    pyknotic = CellLine(**{**with_debris.__dict__, "debris_dna_fraction": 1.0})
    stained = make_phantom(shape, px, pyknotic, np.random.default_rng(1), biology_rng=np.random.default_rng(2))
    extra = (stained.organelles["nucleus"] - plain.organelles["nucleus"])[outside]
    living = float(np.median(plain.organelles["nucleus"][plain.nucleus]))
    assert extra.max() >= 1.5 > 1.5 * living   # condensed: brighter than a living nucleus
    with pytest.raises(ValueError, match="biology"):
        make_phantom(shape, px, with_debris, np.random.default_rng(1))


def test_a_field_without_cytoplasm_still_simulates():
    """A 128 px crop at 43 nm (new-site, study 3 of seed 7) lies inside a nucleus: the free
    microtubules have nowhere to start and used to raise a ValueError."""
    study = dataclasses.replace(sample_study(SimulationConfig(seed=7, profile="new-site"), 3), shape=(128, 128))
    fov = simulate_fov(study, 0, 7, max_slices=3)
    assert fov.tl.shape[1:] == (128, 128) and np.isfinite(fov.organelles["nucleus"]).all()
