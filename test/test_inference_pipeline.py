"""predict_image: routing, one run per checkpoint, ensembles, fallback, degenerate inputs."""
from pathlib import Path

import numpy as np
import pytest
import torch
from test_inference_support import DictStore, identity_checkpoint, tl_array, weights_dir, write_tl  # noqa: F401

from inference.pipeline import InferenceSettings, predict_image, run_checkpoint
from models.registry import Manifest, ModelStore
from preprocessing.ome_io import ORGANELLES, OmeImage, read_ome_tiff

FAST = InferenceSettings(overlap=0.25, tta="rot4", batch_size=16, device="cpu")


@pytest.fixture(scope="module")
def manifest(weights_dir):  # noqa: F811
    return Manifest.load(weights_dir / "manifest.json")


@pytest.fixture(scope="module")
def store(manifest):
    return ModelStore(manifest, device="cpu")


def _image(array, modality="BF", pixel=(0.1, 0.1), name="x.tiff"):
    return OmeImage(path=Path(name), array=np.asarray(array, dtype=np.float32), modality=modality,
                    pixel_size_um=pixel, ome_xml=None, dtype=np.dtype(np.uint16))


def _count_samples(model):
    seen = []
    handle = model.register_forward_hook(lambda module, args, out: seen.append(args[0].shape[0]))
    return seen, handle


@pytest.mark.parametrize("shape", [(64, 80), (45, 33), (10, 10), (1, 5), (3, 300)])
def test_four_finite_outputs_of_the_input_shape(manifest, store, shape):
    prediction = predict_image(_image(tl_array(shape)), manifest, store, FAST)
    assert set(prediction.organelles) == set(ORGANELLES)
    for array in prediction.organelles.values():
        assert array.shape == shape and array.dtype == np.float32
        assert np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1
    assert prediction.models_used == ["p2p", "vq"] and prediction.modality == "BF"
    assert not prediction.fallback and prediction.seconds > 0


@pytest.mark.parametrize("value", [0.0, 1234.0])
def test_constant_and_empty_images_still_give_finite_outputs(manifest, store, value):
    prediction = predict_image(_image(np.full((40, 52), value)), manifest, store, FAST)
    for array in prediction.organelles.values():
        assert array.shape == (40, 52) and np.isfinite(array).all()
    assert any("constant image" in w for w in prediction.warnings)


def test_each_checkpoint_runs_once_for_all_its_organelles(manifest, store):
    image = _image(tl_array((48, 60)))
    p2p = store.get("p2p").model
    seen, handle = _count_samples(p2p)
    try:
        run_checkpoint(store.get("p2p"), image, FAST)
        one_run = sum(seen)
        seen.clear()
        predict_image(image, manifest, store, FAST)   # p2p serves all four organelles of BF
    finally:
        handle.remove()
    assert sum(seen) == one_run > 0


def test_channels_and_ensembles_follow_the_manifest(manifest, store):
    image = _image(tl_array((40, 48), seed=2))
    p2p = run_checkpoint(store.get("p2p"), image, FAST)
    vq = run_checkpoint(store.get("vq"), image, FAST)
    prediction = predict_image(image, manifest, store, FAST)
    np.testing.assert_allclose(prediction.organelles["nucleus"], (p2p[0] + vq[0]) / 2, atol=1e-6)
    for channel, organelle in enumerate(ORGANELLES[1:], start=1):
        np.testing.assert_allclose(prediction.organelles[organelle], p2p[channel], atol=1e-6)
    dic = predict_image(_image(image.array, modality="DIC"), manifest, store, FAST)
    np.testing.assert_allclose(dic.organelles["nucleus"], vq[0], atol=1e-6)
    assert dic.models_used == ["vq", "p2p"]


