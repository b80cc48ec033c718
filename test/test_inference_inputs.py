"""load_input: the strict reader first, a narrow rescue (colour -> grey, NaN/inf -> median) after."""
import numpy as np
import pytest
import tifffile

from inference.inputs import load_input
from preprocessing.ome_io import OmeReadError, write_ome_tiff


def test_clean_file_has_no_warnings(tmp_path):
    path = write_ome_tiff(tmp_path / "a.tiff", np.arange(20, dtype=np.uint16).reshape(4, 5), channel_name="PC",
                          pixel_size_um=(0.1, 0.1))
    image, notes = load_input(path)
    assert notes == [] and image.modality == "PC" and image.shape == (4, 5)


@pytest.mark.parametrize("channels", [3, 4])
def test_colour_image_becomes_the_mean_of_its_rgb_channels(tmp_path, channels):
    rgb = np.random.default_rng(0).integers(0, 255, size=(12, 9, channels), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tiff", rgb, photometric="rgb")
    image, notes = load_input(tmp_path / "rgb.tiff")
    np.testing.assert_allclose(image.array, rgb[..., :3].astype(np.float32).mean(axis=-1), atol=1e-4)
    assert "rgb.tiff" in notes[0] and "colour" in notes[0] and "averaged to grey" in notes[0]


def test_non_finite_pixels_become_the_median(tmp_path):
    array = np.arange(16, dtype=np.float32).reshape(4, 4)
    array[0, 0], array[3, 3] = np.nan, -np.inf
    path = write_ome_tiff(tmp_path / "nan.tiff", array, channel_name="BF", pixel_size_um=(0.2, 0.2))
    image, notes = load_input(path)
    finite = array[np.isfinite(array)]
    assert image.array[0, 0] == image.array[3, 3] == np.median(finite)
    assert np.isfinite(image.array).all() and image.pixel_size_um == pytest.approx((0.2, 0.2))
    assert image.modality == "BF" and "2 NaN/inf pixel(s)" in notes[0]


def test_all_nan_becomes_zero(tmp_path):
    path = write_ome_tiff(tmp_path / "allnan.tiff", np.full((5, 6), np.nan, np.float32), channel_name="BF")
    image, _ = load_input(path)
    assert np.array_equal(image.array, np.zeros((5, 6), np.float32))


def test_stacks_give_their_middle_plane_and_garbage_still_raises_naming_the_file(tmp_path):
    stack = np.arange(5 * 8 * 8, dtype=np.uint16).reshape(5, 8, 8)
    tifffile.imwrite(tmp_path / "stack.tiff", stack)
    image, notes = load_input(tmp_path / "stack.tiff")
    np.testing.assert_array_equal(image.array, stack[2])
    assert "stack.tiff" in notes[0] and "middle plane (index 2)" in notes[0]
    (tmp_path / "junk.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(OmeReadError, match="junk.tif"):
        load_input(tmp_path / "junk.tif")


def test_planes_and_series_over_the_bounds_are_refused_in_one_line(tmp_path, monkeypatch):
    import inference.inputs as inputs
    import preprocessing.ome_io as ome_io
    path = write_ome_tiff(tmp_path / "big.tiff", np.zeros((10, 12), np.uint16), channel_name="BF")
    monkeypatch.setattr(inputs, "MAX_INPUT_PIXELS", 100)
    with pytest.raises(OmeReadError, match=r"big\.tiff: plane 10x12 is over the bound of 100 pixels"):
        load_input(path)
    monkeypatch.setattr(ome_io, "MAX_SERIES_ELEMENTS", 50)   # refused before the pixels are decoded
    with pytest.raises(OmeReadError, match=r"big\.tiff: .* holds 120 values, over the bound of 50"):
        load_input(path)
