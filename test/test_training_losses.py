"""training/losses.py: partial-label L1, GAN terms and the VQGAN objective."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.patchgan import GANLoss, PatchDiscriminator, PatchGANConfig
from models.pix2pix import Pix2PixConfig, Pix2PixGenerator
from training.losses import (
    generator_objective,
    partial_discriminator_gan,
    partial_generator_gan,
    partial_l1,
    partial_pcc_loss,
    partial_ssim_loss,
    percentile_weights,
)


def test_weights_are_one_inside_the_normalised_percentile_range():
    t = torch.tensor([-1.5, -1.0, 0.0, 1.0, 1.01, 3.0])
    assert percentile_weights(t).tolist() == pytest.approx([0.1, 1.0, 1.0, 1.0, 0.1, 0.1])


def test_partial_l1_matches_a_numpy_computation():
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(3, 4, 5, 5, generator=g) * 2 - 1
    target = torch.randn(3, 4, 5, 5, generator=g)
    target[0, 1] = float("nan")        # a placeholder where there is no GT must not leak in
    mask = torch.tensor([[True, False, False, True], [False, True, False, False],
                         [False, False, False, True]])
    p, t, m = pred.numpy(), target.numpy(), mask.numpy()
    per_pair = []
    for b, k in zip(*np.nonzero(m)):
        w = np.where((t[b, k] >= -1) & (t[b, k] <= 1), 1.0, 0.1)
        per_pair.append(np.mean(w * np.abs(p[b, k] - t[b, k])))
    assert float(partial_l1(pred, target, mask)) == pytest.approx(np.mean(per_pair), rel=1e-6)
    plain = np.mean([np.mean(np.abs(p[b, k] - t[b, k])) for b, k in zip(*np.nonzero(m))])
    assert float(partial_l1(pred, target, mask, weighted=False)) == pytest.approx(plain, rel=1e-6)
    none = torch.zeros(3, 4, dtype=torch.bool)
    assert float(partial_l1(pred.requires_grad_(), target, none).detach()) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        partial_l1(pred, target[:, :3], mask)


def _discriminators(n: int) -> torch.nn.ModuleList:
    return torch.nn.ModuleList(PatchDiscriminator(PatchGANConfig.preset("tiny", in_channels=2))
                               for _ in range(n))


def test_partial_pcc_loss_is_one_minus_scipy_pearson_over_the_structured_pairs():
    from scipy.stats import pearsonr
    g = torch.Generator().manual_seed(1)
    pred = torch.randn(2, 4, 6, 6, generator=g)
    target = torch.randn(2, 4, 6, 6, generator=g)
    target[0, 2] = float("nan")              # no GT: must not leak in
    target[1, 0] = -1.0                      # GT, but a flat background crop: left out
    mask = torch.tensor([[True, False, False, True], [True, True, False, False]])
    p, t = pred.numpy(), target.numpy()
    expected = [1 - pearsonr(p[b, k].ravel(), t[b, k].ravel())[0] for b, k in ((0, 0), (0, 3), (1, 1))]
    assert float(partial_pcc_loss(pred, target, mask)) == pytest.approx(np.mean(expected), rel=1e-5)
    # brightness and offset of the prediction do not matter, only where the structure is
    assert float(partial_pcc_loss(3 * pred + 2, target, mask)) == pytest.approx(np.mean(expected), rel=1e-5)
    flat_only = torch.zeros(2, 4, dtype=torch.bool)
    flat_only[1, 0] = True
    leaf = pred.clone().requires_grad_()
    loss = partial_pcc_loss(leaf, target, flat_only)
    loss.backward()
    assert float(loss) == 0.0 and float(leaf.grad.abs().sum()) == 0.0


def test_partial_ssim_loss_is_one_minus_skimage_gaussian_ssim():
    from skimage.metrics import structural_similarity
    g = torch.Generator().manual_seed(2)
    target = torch.rand(2, 4, 24, 28, generator=g) * 2 - 1
    pred = 0.6 * target + 0.4 * torch.randn(2, 4, 24, 28, generator=g)
    target[1, 3] = float("nan")                # no GT: must not leak in
    mask = torch.tensor([[True, False, True, False], [False, True, False, False]])
    expected = [1 - structural_similarity(pred[b, k].numpy(), target[b, k].numpy(), data_range=2.0,
                                          gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
                for b, k in ((0, 0), (0, 2), (1, 1))]
    assert float(partial_ssim_loss(pred, target, mask)) == pytest.approx(np.mean(expected), rel=1e-4)
    assert float(partial_ssim_loss(target.nan_to_num(), target.nan_to_num(), mask)) == pytest.approx(0.0, abs=1e-6)
    leaf = pred.clone().requires_grad_()
    partial_ssim_loss(leaf, target, mask).backward()
    assert float(leaf.grad[1, 3].abs().sum()) == 0.0 and float(leaf.grad[0, 0].abs().sum()) > 0.0


def test_missing_organelles_get_zero_gradient_everywhere():
    """Actin (3) and tubulin (2) have no GT in the batch: their decoders and discriminators get
    exactly zero gradient from L1 + GAN; the labelled ones get a real gradient."""
    torch.manual_seed(0)
    model = Pix2PixGenerator(Pix2PixConfig.preset("tiny"))
    discs = _discriminators(4)
    gan = GANLoss("vanilla")
    x = torch.randn(3, 1, 32, 32)
    target = torch.randn(3, 4, 32, 32)
    mask = torch.tensor([[True, False, False, False], [True, True, False, False],
                         [False, True, False, False]])
    fake = model(x)
    discs.requires_grad_(False)
    loss = 100 * partial_l1(fake, target, mask) + partial_generator_gan(discs, gan, x, fake, mask)
    loss.backward()
    for k, decoder in enumerate(model.decoders):
        grads = [p.grad for p in decoder.parameters()]
        if k in (2, 3):
            assert all(g is None or not g.any() for g in grads), f"decoder {k} moved"
        else:
            assert any(g is not None and g.abs().sum() > 0 for g in grads)
    discs.requires_grad_(True)
    d_loss = partial_discriminator_gan(discs, gan, x, fake, target, mask)
    d_loss.backward()
    assert model.decoders[0][-2].weight.grad is not None   # unchanged by the D step (fake detached)
    for k, disc in enumerate(discs):
        grads = [p.grad for p in disc.parameters()]
        if k in (2, 3):
            assert all(g is None or not g.any() for g in grads)
        else:
            assert all(g is not None and g.abs().sum() > 0 for g in grads)


def test_discriminator_loss_is_the_sum_of_per_organelle_losses():
    torch.manual_seed(1)
    discs = _discriminators(2)
    gan = GANLoss("lsgan")
    x, fake, real = torch.randn(4, 1, 32, 32), torch.randn(4, 2, 32, 32), torch.randn(4, 2, 32, 32)
    mask = torch.tensor([[True, False], [True, True], [False, True], [False, False]])
    total = partial_discriminator_gan(discs, gan, x, fake, real, mask)
    expected = 0.0
    for k in range(2):
        rows = mask[:, k]
        r = discs[k](torch.cat([x[rows], real[rows, k:k + 1]], 1))
        f = discs[k](torch.cat([x[rows], fake[rows, k:k + 1]], 1))
        expected += 0.5 * (((r - 1) ** 2).mean() + (f ** 2).mean())
    assert float(total.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)


def test_vqgan_objective_uses_the_gradient_ratio_at_the_last_layer():
    torch.manual_seed(2)
    last = torch.nn.Parameter(torch.randn(3, 3))
    h = torch.randn(3)
    rec = (last @ h).abs().sum()
    gan = -(last @ h).sum() * 7.0
    codebook = torch.tensor(0.3)
    total, d = generator_objective(rec, codebook, gan, last, codebook_weight=2.0, disc_weight=0.5)
    g_rec = torch.autograd.grad(rec, last, retain_graph=True)[0]
    g_gan = torch.autograd.grad(gan, last, retain_graph=True)[0]
    ratio = float(g_rec.norm() / (g_gan.norm() + 1e-4))
    assert float(d) == pytest.approx(0.5 * ratio, rel=1e-5)
    with torch.no_grad():
        assert float(total) == pytest.approx(float(rec) + 0.6 + 0.5 * ratio * float(gan), rel=1e-5)
    before, d0 = generator_objective(rec, codebook, None, last, codebook_weight=2.0, disc_weight=0.5)
    with torch.no_grad():
        assert float(d0) == 0.0 and float(before) == pytest.approx(float(rec) + 0.6)