def test_a_subset_of_organelles_runs_only_their_checkpoints(manifest, store):
    image = _image(tl_array((40, 48), seed=3), modality="DIC")
    full = predict_image(image, manifest, store, FAST)
    nucleus = predict_image(image, manifest, store, FAST, organelles=("nucleus",))
    assert set(nucleus.organelles) == {"nucleus"} and nucleus.models_used == ["vq"]
    np.testing.assert_array_equal(nucleus.organelles["nucleus"], full.organelles["nucleus"])
    with pytest.raises(ValueError, match="subset"):
        predict_image(image, manifest, store, FAST, organelles=("golgi",))


@pytest.mark.parametrize("modality", [None, "Fluorescence?"])
def test_unknown_modality_falls_back_and_says_so(manifest, store, modality):
    prediction = predict_image(_image(tl_array((32, 32)), modality=modality), manifest, store, FAST)
    assert prediction.fallback and prediction.modality == "BF"
    assert any("fallback" in w for w in prediction.warnings)


@pytest.mark.parametrize("tta", ["none", "rot4", "d4"])
@pytest.mark.parametrize("shape", [(64, 64), (50, 77), (33, 21), (10, 10)])
def test_identity_model_returns_the_normalised_input(manifest, tta, shape):
    # Independent expectation: percentile 2 -> 0, 99.8 -> 1, clipped (output_range (-1, 1) -> [0, 1]).
    array = tl_array(shape, seed=4).astype(np.float32)
    p2, p998 = np.percentile(array, [2.0, 99.8])
    expected = np.clip((array - p2) / (p998 - p2), 0, 1)
    store = DictStore({"p2p": identity_checkpoint(), "vq": identity_checkpoint("vq")})
    settings = InferenceSettings(overlap=0.5, tta=tta, batch_size=7, device="cpu")
    prediction = predict_image(_image(array), manifest, store, settings)
    for organelle in ORGANELLES:
        np.testing.assert_allclose(prediction.organelles[organelle], expected, atol=1e-5)


def test_resampling_to_the_model_pixel_size_and_back(manifest):
    # Model at 0.1 µm, image at 0.05 µm: the model sees half the pixels, the output has the input's
    # shape again, and a smooth image survives the round trip.
    store = DictStore({"p2p": identity_checkpoint(pixel_size_um=0.1), "vq": identity_checkpoint("vq", 0.1)})
    yy, xx = np.mgrid[0:192, 0:160].astype(np.float32)
    array = 1000 + 500 * np.sin(yy / 25) * np.cos(xx / 19)
    seen = []
    model = store.checkpoints["p2p"].model
    handle = model.register_forward_hook(lambda m, a, o: seen.append(tuple(a[0].shape[-2:])))
    try:
        prediction = predict_image(_image(array, pixel=(0.05, 0.05)), manifest, store,
                                   InferenceSettings(tta="none", device="cpu", window=256, context=0))
    finally:
        handle.remove()
    assert seen == [(96, 80)]
    p2, p998 = np.percentile(array, [2.0, 99.8])
    expected = np.clip((array - p2) / (p998 - p2), 0, 1)
    result = prediction.organelles["actin"]
    assert result.shape == (192, 160)
    assert np.abs(result - expected)[4:-4, 4:-4].max() < 0.02


def test_deterministic(manifest, store):
    image = _image(tl_array((40, 40), seed=7))
    a = predict_image(image, manifest, store, FAST)
    b = predict_image(image, manifest, store, FAST)
    for organelle in ORGANELLES:
        assert np.array_equal(a.organelles[organelle], b.organelles[organelle])


def test_settings_refuse_nonsense():
    with pytest.raises(ValueError, match="tta"):
        InferenceSettings(tta="rot8")
    with pytest.raises(ValueError, match="overlap"):
        InferenceSettings(overlap=1.5)
    with pytest.raises(ValueError, match="batch_size"):
        InferenceSettings(batch_size=0)


def test_reads_a_real_file_and_predicts(tmp_path, manifest, store):
    image = read_ome_tiff(write_tl(tmp_path / "a.ome.tiff", tl_array((36, 44)), "PC", (0.08, 0.08)))
    prediction = predict_image(image, manifest, store, FAST)
    assert prediction.modality == "PC" and prediction.models_used == ["p2p"]
    assert all(a.shape == (36, 44) for a in prediction.organelles.values())


