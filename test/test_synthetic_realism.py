"""The realism statistics measure what they say, on images whose answer is known, and the report
runs on simulated fields (and the real references when ../shared/real is there)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from synthetic import realism, realism_report


def _disks(shape, centres, radius, brightness, background=10.0):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    image = np.full(shape, background)
    for (cy, cx), value in zip(centres, brightness):
        image[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2] = background + value
    return image


def test_disks_give_their_diameter_solidity_and_brightness_spread():
    centres = [(40, 40), (40, 120), (120, 40), (120, 120)]
    image = _disks((160, 160), centres, 15, [100, 100, 100, 100])
    stats = realism.nucleus_statistics(image, pixel_size_um=0.2)
    assert stats["nuclei"] == 4
    assert stats["diameter_px"] == pytest.approx(30, rel=0.05)
    assert stats["diameter_um"] == pytest.approx(6.0, rel=0.05)
    assert stats["solidity"] > 0.95
    assert stats["brightness_cv"] == pytest.approx(0, abs=1e-6)
    varied = realism.nucleus_statistics(_disks((160, 160), centres, 15, [60, 80, 120, 140]), None)
    values = np.array([60, 80, 120, 140.0])
    assert varied["brightness_cv"] == pytest.approx(values.std() / values.mean(), rel=0.05)
    assert math.isnan(varied["diameter_um"]) and math.isnan(varied["slope_texture"])


def test_a_lobed_nucleus_is_less_solid_than_a_round_one():
    yy, xx = np.mgrid[0:120, 0:120]
    theta = np.arctan2(yy - 60, xx - 60)
    lobed = np.where(np.hypot(yy - 60, xx - 60) <= 30 + 12 * np.cos(4 * theta), 200.0, 10.0)
    assert realism.nucleus_statistics(lobed, None)["solidity"] < 0.85


def test_spectrum_slope_of_power_law_noise():
    rng = np.random.default_rng(0)
    n = 512
    fy, fx = np.meshgrid(np.fft.fftfreq(n), np.fft.fftfreq(n), indexing="ij")
    radius = np.hypot(fy, fx)
    radius[0, 0] = 1.0
    for beta in (2.0, 4.0):
        amplitude = radius ** (-beta / 2)
        field = np.real(np.fft.ifft2(amplitude * np.exp(2j * np.pi * rng.random((n, n)))))
        slope = realism.spectrum_slope(field, pixel_size_um=0.1, band_um=(0.5, 2.0))
        assert slope == pytest.approx(-beta, abs=0.35)
    # a band the pixels cannot resolve, or longer than the image, is undefined
    assert math.isnan(realism.spectrum_slope(field, pixel_size_um=0.4, band_um=(0.5, 1.4)))
    assert math.isnan(realism.spectrum_slope(field[:32, :32], pixel_size_um=0.1, band_um=(2.0, 8.0)))


def test_noise_fraction_of_white_noise_on_a_ramp():
    rng = np.random.default_rng(1)
    ramp = np.tile(np.linspace(0, 1000, 256), (256, 1))
    image = ramp + rng.normal(0, 20, ramp.shape)
    low, high = np.percentile(image, [2, 99.8])
    assert realism.noise_fraction(image) == pytest.approx(20 / (high - low), rel=0.1)


def test_empty_and_constant_images_give_nan_not_errors():
    stats = realism.nucleus_statistics(np.full((64, 64), 7.0), 0.1)
    assert stats["nuclei"] == 0 and math.isnan(stats["diameter_px"]) and math.isnan(stats["brightness_cv"])
    assert math.isnan(realism.noise_fraction(np.zeros((16, 16))))


def test_the_report_runs_on_simulated_fields_and_names_what_is_missing(tmp_path, capsys):
    out = tmp_path / "realism.json"
    assert realism_report.main(["--fields", "2", "--real", str(tmp_path / "nowhere"), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| diameter_um |" in text and "| brightness_cv |" in text and "| noise_fraction |" in text
    assert "Not found under" in text and "stardist DSB" in text
    import json
    data = json.loads(out.read_text())
    assert data["profiles"] == ["v1", "lmc"] and data["seed"] == realism_report.REALISM_SEED
    assert all(len(data["simulated_nuclei"][p]) == 2 for p in ("v1", "lmc"))
    assert "| statistic | simulated v1 | simulated lmc |" in text


def test_the_report_reads_the_real_references_when_present(capsys):
    if not (realism_report.DEFAULT_REAL / "stardist_nuclei").is_dir():
        pytest.skip(f"no real references at {realism_report.DEFAULT_REAL}")
    _, data = realism_report.report(1, realism_report.DEFAULT_REAL)
    assert set(data["real_nuclei"]) == set(realism_report.NUCLEUS_REFERENCES)
    for stats in data["real_nuclei"].values():
        assert stats["nuclei"] >= 5 and 0.8 < stats["solidity"] <= 1.0


def test_the_real_study_mix_matches_the_organizers_facts():
    from synthetic.acquisitions import REAL_ACQUISITIONS
    from synthetic.study_profile import real_profile
    lists = realism_report.DEFAULT_REAL / "lmc_training_doc" / "FileList"
    if not lists.is_dir():
        pytest.skip(f"no file lists at {lists}")
    mix = real_profile(lists)
    assert mix.studies == 30 and sum(mix.modality_studies.values()) == 30       # one modality per study
    expected = {m: sum(a.modality == m for a in REAL_ACQUISITIONS) for m in ("BF", "PC", "DIC")}
    assert mix.modality_studies == expected
    assert max(mix.slices_per_field) == 33 and mix.organelle_studies["actin"] == 3
    assert len(mix.slices_per_field) == sum(mix.label_sets.values()) == 2_574       # fields of view


def test_the_simulated_study_mix_is_drawn_from_the_sampler():
    from synthetic.study_profile import simulated_profile
    mix = simulated_profile(12, seed=41)
    assert mix.studies == 12 == sum(mix.modality_studies.values()) == sum(mix.label_sets.values())
    assert all(1 <= n <= 11 for n in mix.slices_per_field)
    assert all(65 <= p <= 110 for p in mix.pixel_size_nm)
    assert set(mix.rows()) >= {"studies", "BF / PC / DIC studies", "z-slices per field (median, max)"}
