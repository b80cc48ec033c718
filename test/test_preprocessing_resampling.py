"""Resampling by physical pixel size: identity when sizes agree or are unknown, exact shapes back."""
import numpy as np
import pytest
import torch

from preprocessing.resampling import resize, scale_factors, scaled_shape, to_model_grid, to_shape


def test_identity_when_unknown_or_equal():
    array = np.random.default_rng(0).random((37, 53), dtype=np.float32)
    assert scale_factors(None, 0.1) is None and scale_factors((0.1, 0.1), None) is None
    assert scale_factors((0.1, 0.1005), 0.1) is None      # within 1 %
    assert to_model_grid(array, None, 0.1) is array
    assert to_model_grid(array, (0.1, 0.1), 0.1) is array
    assert to_shape(array, (37, 53)) is array


def test_factors_and_shapes_follow_physical_size():
    assert scale_factors((0.065, 0.11), 0.1) == pytest.approx((0.65, 1.1))
    assert scaled_shape((2048, 966), (0.65, 1.1)) == (1331, 1063)
    assert scaled_shape((10, 10), (0.01, 0.01)) == (1, 1)         # never an empty axis
    out = to_model_grid(np.zeros((200, 100), np.float32), (0.065, 0.065), 0.1)
    assert out.shape == (130, 65)


@pytest.mark.parametrize("shape,pixel", [((200, 160), 0.065), ((97, 131), 0.11), ((10, 10), 0.2)])
def test_round_trip_returns_exact_shape_and_keeps_smooth_content(shape, pixel):
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]].astype(np.float32)
    array = np.sin(yy / 17) + np.cos(xx / 23)
    small = to_model_grid(array, (pixel, pixel), 0.1)
    back = to_shape(small, shape)
    assert back.shape == shape and back.dtype == np.float32
    if min(shape) > 20:   # a smooth image survives the trip away from the borders
        assert np.abs(back - array)[3:-3, 3:-3].max() < 0.02


def test_resize_keeps_channels_and_tensor_type_and_constant_values():
    x = torch.full((3, 40, 30), 2.5)
    y = resize(x, (17, 61))
    assert isinstance(y, torch.Tensor) and y.shape == (3, 17, 61)
    torch.testing.assert_close(y, torch.full((3, 17, 61), 2.5))
    # Antialiased shrinking averages: a checkerboard becomes its mean, not aliased stripes.
    board = (np.indices((64, 64)).sum(axis=0) % 2).astype(np.float32)
    assert np.abs(resize(board, (16, 16)) - 0.5).max() < 0.05


@pytest.mark.parametrize("pixel,expected", [((5.0, 5.0), (2.0, 2.0)), ((1000.0, 0.001), (2.0, 0.25)),
                                            ((0.02, 0.02), (0.25, 0.25)), ((0.15, 0.05), (1.5, 0.5))])
def test_factor_is_clamped_to_the_documented_range(pixel, expected):
    from preprocessing.pixel_grid import MAX_FACTOR, MIN_FACTOR, grid_warnings
    assert (MIN_FACTOR, MAX_FACTOR) == (0.25, 2.0)
    assert scale_factors(pixel, 0.1) == pytest.approx(expected)
    notes = grid_warnings((40, 40), pixel, 0.1)
    clamped = any(not MIN_FACTOR <= p / 0.1 <= MAX_FACTOR for p in pixel)
    assert bool(notes) == clamped
    if clamped:  # the warning names the factor the metadata asked for and the one used
        assert f"{pixel[0] / 0.1:.4g}" in notes[0] and "outside [0.25, 2.0]" in notes[0]
    assert to_model_grid(np.ones((40, 40), np.float32), pixel, 0.1).shape == scaled_shape((40, 40), expected)


def test_model_grid_is_capped_and_the_cap_is_named(monkeypatch):
    import preprocessing.pixel_grid as grid
    monkeypatch.setattr(grid, "MAX_GRID_PIXELS", 100 * 100)
    factors = grid.scale_factors((0.2, 0.2), 0.1, shape=(80, 80))   # 160² wanted, 100² allowed
    assert np.prod(grid.scaled_shape((80, 80), factors)) <= 100 * 100
    assert any("exceeds the bound of 10000 pixels" in n for n in grid.grid_warnings((80, 80), (0.2, 0.2), 0.1))
    # An image with no pixel size that is itself over the cap is shrunk too.
    assert np.prod(grid.scaled_shape((200, 150), grid.scale_factors(None, 0.1, shape=(200, 150)))) <= 10000
    assert grid.grid_warnings((50, 50), (0.1, 0.1), 0.1) == []
