"""Generators and discriminator: shapes, parameter counts against hand formulas, losses against
hand calculations, the quantiser's straight-through gradient."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from models.patchgan import GANLoss, PatchDiscriminator, PatchGANConfig, adaptive_gan_weight
from models.pix2pix import Pix2PixConfig, Pix2PixGenerator
from models.quantizer import VectorQuantizer
from models.vqgan import VQGAN, VQGANConfig


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def conv(c_in: int, c_out: int, k: int, bias: bool = True) -> int:
    return c_in * c_out * k * k + (c_out if bias else 0)


# ---------------------------------------------------------------- pix2pix

@pytest.mark.parametrize("size", [(8, 8), (36, 52), (44, 20)])
def test_pix2pix_shapes_on_non_square_sizes(size):
    torch.manual_seed(0)
    model = Pix2PixGenerator(Pix2PixConfig.preset("tiny", in_channels=2)).eval()
    x = torch.randn(2, 2, *size)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (2, 4, *size)
    assert y.abs().max() <= 1.0


@pytest.mark.parametrize("size", [(30, 32), (32, 34), (33, 33)])
def test_pix2pix_rejects_sizes_not_multiple_of_4(size):
    model = Pix2PixGenerator(Pix2PixConfig.preset("tiny"))
    assert model.config.size_divisor == 4
    with pytest.raises(ValueError, match="multiple of 4"):
        model(torch.randn(1, 1, *size))


def test_pix2pix_decoders_are_independent_per_organelle():
    """Channel i comes from decoder i only: silencing decoder 2's last conv zeroes channel 2
    (tanh(0) = 0) and leaves the other channels bit-identical."""
    torch.manual_seed(1)
    model = Pix2PixGenerator(Pix2PixConfig.preset("tiny")).eval()
    x = torch.randn(1, 1, 24, 16)
    with torch.no_grad():
        before = model(x)
        model.decoders[2][-2].weight.zero_()
        model.decoders[2][-2].bias.zero_()
        after = model(x)
    assert torch.equal(after[:, [0, 1, 3]], before[:, [0, 1, 3]])
    assert torch.count_nonzero(after[:, 2]) == 0
    assert model.last_layer_weight(2) is model.decoders[2][-2].weight


def pix2pix_formula(c: Pix2PixConfig) -> int:
    """Parameters of the multi-decoder ResNet generator with instance norm (no affine terms)."""
    g = c.ngf
    block = 2 * conv(4 * g, 4 * g, 3)
    encoder = conv(c.in_channels, g, 7) + conv(g, 2 * g, 3) + conv(2 * g, 4 * g, 3) + c.n_blocks * block
    decoder = c.decoder_blocks * block + conv(4 * g, 2 * g, 3) + conv(2 * g, g, 3) + conv(g, 1, 7)
    return encoder + c.out_channels * decoder


@pytest.mark.parametrize("preset", ["tiny", "small", "paper"])
def test_pix2pix_parameter_counts(preset):
    config = Pix2PixConfig.preset(preset)
    with torch.device("meta"):   # no memory, no init cost for the paper preset
        model = Pix2PixGenerator(config)
    assert n_params(model) == pix2pix_formula(config)
    limits = {"tiny": (0, 1e6), "small": (1e6, 5e6), "paper": (1e7, 1.5e7)}[preset]
    assert limits[0] < n_params(model) < limits[1]
    assert (config.ngf, config.n_blocks) == {"tiny": (8, 2), "small": (32, 6), "paper": (64, 9)}[preset]


def test_pix2pix_batch_norm_drops_conv_bias():
    inst = Pix2PixGenerator(Pix2PixConfig.preset("tiny", norm="instance"))
    batch = Pix2PixGenerator(Pix2PixConfig.preset("tiny", norm="batch"))
    assert inst.encoder[1].bias is not None
    assert batch.encoder[1].bias is None                 # BatchNorm's shift replaces it
    assert batch.decoders[0][-2].bias is not None        # the output conv has no norm after it
    with pytest.raises(ValueError, match="unknown norm"):
        Pix2PixGenerator(Pix2PixConfig.preset("tiny", norm="layer"))


def test_presets_reject_unknown_names():
    for cls in (Pix2PixConfig, VQGANConfig, PatchGANConfig):
        with pytest.raises(ValueError, match="unknown"):
            cls.preset("huge")


# ---------------------------------------------------------------- PatchGAN and losses

def patchgan_formula(c: PatchGANConfig) -> int:
    total, ch = conv(c.in_channels, c.ndf, 4), c.ndf
    for n in range(1, c.n_layers + 1):
        out = c.ndf * min(2 ** n, 8)
        total += conv(ch, out, 4, bias=False) + 2 * out   # batch norm: weight + bias
        ch = out
    return total + conv(ch, 1, 4)


@pytest.mark.parametrize("preset", ["tiny", "small", "paper"])
def test_patchgan_counts_and_shape(preset):
    config = PatchGANConfig.preset(preset, in_channels=2)
    disc = PatchDiscriminator(config)
    assert n_params(disc) == patchgan_formula(config)
    h, w = 64, 96
    out = disc(torch.randn(2, 2, h, w))
    # stride-2 k4 p1 convs halve; the two final stride-1 k4 p1 convs each remove one pixel.
    n = config.n_layers
    assert out.shape == (2, 1, h // 2 ** n - 2, w // 2 ** n - 2)


def test_gan_loss_values_by_hand():
    zeros, twos = torch.zeros(3, 1, 4, 4), torch.full((3, 1, 4, 4), 2.0)
    vanilla = GANLoss("vanilla")
    assert vanilla.generator_loss(zeros).item() == pytest.approx(math.log(2))
    # real logit 2: -log(sigmoid(2)); fake logit 0: -log(1 - 0.5)
    expected = 0.5 * (math.log1p(math.exp(-2.0)) + math.log(2))
    assert vanilla.discriminator_loss(twos, zeros).item() == pytest.approx(expected, rel=1e-6)

    lsgan = GANLoss("lsgan")
    assert lsgan.generator_loss(torch.full((2, 1, 3, 3), 0.5)).item() == pytest.approx(0.25)
    assert lsgan.discriminator_loss(twos, zeros).item() == pytest.approx(0.5 * (1.0 + 0.0))

    hinge = GANLoss("hinge")
    assert hinge.generator_loss(twos).item() == pytest.approx(-2.0)
    assert hinge.discriminator_loss(zeros, zeros).item() == pytest.approx(1.0)
    assert hinge.discriminator_loss(twos, -twos).item() == pytest.approx(0.0)
    real, fake = torch.tensor([0.5, 3.0]), torch.tensor([-0.5, 0.25])
    assert hinge.discriminator_loss(real, fake).item() == pytest.approx(0.5 * (0.25 + 0.875))

    with pytest.raises(ValueError, match="unknown GAN loss"):
        GANLoss("wgan")


def test_gan_loss_labels_are_buffers():
    loss = GANLoss("vanilla", real_label=0.9)
    assert {name for name, _ in loss.named_buffers()} == {"real_label", "fake_label"}
    logits = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
    loss = loss.double()
    # smoothed label 0.9: BCE(0, 0.9) = log 2 for any label (sigmoid(0) = 0.5)
    value = loss.generator_loss(logits)
    assert value.dtype == torch.float64
    assert value.item() == pytest.approx(math.log(2))


def test_adaptive_gan_weight_is_ratio_of_gradient_norms():
    w = nn.Parameter(torch.tensor([1.0, -2.0, 0.5]))
    a, b = torch.tensor([3.0, 0.0, 4.0]), torch.tensor([0.0, 0.1, 0.0])
    rec = (w * a).sum()     # gradient a, norm 5
    gan = (w * b).sum()     # gradient b, norm 0.1
    weight = adaptive_gan_weight(rec, gan, w)
    assert weight.item() == pytest.approx(5.0 / (0.1 + 1e-4), rel=1e-6)
    assert not weight.requires_grad
    capped = adaptive_gan_weight((w * a).sum(), (w * 1e-9).sum(), w, max_weight=10.0)
    assert capped.item() == 10.0


def test_adaptive_weight_works_through_a_generator():
    torch.manual_seed(2)
    model = Pix2PixGenerator(Pix2PixConfig.preset("tiny"))
    disc = PatchDiscriminator(PatchGANConfig.preset("tiny", in_channels=1))
    x, y = torch.randn(1, 1, 32, 32), torch.rand(1, 4, 32, 32) * 2 - 1
    out = model(x)
    rec = (out - y).abs().mean()
    gan = GANLoss("hinge").generator_loss(disc(out[:, :1]))
    weight = adaptive_gan_weight(rec, gan, model.last_layer_weight(0))
    assert 0 < weight.item() < 1e4
    (rec + weight * gan).backward()   # graph still usable after the weight was computed


# ---------------------------------------------------------------- vector quantiser

def make_quantizer(beta=0.25, legacy=False, **kw) -> VectorQuantizer:
    q = VectorQuantizer(4, 2, beta, legacy_beta=legacy, **kw)
    with torch.no_grad():
        q.embedding.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [-1.0, 2.0], [5.0, 5.0]]))
    return q


def z_example() -> torch.Tensor:
    # [1, 2, 2, 2]: vectors (0.1, 0.2), (0.9, 1.3), (-0.8, 1.7), (0.2, -0.1) at the 4 positions
    vectors = torch.tensor([[0.1, 0.2], [0.9, 1.3], [-0.8, 1.7], [0.2, -0.1]])
    return vectors.T.reshape(1, 2, 2, 2).clone().requires_grad_(True)


def test_quantizer_picks_nearest_code_and_loss_by_hand():
    q = make_quantizer(beta=0.25)
    z = z_example()
    z_q, loss, stats = q(z)
    vectors = z.detach().permute(0, 2, 3, 1).reshape(-1, 2).numpy()
    codes = q.embedding.weight.detach().numpy()
    nearest = np.argmin(((vectors[:, None, :] - codes[None]) ** 2).sum(-1), axis=1)
    assert nearest.tolist() == [0, 1, 2, 0]
    assert stats["indices"].flatten().tolist() == nearest.tolist()
    expected_q = codes[nearest]
    np.testing.assert_allclose(z_q.detach().permute(0, 2, 3, 1).reshape(-1, 2).numpy(), expected_q,
                               rtol=0, atol=1e-7)
    mse = ((vectors - expected_q) ** 2).mean()
    # Both terms have the same value ||z - z_q||² (they differ only in where gradients go).
    assert loss.item() == pytest.approx((1 + 0.25) * mse, rel=1e-6)
    # 4 positions using codes {0: 2, 1: 1, 2: 1} -> p = (.5, .25, .25)
    p = np.array([0.5, 0.25, 0.25])
    assert stats["perplexity"].item() == pytest.approx(math.exp(-(p * np.log(p)).sum()), rel=1e-6)
    assert stats["usage"].item() == pytest.approx(3 / 4)


@pytest.mark.parametrize("legacy", [False, True])
def test_quantizer_beta_weights_the_right_term(legacy):
    """d loss/d z comes only from the commitment term ||z - sg[z_q]||², d loss/d codes only from
    the codebook term ||sg[z] - z_q||². beta multiplies the commitment term, or in taming's
    legacy placement the codebook term."""
    beta = 0.25
    q = make_quantizer(beta=beta, legacy=legacy)
    z = z_example()
    _, loss, stats = q(z)
    loss.backward()
    z_q = q.embedding.weight.detach()[stats["indices"].flatten()]            # [4, 2]
    z_flat = z.detach().permute(0, 2, 3, 1).reshape(-1, 2)
    n = z_flat.numel()
    commit_scale, codebook_scale = (1.0, beta) if legacy else (beta, 1.0)
    grad_z = commit_scale * 2 * (z_flat - z_q) / n
    torch.testing.assert_close(z.grad.permute(0, 2, 3, 1).reshape(-1, 2), grad_z)
    grad_codes = torch.zeros(4, 2).index_add_(0, stats["indices"].flatten(),
                                              codebook_scale * 2 * (z_q - z_flat) / n)
    torch.testing.assert_close(q.embedding.weight.grad, grad_codes)


def test_quantizer_straight_through_gradient():
    q = make_quantizer()
    z = z_example()
    z_q, _, _ = q(z)
    upstream = torch.arange(8.0).reshape(1, 2, 2, 2)
    (z_q * upstream).sum().backward()
    assert torch.equal(z.grad, upstream)          # copied through unchanged
    assert q.embedding.weight.grad is None or torch.count_nonzero(q.embedding.weight.grad) == 0


def test_quantizer_nearest_is_fp32_under_autocast():
    torch.manual_seed(3)
    q = VectorQuantizer(512, 3)
    with torch.no_grad():
        q.embedding.weight.normal_()
    z = torch.randn(1, 3, 16, 16)
    _, _, ref = q(z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, _, amp = q(z)
    assert torch.equal(ref["indices"], amp["indices"])


def test_quantizer_reseeds_dead_codes_in_training_only():
    q = make_quantizer(reseed_threshold=0.5)
    z = z_example()
    q.eval()
    q(z)
    assert torch.equal(q.embedding.weight[3], torch.tensor([5.0, 5.0]))
    q.train()
    q.usage_ema[3] = 0.0                   # code 3 (5, 5) has not been used for a long time
    _, _, stats = q(z)
    moved = q.embedding.weight[3].detach()
    vectors = z.detach().permute(0, 2, 3, 1).reshape(-1, 2)
    assert any(torch.equal(moved, v) for v in vectors)   # now sits on an encoder output
    assert q.usage_ema[3] > 0.5


# ---------------------------------------------------------------- VQGAN

@pytest.mark.parametrize("size", [(4, 4), (20, 36), (52, 28)])
def test_vqgan_shapes_any_channels(size):
    torch.manual_seed(4)
    model = VQGAN(VQGANConfig.preset("tiny", in_channels=3, out_channels=2)).eval()
    x = torch.randn(2, 3, *size)
    with torch.no_grad():
        y = model(x)
        y2, loss, stats = model.forward_with_losses(x)
    assert y.shape == (2, 2, *size)
    assert y.abs().max() <= 1.0
    assert torch.equal(y, y2)                    # eval is deterministic
    assert loss.ndim == 0 and loss.item() >= 0
    assert 1.0 <= stats["perplexity"].item() <= model.config.n_embed
    assert 0 < stats["usage"].item() <= 1
    assert model.encode(x).shape == (2, 3, size[0] // 4, size[1] // 4)


@pytest.mark.parametrize("family", ["pix2pix", "vqgan"])
def test_bf16_autocast_forward_close_to_fp32(family):
    torch.manual_seed(6)
    model = (Pix2PixGenerator(Pix2PixConfig.preset("tiny")) if family == "pix2pix"
             else VQGAN(VQGANConfig.preset("tiny"))).eval()
    x = torch.randn(1, 1, 32, 48)
    with torch.inference_mode():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x)
    assert low.shape == ref.shape and torch.isfinite(low).all()
    assert (low.float() - ref).abs().max() < 0.1     # bf16 keeps ~3 significant digits


def test_vqgan_rejects_bad_sizes_and_channels():
    model = VQGAN(VQGANConfig.preset("tiny"))
    assert model.config.size_divisor == 4
    with pytest.raises(ValueError, match="multiple of 4"):
        model(torch.randn(1, 1, 30, 32))
    with pytest.raises(ValueError, match=r"\[B, 1, H, W\]"):
        model(torch.randn(1, 3, 32, 32))
    assert VQGANConfig.preset("tiny", ch_mult=(1, 2, 2, 4)).size_divisor == 8


def test_vqgan_training_step_reaches_encoder_and_codebook():
    torch.manual_seed(5)
    model = VQGAN(VQGANConfig.preset("tiny"))
    x = torch.randn(2, 1, 16, 16)
    y, codebook_loss, _ = model.forward_with_losses(x)
    ((y - x.tanh()).abs().mean() + codebook_loss).backward()
    for part in (model.encoder, model.decoder, model.quant_conv):
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in part.parameters())
    assert model.quantizer.embedding.weight.grad.abs().sum() > 0
    assert model.last_layer_weight() is model.decoder.conv_out.weight


def vqgan_formula(c: VQGANConfig) -> tuple[int, int, int]:
    """(encoder, decoder, total) parameters of taming's layout, counted by hand."""
    def gn(ch):
        return 2 * ch

    def res(i, o):
        return gn(i) + conv(i, o, 3) + gn(o) + conv(o, o, 3) + (conv(i, o, 1) if i != o else 0)

    def middle(ch):
        attn = gn(ch) + 4 * conv(ch, ch, 1) if c.attention else 0
        return 2 * res(ch, ch) + attn

    chans = [c.ch * m for m in c.ch_mult]
    enc, ch = conv(c.in_channels, c.ch, 3), c.ch
    for level, out in enumerate(chans):
        for _ in range(c.num_res_blocks):
            enc, ch = enc + res(ch, out), out
        if level < len(chans) - 1:
            enc += conv(ch, ch, 3)
    enc += middle(ch) + gn(ch) + conv(ch, c.z_channels, 3)

    dec, ch = conv(c.z_channels, chans[-1], 3) + middle(chans[-1]), chans[-1]
    for level in reversed(range(len(chans))):
        for _ in range(c.num_res_blocks + 1):
            dec, ch = dec + res(ch, chans[level]), chans[level]
        if level > 0:
            dec += conv(ch, ch, 3)
    dec += gn(ch) + conv(ch, c.out_channels, 3)
    quant = conv(c.z_channels, c.embed_dim, 1) + conv(c.embed_dim, c.z_channels, 1) \
        + c.n_embed * c.embed_dim
    return enc, dec, enc + dec + quant


