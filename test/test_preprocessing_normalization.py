"""Percentile normalisation per checkpoint spec: exact mapping, inverse, flat images stay finite."""
import numpy as np
import pytest

from preprocessing.normalization import Normalisation, fit_normalisation, normalise

SPEC = {"kind": "percentile", "low": 2.0, "high": 99.8}


def test_percentiles_map_to_minus_one_and_plus_one_without_clipping():
    array = np.random.default_rng(0).gamma(2.0, 500.0, size=(120, 90)).astype(np.float32)
    out, fitted = normalise(array, SPEC)
    p2, p998 = np.percentile(array, [2.0, 99.8])
    np.testing.assert_allclose(out, (2 * (array - p2) / (p998 - p2) - 1), rtol=1e-5, atol=1e-5)
    assert out.dtype == np.float32
    assert np.isclose(np.percentile(out, 2.0), -1, atol=1e-5) and np.isclose(np.percentile(out, 99.8), 1, atol=1e-5)
    assert out.min() < -1 and out.max() > 1          # no clipping
    np.testing.assert_allclose(fitted.invert(out), array, rtol=1e-5, atol=1e-2)


def test_fixed_range_spec():
    out, fitted = normalise(np.array([[0, 32767.5, 65535]], dtype=np.float32),
                            {"kind": "range", "low": 0, "high": 65535})
    np.testing.assert_allclose(out, [[-1, 0, 1]], atol=1e-6)
    assert fitted == Normalisation(0.0, 65535.0)


@pytest.mark.parametrize("value", [0.0, 7.0, 65535.0])
def test_constant_image_maps_to_zero(value):
    array = np.full((30, 40), value, dtype=np.float32)
    out, fitted = normalise(array, SPEC)
    assert np.array_equal(out, np.zeros_like(out))
    np.testing.assert_array_equal(fitted.invert(out), array)


def test_flat_image_with_hot_pixels_uses_the_full_range():
    array = np.full((50, 50), 100.0, dtype=np.float32)
    array[0, :3] = 5000.0                          # fewer than 0.2 % of the pixels
    out, _ = normalise(array, SPEC)
    assert np.isfinite(out).all()
    assert out.min() == pytest.approx(-1) and out.max() == pytest.approx(1)


def test_empty_array_and_bad_specs():
    out, _ = normalise(np.zeros((0, 5), dtype=np.float32), SPEC)
    assert out.shape == (0, 5)
    for spec in ({"kind": "zscore", "low": 0, "high": 1}, {"kind": "percentile", "low": 50, "high": 10},
                 {"kind": "percentile"}, {"kind": "range", "low": 3, "high": 3}):
        with pytest.raises(ValueError, match="input_norm"):
            fit_normalisation(np.ones((4, 4)), spec)
