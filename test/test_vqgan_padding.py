"""The VQGAN's border handling (models/vqgan.py, padding_mode).

With zero padding a network can tell a window's corner from its interior even on a flat input,
and the first shipped actin VQGAN learned to paint +1 there (the BF actin corner saturation of
issue 17). Replicate padding makes a flat field look the same everywhere, so the output of a flat
input is flat whatever the weights; the weights themselves are the same tensors either way.
"""
from __future__ import annotations

import pytest
import torch

from models.registry import build_model
from models.vqgan import VQGAN, VQGANConfig


def _flat_output(model: VQGAN, size: int = 64, value: float = 0.3) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(torch.full((1, 1, size, size), value))[0, 0]


@pytest.mark.parametrize("size", [16, 64, 96])
def test_replicate_padding_maps_a_flat_input_to_a_flat_output(size):
    torch.manual_seed(0)
    y = _flat_output(VQGAN(VQGANConfig.preset("tiny", padding_mode="replicate")), size)
    assert float(y.max() - y.min()) == 0.0


def test_zero_padding_singles_out_the_border_of_a_flat_input():
    # What the replicate mode removes: the same random weights, zero-padded, vary at the border.
    torch.manual_seed(0)
    zeros = VQGAN(VQGANConfig.preset("tiny"))
    y = _flat_output(zeros)
    assert float(y.max() - y.min()) > 1e-3
    replicate = VQGAN(VQGANConfig.preset("tiny", padding_mode="replicate"))
    replicate.load_state_dict(zeros.state_dict())          # same tensors, same keys
    y = _flat_output(replicate)
    assert float(y.max() - y.min()) == 0.0


def test_padding_mode_is_validated_and_defaults_for_older_checkpoints(tmp_path):
    with pytest.raises(ValueError, match="padding_mode"):
        VQGANConfig.preset("tiny", padding_mode="reflect101")
    # A checkpoint written before the field existed (every zero-padded one) reads as "zeros".
    config = {k: v for k, v in VQGANConfig.preset("tiny").__dict__.items() if k != "padding_mode"}
    assert build_model("vqgan", config).config.padding_mode == "zeros"


def test_replicate_padding_exports_to_onnx_within_1e_4():
    ort = pytest.importorskip("onnxruntime")
    from inference.onnx_backend import export_onnx

    torch.manual_seed(0)
    model = VQGAN(VQGANConfig.preset("tiny", padding_mode="replicate")).eval()
    session = ort.InferenceSession(export_onnx(model, 1, 64), providers=["CPUExecutionProvider"])
    for shape in [(2, 1, 64, 64), (1, 1, 96, 128)]:     # batch and tile sides stay dynamic
        x = torch.randn(*shape)
        with torch.no_grad():
            expected = model(x).numpy()
        assert abs(session.run(None, {"x": x.numpy()})[0] - expected).max() < 1e-4


def test_a_warm_start_may_change_the_padding_but_nothing_else(tmp_path):
    """A zero-padded checkpoint initialises a replicate-padded run (same tensors); a config
    written before padding_mode existed compares equal to one with the default; any other
    difference is still refused, naming the file."""
    from dataclasses import asdict

    from training.trainer import WARM_START_MAY_CHANGE, _check_same_model

    zeros = asdict(VQGANConfig.preset("tiny"))
    old_file = {k: v for k, v in zeros.items() if k != "padding_mode"}
    state = {"arch": "vqgan", "model_config": old_file}
    path = tmp_path / "best.pt"
    _check_same_model(path, state, "vqgan", zeros)       # resume: the missing field is its default
    replicate = asdict(VQGANConfig.preset("tiny", padding_mode="replicate"))
    with pytest.raises(ValueError, match="best.pt"):
        _check_same_model(path, state, "vqgan", replicate)
    _check_same_model(path, state, "vqgan", replicate, may_differ=WARM_START_MAY_CHANGE)
    with pytest.raises(ValueError, match="cannot initialise"):
        _check_same_model(path, state, "vqgan", asdict(VQGANConfig.preset("tiny", ch=8, padding_mode="replicate")),
                          why="cannot initialise from it: ", may_differ=WARM_START_MAY_CHANGE)
