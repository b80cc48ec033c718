"""Sliding windows + blending + TTA: exact stitching with trivial predictors, MONAI parity, no seams
along image borders."""
import numpy as np
import pytest
import torch
from monai.data.utils import compute_importance_map, dense_patch_slices
from monai.inferers import sliding_window_inference
from test_inference_support import WindowCounter

from inference.sliding_window import (
    importance_map,
    reflect_pad,
    sliding_window_predict,
    tile_geometry,
    window_flush,
    window_starts,
)
from inference.tta import transforms

SHAPES = [(64, 64), (48, 80), (33, 41), (10, 10), (7, 90), (1, 5)]   # square, non-square, odd, < window


def _image(shape, channels=1, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).random((1, channels, *shape), dtype=np.float32))


def _small_net(seed=0, out_channels=3):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),
                               torch.nn.Conv2d(8, out_channels, 3, padding=1), torch.nn.Tanh()).eval()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("tta", ["none", "rot4", "d4"])
@pytest.mark.parametrize("blend", ["gaussian-border", "gaussian", "constant"])
def test_trivial_predictors_stitch_exactly(shape, tta, blend):
    x = _image(shape)
    for fn, expected in [(lambda t: t, x), (lambda t: t * 2, x * 2), (lambda t: t + 1, x + 1)]:
        y = sliding_window_predict(x, fn, window=24, overlap=0.5, blend=blend, batch_size=5,
                                   size_divisor=4, tta=tta)
        assert y.shape == x.shape
        torch.testing.assert_close(y, expected, rtol=0, atol=1e-5)


def test_window_grid_matches_monai_and_ends_flush():
    for size in (1, 31, 64, 65, 200, 517):
        for window in (16, 64, 100):
            for overlap in (0.0, 0.25, 0.5, 0.8):
                if window > size:
                    continue
                step = int(window * (1 - overlap)) if window != size else window
                monai = sorted({s[0].start for s in dense_patch_slices((size,), (window,), (max(step, 1),))})
                ours = window_starts(size, window, overlap)
                assert ours == monai
                assert ours[-1] == size - window and ours[0] == 0


def test_importance_map_matches_monai():
    for window in [(64, 64), (33, 20), (512, 512)]:
        ours = importance_map(window, "gaussian")
        theirs = compute_importance_map(window, mode="gaussian", sigma_scale=0.125)
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-7)
        assert float(ours.min()) >= 1e-3
    assert torch.equal(importance_map((8, 5), "constant"), torch.ones(8, 5))


def test_border_map_is_flat_toward_the_flush_sides_only():
    window = (40, 30)
    gaussian = importance_map(window, "gaussian")
    assert torch.equal(importance_map(window, "gaussian-border"), gaussian)   # an interior window
    top_left = importance_map(window, "gaussian-border", flush=(True, False, True, False))
    # Above and left of the centre: flat; below and right: the plain Gaussian.
    assert torch.equal(top_left[:20, :15], torch.ones(20, 15))
    assert torch.equal(top_left[20:, 15:], gaussian[20:, 15:])
    assert float(top_left.min()) == float(gaussian.min())     # the same floor for far corners
    assert torch.equal(importance_map(window, "gaussian-border", flush=(True,) * 4), torch.ones(window))
    assert window_flush(0, 5, (10, 10), (10, 30)) == (True, True, False, False)
    assert window_flush(3, 20, (10, 10), (13, 30)) == (False, True, False, True)


def test_gaussian_border_has_no_seam_along_the_image_border():
    """Two windows (starts 0 and 1 on a 33-wide image) predicting 1 and 2. With MONAI's Gaussian
    the rows along the top border are floored to equal weights for both windows, so their first
    row jumps from 1 to 1.5 where the second window begins; flat toward the border, the blend
    moves smoothly from the first window to the second in every row."""
    image = torch.zeros(1, 1, 32, 33)
    runs = {blend: sliding_window_predict(image, WindowCounter(), window=32, overlap=0.25, blend=blend,
                                          batch_size=1)[0, 0] for blend in ("gaussian", "gaussian-border")}
    assert float(runs["gaussian"][0, 1] - runs["gaussian"][0, 0]) > 0.3
    border = runs["gaussian-border"]
    steps = border[:, 1:] - border[:, :-1]
    assert float(steps[:, 0].max()) < 1.01e-3         # no jump where the second window begins
    assert bool((steps >= -1e-6).all())                # monotone from window 1 to window 2
    torch.testing.assert_close(border[0], border[16])  # the border row blends like the middle one


def test_reflect_pad_larger_than_image_matches_numpy():
    a = np.random.default_rng(1).random((3, 4), dtype=np.float32)
    ours = reflect_pad(torch.from_numpy(a)[None, None], 5, 7, 9, 2)[0, 0].numpy()
    np.testing.assert_array_equal(ours, np.pad(a, ((5, 7), (9, 2)), mode="reflect"))


def test_tile_geometry_pads_small_axes_to_a_small_tile_not_the_window():
    assert tile_geometry(1000, 256, 8) == (256, 0, 0)
    assert tile_geometry(10, 256, 4) == (64, 27, 27)    # MIN_TILE, not the 256 window
    assert tile_geometry(10, 24, 4) == (24, 7, 7)       # never more than the window
    assert tile_geometry(101, 256, 8) == (104, 1, 2)    # rounded up to the divisor
    assert tile_geometry(256, 250, 8) == (248, 0, 0)    # window rounded down to the divisor


