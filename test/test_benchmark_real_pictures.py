"""The real-image benchmark's pictures: drawn from the real pairs as the benchmark reads them, one
row per image, the ISL stack at its fixed slice, titles in the margin and the scores in them."""
import numpy as np
import pytest
from scipy import ndimage

from benchmarks.real import data
from benchmarks.real.pictures import ISL_PICTURE_SLICE, _row, write_zero_shot_pictures
from metrics.challenge import score_image


@pytest.fixture(scope="module")
def pairs():
    if (missing := data.available()) is not None:
        pytest.skip(missing)
    return [data.isl(slice(0, 256)), data.lmc_crop()]


def _result(pair):
    # A stand-in prediction: the target blurred (any array of the target's shape would do).
    predictions = [ndimage.gaussian_filter(pair.nucleus, 3).astype(np.uint16) for _ in pair.tl]
    slices = [{"shipped": score_image(p, pair.nucleus, "nucleus")} for p in predictions]
    return {"route": "stand-in", "slices": slices, "predictions": predictions}


def test_rows_show_the_fixed_slice_and_its_scores(pairs):
    isl, crop = pairs
    result = _result(isl)
    row = _row(result, isl, ISL_PICTURE_SLICE)
    assert f"z{ISL_PICTURE_SLICE:02d}" in row.title
    assert f"PCC {result['slices'][ISL_PICTURE_SLICE]['shipped']['PCC']:.3f}" in row.title
    assert np.array_equal(row.tl.image.shape, isl.nucleus.shape)
    assert row.pred.pixel_size_um == data.ISL_PIXEL_UM
    assert "the crop" in _row(_result(crop), crop, 0).title


def test_writes_one_png_with_a_row_per_image(pairs, tmp_path):
    import imageio.v3 as iio
    out = write_zero_shot_pictures([_result(p) for p in pairs], pairs, tmp_path / "sub" / "zero_shot.png", dpi=40)
    image = iio.imread(out)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > image.shape[0]
    # Not a blank canvas: the panels hold images.
    assert image[..., :3].std() > 10
