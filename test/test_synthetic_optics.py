"""The simulator's physics, checked against independent expectations on small images."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import ndimage as ndi

from synthetic import SimulationConfig, sample_study, simulate_fov
from synthetic.camera import Camera, expose, illumination_field
from synthetic.fluorescence import FluorescenceChannel, blurred_density, psf_sigma_um
from synthetic.optics import TLOptics, tl_intensity
from synthetic.phantom import make_phantom

PX = 0.08


def _study(seed: int, modality: str, size: int = 192):
    study = sample_study(SimulationConfig(seed=seed, shapes=((size, size),), profile="v1"), 1)
    return dataclasses.replace(study, optics=dataclasses.replace(study.optics, modality=modality))


def _disc_phase(n: int = 256, radius_um: float = 4.0, height: float = 0.6) -> np.ndarray:
    yy, xx = np.mgrid[:n, :n] - n / 2
    r = np.hypot(yy, xx) * PX
    return (height * np.sqrt(np.clip(1 - (r / radius_um) ** 2, 0, None))).astype(np.float32)


def _contrast(images: np.ndarray) -> np.ndarray:
    return images.std(axis=(-2, -1)) / images.mean(axis=(-2, -1))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bf_contrast_grows_with_defocus(seed):
    study = _study(seed, "BF")
    phantom = make_phantom(study.shape, study.pixel_size_um, study.cell_line, np.random.default_rng(seed))
    steps = np.arange(6) * study.z_step_um
    for sign in (1, -1):
        light = tl_intensity(phantom.phase(study.optics.wavelength_um), phantom.absorption, sign * steps,
                             study.optics, study.pixel_size_um)
        c = _contrast(phantom.fov(light))
        assert c[1] > c[0]
        assert np.all(c[2:] > 1.3 * c[0]), c


def test_bf_pure_phase_object_is_nearly_invisible_in_focus():
    phase = _disc_phase()
    optics = TLOptics("BF", na_condenser=0.2)
    light = tl_intensity(phase, np.zeros_like(phase), [0.0, 1.0, 2.0], optics, PX)
    c = _contrast(light)
    assert c[0] < 0.2 * c[2] and c[0] < 0.02


@pytest.mark.parametrize("angle_deg", [45.0, 135.0, 300.0])
def test_dic_is_antisymmetric_across_edges_along_the_shear(angle_deg):
    n = 256
    optics = TLOptics("DIC", dic_shear_angle=np.deg2rad(angle_deg), na_condenser=0.6)
    relief = tl_intensity(_disc_phase(n), np.zeros((n, n), np.float32), [0.0], optics, PX)[0] - 1
    t = np.arange(-70, 71)
    along = np.array([np.sin(np.deg2rad(angle_deg)), np.cos(np.deg2rad(angle_deg))])
    across = np.array([along[1], -along[0]])

    def profile(d):
        return relief[np.rint(n / 2 + t * d[0]).astype(int), np.rint(n / 2 + t * d[1]).astype(int)]

    p = profile(along)
    assert np.corrcoef(p, p[::-1])[0, 1] < -0.95           # bright on one edge, dark on the other
    assert np.abs(p).max() > 0.05
    assert np.abs(profile(across)).max() < 0.2 * np.abs(p).max()  # no relief perpendicular to the shear


def test_pc_dense_object_dark_with_bright_halo():
    n = 256
    light = tl_intensity(_disc_phase(n), np.zeros((n, n), np.float32), [0.0], TLOptics("PC"), PX)[0]
    background = np.median(light[:20])
    centre = light[n // 2, n // 2]
    just_outside = light[n // 2, n // 2 + int(4.6 / PX)]
    assert centre < 0.85 * background
    assert just_outside > 1.15 * background


def _nucleus_contrast(image: np.ndarray, nucleus: np.ndarray, cytoplasm: np.ndarray) -> float:
    return abs(image[nucleus].mean() - image[cytoplasm].mean()) / image[cytoplasm].mean()


@pytest.mark.parametrize("modality", ["BF", "PC", "DIC"])
def test_nucleus_is_weaker_in_tl_than_in_its_fluorescence(modality):
    study = dataclasses.replace(_study(4, modality, 256), organelles=("nucleus",))
    fov = simulate_fov(study, 0, 4, defocus_um=[0.0], keep_phantom=True)
    ph = fov.phantom
    nucleus = ndi.binary_erosion(ph.fov(ph.nucleus), iterations=4)
    cell = ph.fov(ph.labels > 0)
    cytoplasm = ndi.binary_erosion(cell & ~ndi.binary_dilation(ph.fov(ph.nucleus), iterations=6), iterations=3)
    assert nucleus.sum() > 200 and cytoplasm.sum() > 200
    tl = fov.tl[0].astype(np.float64) - study.tl_camera.offset
    fl = fov.organelles["nucleus"].astype(np.float64) - study.channels["nucleus"].camera.offset
    tl_c, fl_c = _nucleus_contrast(tl, nucleus, cytoplasm), _nucleus_contrast(fl, nucleus, cytoplasm)
    assert tl_c < 0.25 * fl_c, (tl_c, fl_c)


def test_fluorescence_psf_width_matches_airy_approximation():
    n = 128
    density = np.zeros((n, n), np.float32)
    density[n // 2, n // 2] = 1
    channel = FluorescenceChannel("mitochondria", na=1.2, haze=0.0)
    image = blurred_density(density, channel, PX)
    yy, xx = np.mgrid[:n, :n] - n // 2
    sigma_px = np.sqrt((image * (yy ** 2 + xx ** 2)).sum() / image.sum() / 2)
    assert sigma_px * PX == pytest.approx(psf_sigma_um("mitochondria", 1.2), rel=0.03)
    assert image.sum() == pytest.approx(1.0, rel=1e-4)


@pytest.mark.parametrize("exact", [True, False])
def test_camera_noise_is_shot_plus_read(exact):
    camera = Camera(photons=1.0, gain=2.0, offset=100.0, read_noise=1.5)
    electrons = 12.0 if exact else 4000.0
    counts = expose(np.full((256, 256), electrons, np.float32), camera, np.random.default_rng(0),
                    exact_poisson=exact).astype(np.float64)
    assert (counts.mean() - 100) / 2 == pytest.approx(electrons, rel=0.02)
    assert counts.var() / 4 == pytest.approx(electrons + 1.5 ** 2 + 1 / 12 / 4, rel=0.06)


def test_illumination_field_is_smooth_and_centred_on_one():
    field = illumination_field((100, 140), 0.3, np.random.default_rng(0))
    assert field.mean() == pytest.approx(1.0, abs=1e-5)
    assert 0.6 < field.min() < field.max() < 1.4
    assert np.abs(np.diff(field, axis=1)).max() < 0.02


def test_organelles_sit_where_they_belong():
    study = _study(6, "BF", 256)
    ph = make_phantom(study.shape, study.pixel_size_um, study.cell_line, np.random.default_rng(6))
    outside = ph.labels == 0
    far_outside = ndi.binary_erosion(outside, iterations=8)
    assert far_outside.any()
    for name, density in ph.organelles.items():
        assert density[far_outside].max() < 0.02 * density.max(), name
    nucleus = ph.nucleus
    core = ndi.binary_erosion(nucleus, iterations=8)
    assert ph.organelles["nucleus"][~ndi.binary_dilation(nucleus, iterations=3)].max() < 0.05
    assert ph.organelles["mitochondria"][core].mean() < 0.1 * ph.organelles["mitochondria"][~nucleus & ~outside].mean()
    # Microtubules: densest near the centrosomes they grow from.
    cy, cx = np.rint(ph.centrosomes[0]).astype(int)
    tub = ph.organelles["tubulin"]
    if 10 <= cy < tub.shape[0] - 10 and 10 <= cx < tub.shape[1] - 10:
        assert tub[cy - 5:cy + 6, cx - 5:cx + 6].mean() > 3 * tub[ph.labels == ph.labels[cy, cx]].mean()
    # The optical path difference is the cells' alone: zero in the empty medium.
    assert ph.optical_path_um.max() > 0 and ph.optical_path_um[far_outside].max() < 1e-3


def _direct_intensity(phase, absorption, z, optics: TLOptics, px):
    """The textbook computation on the full grid, step by step, for one defocus (no shortcuts)."""
    h, w = phase.shape
    fy = np.fft.fftfreq(h, px)[:, None]
    fx = np.fft.fftfreq(w, px)[None, :]
    f2 = fy ** 2 + fx ** 2
    k = optics.n_medium / optics.wavelength_um
    cutoff = min(optics.na_objective, 0.98 * optics.n_medium) / optics.wavelength_um
    pupil = np.clip((cutoff - np.sqrt(f2)) / (0.05 * cutoff) + 0.5, 0, 1)
    defocus = np.exp(1j * 2 * np.pi * z * (np.sqrt(np.clip(k * k - f2, 0, None)) - k))
    spectrum = np.fft.fft2(np.exp(-absorption + 1j * phase)) * pupil * defocus
    if optics.modality == "PC":
        ring = np.exp(-f2 / (2 * optics.pc_ring_cutoff ** 2))
        spectrum *= 1 + (optics.pc_ring_amplitude * np.exp(1j * optics.pc_ring_phase) - 1) * ring
    intensity = np.abs(np.fft.ifft2(spectrum)) ** 2
    sigma = abs(z) * optics.na_condenser / (2 * optics.n_medium)
    blurred = np.fft.ifft2(np.fft.fft2(intensity) * np.exp(-2 * np.pi ** 2 * sigma ** 2 * f2)).real
    return blurred / (optics.pc_ring_amplitude ** 2 if optics.modality == "PC" else 1.0)


@pytest.mark.parametrize("modality, na", [("BF", 0.5), ("PC", 0.75), ("BF", 1.3)])
def test_band_limited_grid_matches_the_direct_full_grid_computation(modality, na):
    """tl_intensity works on a coarser grid that just holds the intensity's band; same images."""
    rng = np.random.default_rng(3)
    h, w = 120, 150
    phase = ndi.gaussian_filter(rng.standard_normal((h, w)), 2.0).astype(np.float32) * 3
    absorption = np.abs(ndi.gaussian_filter(rng.standard_normal((h, w)), 3.0)).astype(np.float32) * 0.2
    optics = TLOptics(modality, na_objective=na, na_condenser=0.4)
    defocus = [-1.5, 0.0, 0.7]
    fast = tl_intensity(phase, absorption, defocus, optics, PX)
    for image, z in zip(fast, defocus):
        direct = _direct_intensity(phase.astype(np.float64), absorption.astype(np.float64), z, optics, PX)
        assert np.abs(image - direct).max() < 2e-5, (z, np.abs(image - direct).max())


def test_thread_count_does_not_change_a_field_of_view(monkeypatch):
    study = dataclasses.replace(_study(4, "DIC", size=128), organelles=("nucleus", "mitochondria"))
    many = simulate_fov(study, 0, 11)
    monkeypatch.setattr("synthetic.parallel.os.cpu_count", lambda: 1)
    one = simulate_fov(study, 0, 11)
    assert np.array_equal(many.tl, one.tl)
    assert all(np.array_equal(many.organelles[o], one.organelles[o]) for o in many.organelles)