def test_spread_maps_leave_the_predictions_unchanged(manifest, store):
    image = _image(tl_array((48, 56)), modality="BF")
    plain = predict_image(image, manifest, store, FAST)
    with_spread = predict_image(image, manifest, store, FAST, spread=True)
    assert plain.spread is None
    for organelle in ORGANELLES:
        np.testing.assert_array_equal(with_spread.organelles[organelle], plain.organelles[organelle])
        spread = with_spread.spread[organelle]
        assert spread.shape == (48, 56) and spread.dtype == np.float32
        assert np.all(np.isfinite(spread)) and 0 <= spread.min() and spread.max() <= 0.5
    # BF nucleus averages two checkpoints x 4 rotations: untrained models disagree somewhere.
    assert with_spread.spread["nucleus"].max() > 0
    single = predict_image(image, manifest, store, InferenceSettings(tta="none", device="cpu"), spread=True)
    assert not any("spread maps are zero" in w for w in single.warnings)   # BF nucleus is an ensemble
    dic = predict_image(_image(tl_array((48, 56)), modality="DIC"), manifest, store,
                        InferenceSettings(tta="none", device="cpu"), organelles=("nucleus",), spread=True)
    assert any("spread maps are zero" in w for w in dic.warnings)
    np.testing.assert_array_equal(dic.spread["nucleus"], 0)


def test_identity_model_has_no_spread_over_rotations(manifest):
    image = _image(tl_array((40, 40)))
    store = DictStore({"p2p": identity_checkpoint(), "vq": identity_checkpoint()})
    prediction = predict_image(image, manifest, store, FAST, spread=True)
    for organelle in ORGANELLES:
        np.testing.assert_allclose(prediction.spread[organelle], 0, atol=1e-6)


class _CornerSpike(torch.nn.Module):
    """Identity that also paints each tile's top-left pixel at 100: a model's corner artefact."""

    def forward(self, x):
        y = x[:, :1].expand(-1, 4, -1, -1).clone()
        y[:, :, 0, 0] = 100.0
        return y


def test_mirrored_context_moves_a_corner_artefact_off_the_image(manifest):
    import dataclasses
    # One tile either way (window 96 > 64 + 2 x 8): its top-left pixel is the image's own corner
    # without context, and a mirrored pixel outside the image with it.
    spiky = dataclasses.replace(identity_checkpoint(window=96), model=_CornerSpike().eval())
    store = DictStore({"p2p": spiky, "vq": dataclasses.replace(spiky, name="vq")})
    array = tl_array((64, 64), seed=2).astype(np.float32)
    p2, p998 = np.percentile(array, [2.0, 99.8])
    expected = np.clip((array - p2) / (p998 - p2), 0, 1)
    bare = predict_image(_image(array), manifest, store, InferenceSettings(tta="none", device="cpu", context=0))
    assert bare.organelles["actin"][0, 0] == 1.0 and expected[0, 0] < 1.0      # the artefact, saturated
    framed = predict_image(_image(array), manifest, store, InferenceSettings(tta="none", device="cpu", context=8))
    np.testing.assert_allclose(framed.organelles["actin"], expected, atol=1e-5)  # cropped off with the margin


def test_context_is_counted_in_model_pixels_and_bounded_by_the_image():
    from inference.pipeline import context_margin
    image = _image(np.zeros((50, 300)), pixel=(0.05, 0.05))
    assert context_margin(image, 0.2, 8) == 32          # 8 model pixels of 0.2 µm = 32 input pixels
    assert context_margin(image, None, 8) == 8
    assert context_margin(image, 0.2, 32) == 49         # reflect padding needs fewer than the side
    assert context_margin(image, 0.2, 0) == 0
    with pytest.raises(ValueError, match="context"):
        InferenceSettings(context=-1)