@pytest.mark.parametrize("preset", ["tiny", "small", "paper"])
def test_vqgan_parameter_counts(preset):
    config = VQGANConfig.preset(preset)
    with torch.device("meta"):
        model = VQGAN(config)
    enc, dec, total = vqgan_formula(config)
    assert n_params(model.encoder) == enc and n_params(model.decoder) == dec
    assert n_params(model) == total
    limits = {"tiny": (0, 1e6), "small": (1e6, 1e7), "paper": (5e7, 6e7)}[preset]
    assert limits[0] < total < limits[1]
    if preset != "tiny":   # tiny is dominated by stem/output convs; the 1.5x rule is for real sizes
        assert 1.4 < dec / enc < 1.6


def test_vqgan_paper_preset_matches_58_1_million():
    """The paper: 'Each VQGAN model has 58.1 million trainable parameters', 1.5x decoder.
    Generator (ch 128, ch_mult 1,2,4, codebook 8192 x 3, 1 TL in, 1 organelle out) plus its
    PatchGAN discriminator (ndf 64, 3 layers) gives that number."""
    config = VQGANConfig.preset("paper")
    assert (config.ch, config.ch_mult, config.n_embed, config.embed_dim) == (128, (1, 2, 4), 8192, 3)
    with torch.device("meta"):
        generator = VQGAN(config)
        disc = PatchDiscriminator(PatchGANConfig.preset("paper", in_channels=1))
    total = n_params(generator) + n_params(disc)
    assert abs(total - 58.1e6) / 58.1e6 < 0.01
    assert abs(n_params(generator.decoder) / n_params(generator.encoder) - 1.5) < 0.05
