"""The pix2pix decoders' upsampling (models/pix2pix.py, upsample) and the warm-start conversion
from transposed convs (training/convert_upsampling.py).

A stride-2 3×3 transposed conv gives one output pixel in four one tap per axis and the others two
(the checkerboard); a nearest ×2 and a 3×3 conv give every pixel all nine, but its 2×2 blocks still
bend a smooth ramp into steps; a bilinear ×2 and the same conv keep the ramp straight.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from models.checkpoint import CheckpointSpec, load_checkpoint, save_checkpoint
from models.pix2pix import Pix2PixConfig, Pix2PixGenerator, resize_state_from_transpose
from training.convert_upsampling import convert, main


def _decoder_on_flat_features(upsample: str) -> torch.Tensor:
    torch.manual_seed(0)
    model = Pix2PixGenerator(Pix2PixConfig.preset("tiny", upsample=upsample, norm="none")).eval()
    features = torch.full((1, model.config.ngf * 4, 16, 16), 0.5)
    with torch.no_grad():
        return model.decoders[0](features)[0, 0]


def test_resize_upsampling_has_no_parity_pattern_and_transpose_has_one():
    inner = (slice(8, -8), slice(8, -8))            # away from the borders' padding
    resize = _decoder_on_flat_features("resize")[inner]
    assert float(resize.max() - resize.min()) < 1e-6
    transpose = _decoder_on_flat_features("transpose")[inner]
    parity_means = [float(transpose[i::2, j::2].mean()) for i in (0, 1) for j in (0, 1)]
    assert max(parity_means) - min(parity_means) > 1e-3       # the checkerboard


def _ramp_step_phases(upsample: str) -> tuple[list[float], float]:
    """The decoder's response to features that rise linearly along x: the mean first difference
    at each output phase mod 4 (the two ×2 upsamplings' period) and the mean |difference|."""
    torch.manual_seed(0)
    model = Pix2PixGenerator(Pix2PixConfig.preset("tiny", upsample=upsample, norm="none")).eval()
    ramp = torch.linspace(0, 0.5, 16).view(1, 1, 1, 16).expand(1, model.config.ngf * 4, 16, 16)
    with torch.no_grad():
        out = model.decoders[0](ramp.contiguous())[0, 0, 16:-16, 16:-16]   # away from the padding
    steps = out[:, 1:] - out[:, :-1]
    return [float(steps[:, phase::4].mean()) for phase in range(4)], float(steps.abs().mean())


def test_bilinear_upsampling_keeps_a_ramp_straight_where_nearest_leaves_steps():
    bilinear, scale = _ramp_step_phases("bilinear")
    assert max(bilinear) - min(bilinear) < 0.05 * scale        # the same step at every phase
    nearest, scale = _ramp_step_phases("resize")
    assert max(nearest) - min(nearest) > 1.0 * scale           # the 2×2 blocks' staircase


def test_the_conversion_keeps_the_parities_mean_response_to_a_flat_input():
    torch.manual_seed(1)
    up = nn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1, bias=False)
    conv = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1), nn.Conv2d(8, 4, 3, bias=False))
    # One layer by hand, as resize_state_from_transpose converts it (the full model: below).
    conv[2].weight.data = up.weight.detach().transpose(0, 1).flip(2, 3) * 0.25
    x = torch.randn(1, 8, 1, 1).expand(1, 8, 12, 12)
    with torch.no_grad():
        a, b = up(x)[..., 4:-4, 4:-4], conv(x)[..., 4:-4, 4:-4]
    parity_mean = torch.stack([a[..., i::2, j::2].mean((-1, -2)) for i in (0, 1) for j in (0, 1)]).mean(0)
    torch.testing.assert_close(b.mean((-1, -2)), parity_mean, rtol=1e-5, atol=1e-6)


