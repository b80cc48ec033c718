"""Ceilings: a perfect prediction after a model's resampling, scored by the challenge's metrics."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from metrics.ceiling import through_grid, through_resize
from metrics.challenge import score_image


def _nuclei(shape=(300, 360), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    image = np.zeros(shape, np.float32)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for _ in range(25):
        cy, cx, r = rng.uniform(0, shape[0]), rng.uniform(0, shape[1]), rng.uniform(6, 14)
        image += 1000 * (((yy - cy) ** 2 + (xx - cx) ** 2) < r * r)
    image += rng.normal(0, 20, shape)  # texture at the pixel scale, which coarse grids lose
    return ndimage.gaussian_filter(image, 1.0) + 100


def test_the_same_grid_loses_nothing():
    gt = _nuclei()
    same = through_grid(gt, (0.1, 0.1), 0.1)
    np.testing.assert_array_equal(same, gt)
    assert score_image(same, gt, "nucleus")["PCC"] == pytest.approx(1.0)


def test_coarser_grids_cost_more_and_shapes_come_back_exactly():
    gt = _nuclei()
    ssim = {}
    for grid in (0.1, 0.2, 0.4):
        perfect = through_grid(gt, (0.065, 0.065), grid)
        assert perfect.shape == gt.shape and perfect.dtype == np.float32
        ssim[grid] = score_image(perfect, gt, "nucleus")["SSIM"]
    assert 1.0 > ssim[0.1] > ssim[0.2] > ssim[0.4]
    resized = through_resize(gt)
    assert resized.shape == gt.shape
    assert score_image(resized, gt, "nucleus")["SSIM"] < 1.0


def test_unknown_pixel_size_means_no_resampling():
    gt = _nuclei((64, 64))
    np.testing.assert_array_equal(through_grid(gt, None, 0.2), gt)
