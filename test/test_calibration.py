"""Output calibration: the map itself, its place in the checkpoint spec and in inference, its fit
on a run's validation split (training/calibrate.py), and its way into the exported checkpoint."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from inference.pipeline import run_checkpoint
from inference.settings import InferenceSettings
from models.calibration import IDENTITY, QUANTILE_LEVELS, calibrate, match_quantiles, reference_quantiles
from models.pix2pix import Pix2PixConfig, Pix2PixGenerator
from models.registry import CheckpointSpec, load_checkpoint, save_checkpoint
from preprocessing.ome_io import ORGANELLES, read_ome_tiff, write_ome_tiff
from training import calibrate as fitting
from training.checkpointing import load_module_state, load_training_checkpoint
from training.export import export_run, parse_routes
from training.toy_studies import write_toy_studies
from training.train_pix2pix import PIX2PIX_LOSS, Pix2PixFamily
from training.trainer import TrainConfig, train

NORM = {"kind": "percentile", "low": 2.0, "high": 99.8}


def test_floor_sends_the_dimmest_fraction_to_zero_and_keeps_order():
    x = np.random.default_rng(0).random((64, 80)).astype(np.float32)
    y = calibrate(x, {"floor_quantile": 0.6, "floor_fraction": 0.0, "gamma": 2.0})
    assert y.dtype == np.float32 and y.min() == 0.0 and y.max() == pytest.approx(1.0)
    assert np.mean(y == 0) == pytest.approx(0.6, abs=0.01)
    order = np.argsort(x.ravel())
    assert np.all(np.diff(y.ravel()[order]) >= 0)          # monotone: ranks never swap
    # gamma alone: an exact power of the rescaled image
    z = calibrate(x, {"floor_quantile": 0.0, "floor_fraction": 0.0, "gamma": 1.5})
    expected = ((x - x.min()) / (x.max() - x.min())) ** 1.5
    np.testing.assert_allclose(z, expected, rtol=1e-5, atol=1e-6)
    # a relative floor: everything below 30 % of the [min, p99.8] range goes to 0
    w = calibrate(x, {"floor_quantile": 0.0, "floor_fraction": 0.3, "gamma": 1.0})
    cut = x.min() + 0.3 * (np.quantile(x, 0.998) - x.min())
    assert np.array_equal(w == 0, x <= cut)


def test_identity_is_a_rescale_and_a_constant_image_becomes_zero():
    x = np.random.default_rng(1).random((32, 32)).astype(np.float32) * 0.5 + 0.2
    y = calibrate(x, IDENTITY)
    assert np.corrcoef(x.ravel(), y.ravel())[0, 1] == pytest.approx(1.0, abs=1e-6)
    assert not calibrate(np.full((8, 8), 0.3, np.float32), {"floor_quantile": 0.5, "floor_fraction": 0.1, "gamma": 2.0}).any()


def _quantile_params(reference) -> dict:
    return {"quantile_levels": list(QUANTILE_LEVELS), "reference_quantiles": list(reference)}


def test_quantile_matching_gives_the_reference_distribution_and_keeps_order():
    rng = np.random.default_rng(4)
    x = rng.random((96, 128)).astype(np.float32) * 0.3 + 0.4      # a flat, hazy prediction
    sparse = rng.exponential(0.05, 200_000)                          # a dark, sparse reference
    reference = np.quantile(sparse, QUANTILE_LEVELS)
    y = calibrate(x, _quantile_params(reference))
    assert y.dtype == np.float32 and y.min() == 0.0 and y.max() == pytest.approx(1.0)
    order = np.argsort(x.ravel(), kind="stable")
    assert np.all(np.diff(y.ravel()[order]) >= 0)                  # monotone: ranks never swap
    # y's quantiles are the reference's, rescaled to [0, 1]
    expected = (reference - reference[0]) / (reference[-1] - reference[0])
    for u in (0.1, 0.5, 0.9, 0.99):
        assert np.quantile(y, u) == pytest.approx(np.interp(u, QUANTILE_LEVELS, expected), abs=2e-3)
    assert not match_quantiles(np.full((8, 8), 0.3, np.float32), _quantile_params(reference)).any()


def test_quantile_matching_sends_ties_to_one_value():
    x = np.zeros((50, 50), np.float32)
    x[:10] = np.linspace(0.5, 1.0, 500, dtype=np.float32).reshape(10, 50)   # 80 % of pixels tie at 0
    y = calibrate(x, _quantile_params(np.linspace(0.0, 1.0, len(QUANTILE_LEVELS)) ** 3))
    assert np.unique(y[10:]).size == 1
    assert np.all(np.diff(y[:10].ravel()) >= 0) and y[0, 0] >= y[10, 0]


def test_reference_is_the_median_of_the_images_quantiles():
    rng = np.random.default_rng(5)
    images = [rng.normal(m, 1.0, (40, 30)) for m in (0.0, 1.0, 5.0)]
    levels = (0.0, 0.25, 0.5, 1.0)
    expected = np.median([np.quantile(g, levels) for g in images], axis=0)
    np.testing.assert_allclose(reference_quantiles(images, levels), expected)


def _spec(**kw) -> CheckpointSpec:
    model = Pix2PixGenerator(Pix2PixConfig.preset("tiny"))
    base = dict(arch="pix2pix", config=model.config, organelles=ORGANELLES, modalities=("BF",),
                input_norm=NORM, pixel_size_um=None, window=32, size_divisor=4)
    base.update(kw)
    return CheckpointSpec(**base)


@pytest.mark.parametrize("calibration, message", [
    ({"golgi": IDENTITY}, "does not predict"),
    ({"actin": {"floor_quantile": 1.0, "floor_fraction": 0.0, "gamma": 1.0}}, "floor_quantile"),
    ({"actin": {"floor_quantile": 0.0, "floor_fraction": -0.1, "gamma": 1.0}}, "floor_fraction"),
    ({"actin": {"floor_quantile": 0.2, "floor_fraction": 0.0, "gamma": 0.0}}, "gamma"),
    ({"actin": {"floor_quantile": 0.2}}, "exactly"),
    ({"actin": {"quantile_levels": [0.0, 1.0], "reference_quantiles": [0.0, 0.5, 1.0]}}, "same length"),
    ({"actin": {"quantile_levels": [0.0, 0.6, 0.5, 1.0], "reference_quantiles": [0, 1, 2, 3]}}, "rise strictly"),
    ({"actin": {"quantile_levels": [0.1, 1.0], "reference_quantiles": [0.0, 1.0]}}, "rise strictly"),
    ({"actin": {"quantile_levels": [0.0, 0.5, 1.0], "reference_quantiles": [0.0, 2.0, 1.0]}}, "non-decreasing"),
    ({"actin": {"quantile_levels": [0.0, 1.0], "reference_quantiles": [0.4, 0.4]}}, "not constant"),
    ({"actin": {"quantile_levels": [0.0, 1.0], "reference_quantiles": ["a", 1.0]}}, "not numbers"),
])
def test_spec_refuses_bad_calibrations(calibration, message):
    with pytest.raises(ValueError, match=message):
        _spec(output_calibration=calibration).validate()


def test_specs_without_calibration_still_load():
    data = _spec().to_dict()
    del data["output_calibration"]                          # a checkpoint written before the field
    assert CheckpointSpec.from_dict(data).output_calibration == {}


@pytest.mark.parametrize("params", [
    {"floor_quantile": 0.5, "floor_fraction": 0.1, "gamma": 2.0},
    _quantile_params(np.linspace(0.0, 1.0, len(QUANTILE_LEVELS)) ** 4),
], ids=["floor_gamma", "quantile_match"])
def test_inference_applies_the_checkpoint_calibration(tmp_path, params):
    torch.manual_seed(0)
    model = Pix2PixGenerator(Pix2PixConfig.preset("tiny"))
    save_checkpoint(tmp_path / "plain.pt", model, _spec())
    save_checkpoint(tmp_path / "calibrated.pt", model, _spec(output_calibration={"mitochondria": params}))
    image_path = tmp_path / "image_1_BF_z0.ome.tiff"
    rng = np.random.default_rng(2)
    write_ome_tiff(image_path, rng.integers(100, 4000, (40, 52)).astype(np.uint16), channel_name="BF")
    image = read_ome_tiff(image_path)
    settings = InferenceSettings(tta="none")
    plain = run_checkpoint(load_checkpoint(tmp_path / "plain.pt"), image, settings)
    calibrated = run_checkpoint(load_checkpoint(tmp_path / "calibrated.pt"), image, settings)
    m = ORGANELLES.index("mitochondria")
    np.testing.assert_allclose(calibrated[m], calibrate(plain[m], params), atol=1e-6)
    others = [i for i in range(4) if i != m]
    np.testing.assert_array_equal(calibrated[others], plain[others])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("calibration")
    root = write_toy_studies(tmp / "data", studies=2, fovs_per_study=4, size=48, z_slices=2, seed=3)
    train(TrainConfig(data=str(root), out=str(tmp / "run"), preset="tiny", steps=4, batch_size=2,
                      crop=32, val_fraction=0.5, val_every=4, val_items=2, val_crop=48, progress=False,
                      loss=replace(PIX2PIX_LOSS, disc_preset="tiny", gan_weight=0.0)), Pix2PixFamily())
    yield tmp / "run"
    torch.set_num_threads(before)


def test_fit_writes_a_choice_no_worse_than_none_and_export_uses_it(run, tmp_path, capsys):
    assert fitting.main(["--run", str(run), "--items", "4"]) == 0
    assert "calibration of" in capsys.readouterr().out
    result = json.loads((run / "calibration.json").read_text())
    assert result["step"] == load_training_checkpoint(run / "best.pt")["step"]
    assert result["items"] == 4 and result["organelles"]
    for fitted in result["organelles"].values():
        if "reference_quantiles" in fitted["params"]:
            assert fitted["params"]["quantile_levels"] == list(QUANTILE_LEVELS)
        else:
            assert fitted["params"]["floor_quantile"] in fitting.FLOOR_QUANTILES
            assert fitted["params"]["floor_fraction"] in fitting.FLOOR_FRACTIONS
            assert fitted["params"]["gamma"] in fitting.GAMMAS
        assert fitted["chosen"]["objective"] >= fitted["uncalibrated"]["objective"]
        assert fitted["chosen"]["objective"] >= fitted["quantile_match"]["objective"]
        assert set(fitted["baselines"]) == {"constant", "tl_input"}
        # the constant baseline's scores are what the challenge gives a zero image
        assert fitted["baselines"]["constant"]["PCC"] == 0.0
    path, _ = export_run(run, "calibrated", tmp_path / "weights", routes=parse_routes(["*:*"]))
    assert load_checkpoint(path).spec.output_calibration == {
        o: r["params"] for o, r in result["organelles"].items()}
    path, _ = export_run(run, "plain", tmp_path / "weights2", routes=parse_routes(["*:*"]), calibration=None)
    assert load_checkpoint(path).spec.output_calibration == {}


def test_export_refuses_a_calibration_of_another_step(run, tmp_path):
    stale = json.loads((run / "calibration.json").read_text()) if (run / "calibration.json").exists() \
        else {"organelles": {}}
    stale["step"] = 999
    (tmp_path / "stale.json").write_text(json.dumps(stale))
    with pytest.raises(ValueError, match="step 999"):
        export_run(run, "x", tmp_path / "weights", routes=parse_routes(["*:*"]),
                   calibration=tmp_path / "stale.json")


def test_warm_start_begins_from_the_given_weights(run, tmp_path):
    """init_from with lr 0: the new run's weights are exactly the source checkpoint's."""
    state = load_training_checkpoint(run / "best.pt")
    config = json.loads((run / "run.json").read_text())["train"]
    train(TrainConfig(data=config["data"], out=str(tmp_path / "warm"), preset="tiny", steps=1, lr=0.0,
                      batch_size=2, crop=32, val_fraction=0.5, val_every=1, val_items=1, val_crop=48,
                      progress=False, init_from=str(run / "best.pt"),
                      loss=replace(PIX2PIX_LOSS, disc_preset="tiny", gan_weight=0.0)), Pix2PixFamily())
    warm = load_training_checkpoint(tmp_path / "warm" / "last.pt")
    a, b = Pix2PixGenerator(Pix2PixConfig.preset("tiny")), Pix2PixGenerator(Pix2PixConfig.preset("tiny"))
    load_module_state(a, state["generator"])
    load_module_state(b, warm["generator"])
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        torch.testing.assert_close(x, y, rtol=0, atol=0, msg=name)
    with pytest.raises(ValueError, match="cannot initialise"):
        train(TrainConfig(data=config["data"], out=str(tmp_path / "bad"), preset="small", steps=1,
                          batch_size=2, crop=32, progress=False, init_from=str(run / "best.pt"),
                          loss=replace(PIX2PIX_LOSS, gan_weight=0.0)), Pix2PixFamily())


def test_warm_start_from_a_shipped_checkpoint(run, tmp_path):
    """--init-from also takes an exported (weights/) checkpoint: its weights, as inference loads them."""
    path, _ = export_run(run, "shipped", tmp_path / "weights", routes=parse_routes(["*:*"]))
    config = json.loads((run / "run.json").read_text())["train"]
    train(TrainConfig(data=config["data"], out=str(tmp_path / "warm"), preset="tiny", steps=1, lr=0.0,
                      batch_size=2, crop=32, val_fraction=0.5, val_every=1, val_items=1, val_crop=48,
                      progress=False, init_from=str(path),
                      loss=replace(PIX2PIX_LOSS, disc_preset="tiny", gan_weight=0.0)), Pix2PixFamily())
    warm = Pix2PixGenerator(Pix2PixConfig.preset("tiny"))
    load_module_state(warm, load_training_checkpoint(tmp_path / "warm" / "last.pt")["generator"])
    shipped = load_checkpoint(path).model.state_dict()
    for name, value in warm.state_dict().items():
        torch.testing.assert_close(value, shipped[name], rtol=0, atol=0, msg=name)


def test_a_separate_calibration_set_gives_one_slice_per_fov_first(run, tmp_path):
    other = write_toy_studies(tmp_path / "calib", studies=2, fovs_per_study=3, size=48, z_slices=3, seed=9)
    from training.runs import load_run
    loaded = load_run(run)
    checkpoint, config = loaded.as_checkpoint(), loaded.train_config
    items = fitting.predicted_items(checkpoint, config, str(other), 5, 0,
                                     InferenceSettings(tta="none"), use_all=True)
    fovs = [it.name.rsplit("_", 2)[0] for it in items]
    assert len(items) == 5 and len(set(fovs)) == 5          # 6 FOVs: five distinct ones first
    with pytest.raises(ValueError, match="--all needs --data"):
        fitting.fit(run, None, 4, use_all=True)


def test_margins_are_the_fraction_of_the_better_baselines_gap_to_perfect_that_is_closed():
    baselines = [{"PCC": 0.0, "SSIM": 0.5, "MAE": 0.04, "E_dist": 60.0, "C_dist": 1.0},
                 {"PCC": -0.1, "SSIM": 0.1, "MAE": 0.40, "E_dist": 200.0, "C_dist": 0.6}]
    scores = {"PCC": 0.6, "SSIM": 0.75, "MAE": 0.05, "E_dist": 45.0, "C_dist": 0.3}
    m = fitting.margins(scores, baselines)
    # gap to perfect: PCC 1 - 0 -> 0.6 of it closed; SSIM 1 - 0.5 -> 0.25 of 0.5; MAE 0.04 -> -0.01
    # of it (worse than the zero image); E_dist 60 -> 15 of it; C_dist 0.6 (the TL input) -> 0.3 of it
    assert m == pytest.approx({"PCC": 0.6, "SSIM": 0.5, "MAE": -0.25, "E_dist": 0.25, "C_dist": 0.5})
    assert fitting.objective(m) == pytest.approx(-0.25 + (0.6 + 0.5 - 0.25 + 0.25 + 0.5) / 5)
    # a perfect score closes every gap
    perfect = {"PCC": 1.0, "SSIM": 1.0, "MAE": 0.0, "E_dist": 0.0, "C_dist": 0.0}
    assert fitting.margins(perfect, baselines) == pytest.approx({k: 1.0 for k in perfect})