def test_small_net_matches_monai_gaussian():
    net, x = _small_net(), _image((150, 203))
    with torch.inference_mode():
        theirs = sliding_window_inference(x, (64, 64), 4, net, overlap=0.5, mode="gaussian")
    ours = sliding_window_predict(x, net, window=64, overlap=0.5, blend="gaussian", batch_size=4)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-5)


@pytest.mark.parametrize("tta", ["rot4", "d4"])
def test_tta_equals_explicit_average_of_undone_predictions(tta):
    # A predictor that is not rotation-equivariant (adds a ramp along W), run on a whole image in one
    # window, so the expected value is the plain mean over transforms computed independently here.
    x = _image((40, 40))
    ramp = torch.linspace(0, 1, 40)

    def predictor(t):
        return t * 3 + ramp[: t.shape[-1]]

    expected = []
    for k in range(4):
        for flip in ([False, True] if tta == "d4" else [False]):
            a = np.flip(x[0, 0].numpy(), axis=1) if flip else x[0, 0].numpy()
            a = np.rot90(a, k)
            p = np.rot90(a * 3 + ramp.numpy()[None, :], -k)
            expected.append(np.flip(p, axis=1) if flip else p)
    y = sliding_window_predict(x, predictor, window=40, overlap=0.25, tta=tta, batch_size=3)
    np.testing.assert_allclose(y[0, 0].numpy(), np.mean(expected, axis=0), atol=1e-6)


def test_tta_inverse_of_each_transform_is_exact():
    x = torch.arange(2 * 3 * 5, dtype=torch.float32).reshape(1, 2, 3, 5)
    for mode in ("none", "rot4", "d4"):
        for t in transforms(mode):
            assert t.apply(x).shape[-2:] == t.out_shape(3, 5)
            assert torch.equal(t.invert(t.apply(x)), x)
    assert len(transforms("d4")) == 8 and len(set(transforms("d4"))) == 8
    with pytest.raises(ValueError, match="unknown TTA"):
        transforms("rot8")


def test_batches_are_bounded_and_model_shaped():
    seen = []

    def predictor(t):
        seen.append(tuple(t.shape))
        assert t.shape[-2] % 8 == 0 and t.shape[-1] % 8 == 0
        return t

    x = _image((70, 45))
    y = sliding_window_predict(x, predictor, window=(32, 16), overlap=0.25, batch_size=3,
                               size_divisor=8, tta="rot4")
    torch.testing.assert_close(y, x, rtol=0, atol=1e-5)
    assert max(s[0] for s in seen) <= 3
    assert {s[-2:] for s in seen} == {(32, 16), (16, 32)}   # non-square window under 90° turns


def test_batch_size_does_not_change_the_result_and_runs_are_deterministic():
    net, x = _small_net(out_channels=4), _image((90, 70), seed=3)
    runs = [sliding_window_predict(x, net, window=32, overlap=0.4, batch_size=b, tta="d4")
            for b in (1, 7, 64)]
    assert runs[0].shape == (1, 4, 90, 70)
    for other in runs[1:]:
        torch.testing.assert_close(other, runs[0], rtol=0, atol=1e-6)
    again = sliding_window_predict(x, net, window=32, overlap=0.4, batch_size=7, tta="d4")
    assert torch.equal(again, runs[1])


def test_bad_arguments_and_bad_predictors_are_refused():
    x = _image((20, 20))
    with pytest.raises(ValueError, match="overlap"):
        sliding_window_predict(x, lambda t: t, window=8, overlap=1.0)
    with pytest.raises(ValueError, match=r"\[1, C, H, W\]"):
        sliding_window_predict(x[0], lambda t: t, window=8)
    with pytest.raises(ValueError, match="blend"):
        sliding_window_predict(x, lambda t: t, window=8, blend="hann")
    with pytest.raises(ValueError, match="same B, h, w"):
        sliding_window_predict(x, lambda t: t[..., ::2, ::2], window=8)


@pytest.mark.slow
def test_4096_image_runs_with_memory_bounded_by_the_batch():
    seen = []

    def predictor(t):
        seen.append(t.shape[0])
        return torch.cat([t, -t], dim=1)

    x = _image((4096, 4096))
    y = sliding_window_predict(x, predictor, window=512, overlap=0.25, batch_size=4, tta="rot4")
    assert y.shape == (1, 2, 4096, 4096) and max(seen) <= 4
    torch.testing.assert_close(y[:, :1], x, rtol=0, atol=1e-5)
    torch.testing.assert_close(y[:, 1:], -x, rtol=0, atol=1e-5)


@pytest.mark.parametrize("tta", ["rot4", "d4"])
def test_views_are_each_transform_alone_and_leave_the_mean_bit_identical(tta):
    from inference.sliding_window import sliding_window_views
    from inference.tta import transforms
    x = _image((50, 70))
    ramp = torch.linspace(0, 1, 70)

    def predictor(t):     # not rotation-equivariant, so the views differ
        return t * 3 + ramp[: t.shape[-1]]

    kwargs = dict(window=32, overlap=0.25, tta=tta, batch_size=5)
    mean, views = sliding_window_views(x, predictor, **kwargs)
    torch.testing.assert_close(mean, sliding_window_predict(x, predictor, **kwargs), rtol=0, atol=0)
    assert views.shape == (len(transforms(tta)), 1, 50, 70)
    for k, view in enumerate(views):      # each view is what that transform alone would give
        alone = sliding_window_predict(x, lambda t, k=k: transforms(tta)[k].invert(predictor(
            transforms(tta)[k].apply(t))), window=32, overlap=0.25, batch_size=5)
        torch.testing.assert_close(view, alone[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(views.mean(0), mean[0], rtol=0, atol=1e-5)
    assert float(views.std(0).max()) > 0.01