def test_a_converted_state_loads_strictly_into_a_resize_generator():
    torch.manual_seed(2)
    source = Pix2PixGenerator(Pix2PixConfig.preset("tiny", out_channels=2))
    state = resize_state_from_transpose(source.state_dict(), source.config)
    target = Pix2PixGenerator(Pix2PixConfig.preset("tiny", out_channels=2, upsample="resize"))
    target.load_state_dict(state)                    # strict: every key and shape
    for key, value in source.state_dict().items():
        if key.startswith("encoder."):               # the shared encoder is kept as it is
            torch.testing.assert_close(target.state_dict()[key], value, rtol=0, atol=0)
    with pytest.raises(KeyError, match="missing"):
        resize_state_from_transpose({k: v for k, v in source.state_dict().items() if "decoders.1" not in k},
                                    source.config)
    bilinear = Pix2PixGenerator(Pix2PixConfig.preset("tiny", out_channels=2, upsample="bilinear"))
    bilinear.load_state_dict(state)                  # the same layout as "resize"
    with pytest.raises(ValueError, match="upsample"):
        Pix2PixConfig.preset("tiny", upsample="bicubic")


def _shipped_like(tmp_path, arch_model, arch: str):
    spec = CheckpointSpec(arch=arch, config=dataclasses.asdict(arch_model.config),
                          organelles=("nucleus",) if arch == "vqgan" else ("nucleus", "mitochondria", "tubulin", "actin"),
                          modalities=("PC",), input_norm={"kind": "percentile", "low": 2.0, "high": 99.8},
                          pixel_size_um=0.2, note="toy", output_calibration={})
    path = tmp_path / f"{arch}.pt"
    save_checkpoint(path, arch_model, spec)
    return path


def test_the_command_writes_a_resize_checkpoint_and_refuses_others(tmp_path, capsys):
    from models.vqgan import VQGAN, VQGANConfig

    source = _shipped_like(tmp_path, Pix2PixGenerator(Pix2PixConfig.preset("tiny")), "pix2pix")
    convert(source, tmp_path / "converted.pt")
    loaded = load_checkpoint(tmp_path / "converted.pt")
    assert loaded.spec.config["upsample"] == "resize" and "warm start only" in loaded.spec.note
    with torch.no_grad():
        assert loaded.model(torch.zeros(1, 1, 32, 32)).shape == (1, 4, 32, 32)
    vq = _shipped_like(tmp_path, VQGAN(VQGANConfig.preset("tiny")), "vqgan")
    assert main(["--source", str(vq), "--out", str(tmp_path / "no.pt")]) == 2
    assert "not a pix2pix with transposed-conv upsampling" in capsys.readouterr().err
    assert main(["--source", str(tmp_path / "converted.pt"), "--out", str(tmp_path / "again.pt")]) == 2
    assert main(["--source", str(source), "--out", str(tmp_path / "bilinear.pt"), "--upsample", "bilinear"]) == 0
    bilinear = load_checkpoint(tmp_path / "bilinear.pt")
    assert bilinear.spec.config["upsample"] == "bilinear" and "bilinear convs" in bilinear.spec.note
    torch.testing.assert_close(bilinear.model.state_dict(), loaded.model.state_dict(), rtol=0, atol=0)
    with pytest.raises(ValueError, match="upsample"):
        convert(source, tmp_path / "no.pt", upsample="transpose")


@pytest.mark.parametrize("upsample", ["resize", "bilinear"])
def test_resize_upsampling_exports_to_onnx_within_1e_4(upsample):
    ort = pytest.importorskip("onnxruntime")
    from inference.onnx_backend import export_onnx

    torch.manual_seed(3)
    model = Pix2PixGenerator(Pix2PixConfig.preset("tiny", upsample=upsample)).eval()
    session = ort.InferenceSession(export_onnx(model, 1, 64), providers=["CPUExecutionProvider"])
    for shape in [(2, 1, 64, 64), (1, 1, 96, 128)]:
        x = torch.randn(*shape)
        with torch.no_grad():
            expected = model(x).numpy()
        assert abs(session.run(None, {"x": x.numpy()})[0] - expected).max() < 1e-4
