"""inference/api.py: an array in, four [0, 1] float32 arrays of its shape out."""
import numpy as np
import pytest

from inference.api import predict


def test_predict_array_gives_four_organelles_of_its_shape():
    out = predict(np.random.default_rng(0).random((64, 64)), "BF", 0.2, tta="none")
    assert set(out) == {"nucleus", "mitochondria", "tubulin", "actin"}
    for array in out.values():
        assert array.shape == (64, 64) and array.dtype == np.float32
        assert 0.0 <= array.min() and array.max() <= 1.0


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_predict_refuses_a_bad_pixel_size(bad):
    with pytest.raises(ValueError, match="pixel_size_um"):
        predict(np.zeros((64, 64)), "BF", bad, tta="none")
