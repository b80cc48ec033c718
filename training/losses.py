"""Losses for partial labels: pixel loss and GAN terms only where ground truth exists.

Adaptive loss (seed 001): a FOV has GT for 1-3 of the 4 organelles. Every (sample, organelle)
pair without GT is removed before any loss is computed, so the missing organelles' decoders (and
discriminators) receive exactly zero gradient from that sample, instead of being pulled toward a
placeholder target.

Weighted L1 (seed 001): weight 1 for target pixels inside [p2, p99.8] of the target image and 0.1
outside, so the saturated background and the brightest 0.2 % do not dominate. Targets here are
already normalised so that the WHOLE image's p2 -> -1 and p99.8 -> +1 (training/dataset.py); the
inside of the range is therefore exactly the pixels with -1 <= target <= 1, and the weights do not
depend on which crop of the image was drawn.
"""
from __future__ import annotations

import torch
from torch import nn

from models.patchgan import GANLoss, PatchDiscriminator, PatchGANConfig, adaptive_gan_weight

INSIDE_WEIGHT = 1.0
OUTSIDE_WEIGHT = 0.1


def percentile_weights(target: torch.Tensor, inside: float = INSIDE_WEIGHT,
                       outside: float = OUTSIDE_WEIGHT) -> torch.Tensor:
    """`inside` where the normalised target lies in [-1, 1] (= [p2, p99.8]), `outside` elsewhere."""
    within = (target >= -1.0) & (target <= 1.0)
    return torch.where(within, torch.full_like(target, inside), torch.full_like(target, outside))


def _labelled_pairs(pred: torch.Tensor, target: torch.Tensor,
                    mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The (sample, organelle) pairs that have GT, as float [N, H, W] predictions and targets, or
    None when the batch has none. pred, target: [B, K, H, W]; mask: [B, K] bool. Pairs without
    GT are indexed away (not multiplied by zero), so a NaN or garbage placeholder in their
    target cannot leak into any partial loss."""
    if pred.shape != target.shape or mask.shape != pred.shape[:2]:
        raise ValueError(f"shapes differ: pred {tuple(pred.shape)}, target {tuple(target.shape)}, "
                         f"mask {tuple(mask.shape)}")
    if not bool(mask.any()):
        return None
    return pred[mask].float(), target[mask].float()


def partial_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, *,
               weighted: bool = True) -> torch.Tensor:
    """Mean over the (sample, organelle) pairs that have GT of their pixel-mean weighted L1.

    pred, target: [B, K, H, W]; mask: [B, K] bool (pairs without GT are indexed away, see
    _labelled_pairs). Returns 0 (with a graph) when nothing in the batch has GT.
    """
    pairs = _labelled_pairs(pred, target, mask)
    if pairs is None:
        return pred.sum() * 0.0
    p, t = pairs
    error = (p - t).abs()
    if weighted:
        error = error * percentile_weights(t)
    return error.mean()


# Below this spread a normalised target crop counts as flat (background only): its Pearson r is
# that of noise, and pulling the prediction toward it would teach the noise.
FLAT_TARGET_STD = 0.05


def partial_pcc_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                     eps: float = 1e-6) -> torch.Tensor:
    """Mean over the (sample, organelle) pairs with GT and a non-flat target of 1 - Pearson r
    of the crop's pixels (the RUNet team's PCC term: it rewards the structure's placement
    whatever its brightness, which L1 alone pays little for when filaments are a small share
    of the pixels).

    pred, target: [B, K, H, W]; mask: [B, K] bool. Returns 0 (with a graph) when no pair counts.
    """
    pairs = _labelled_pairs(pred, target, mask)
    if pairs is None:
        return pred.sum() * 0.0
    p, t = pairs[0].flatten(1), pairs[1].flatten(1)                            # [N, H*W]
    structured = t.std(dim=1) > FLAT_TARGET_STD
    if not bool(structured.any()):
        return pred.sum() * 0.0
    p, t = p[structured], t[structured]
    p = p - p.mean(dim=1, keepdim=True)
    t = t - t.mean(dim=1, keepdim=True)
    r = (p * t).sum(dim=1) / (p.norm(dim=1) * t.norm(dim=1) + eps)
    return (1.0 - r).mean()


SSIM_SIGMA = 1.5          # the Gaussian window of Wang et al. (and skimage's gaussian_weights)
SSIM_RADIUS = 5           # 11 taps: skimage's truncate=3.5 at sigma 1.5
TARGET_RANGE = 2.0        # normalised targets: p2 -> -1, p99.8 -> +1


def _gaussian_blur(x: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filter of [N, 1, H, W], valid part only (no padding enters the SSIM)."""
    taps = torch.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (taps / SSIM_SIGMA) ** 2)
    kernel = kernel / kernel.sum()
    x = torch.nn.functional.conv2d(x, kernel.view(1, 1, -1, 1))
    return torch.nn.functional.conv2d(x, kernel.view(1, 1, 1, -1))


def partial_ssim_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the (sample, organelle) pairs with GT of 1 - SSIM of the crop (Gaussian window,
    sigma 1.5, data range 2 of the normalised targets; the RUNet team's SSIM term). SSIM is half
    of each tubulin and actin score, and L1 alone prefers a haze where a filament may be.

    pred, target: [B, K, H, W] with H, W > 10; mask: [B, K] bool. Returns 0 (with a graph) when
    nothing in the batch has GT.
    """
    pairs = _labelled_pairs(pred, target, mask)
    if pairs is None:
        return pred.sum() * 0.0
    p, t = pairs[0].unsqueeze(1), pairs[1].unsqueeze(1)                        # [N, 1, H, W]
    c1, c2 = (0.01 * TARGET_RANGE) ** 2, (0.03 * TARGET_RANGE) ** 2
    mp, mt = _gaussian_blur(p), _gaussian_blur(t)
    vp = _gaussian_blur(p * p) - mp * mp
    vt = _gaussian_blur(t * t) - mt * mt
    cov = _gaussian_blur(p * t) - mp * mt
    ssim = ((2 * mp * mt + c1) * (2 * cov + c2)) / ((mp * mp + mt * mt + c1) * (vp + vt + c2))
    return (1.0 - ssim.mean(dim=(1, 2, 3))).mean()


def conditional_input(inputs: torch.Tensor, image: torch.Tensor, conditional: bool) -> torch.Tensor:
    """What a discriminator sees: cat(TL, organelle) for a conditional (pix2pix) one, the organelle
    alone for an unconditional (taming VQGAN) one."""
    return torch.cat([inputs, image], dim=1) if conditional else image


def partial_generator_gan(discriminators: nn.ModuleList, gan: GANLoss, inputs: torch.Tensor,
                          fake: torch.Tensor, mask: torch.Tensor, conditional: bool = True
                          ) -> torch.Tensor:
    """Mean over organelles with any GT of GAN-generator loss of discriminator k on those samples."""
    terms = []
    for k, disc in enumerate(discriminators):
        rows = mask[:, k]
        if bool(rows.any()):
            logits = disc(conditional_input(inputs[rows], fake[rows, k:k + 1], conditional))
            terms.append(gan.generator_loss(logits))
    return torch.stack(terms).mean() if terms else fake.sum() * 0.0


def partial_discriminator_gan(discriminators: nn.ModuleList, gan: GANLoss, inputs: torch.Tensor,
                              fake: torch.Tensor, real: torch.Tensor, mask: torch.Tensor,
                              conditional: bool = True) -> torch.Tensor:
    """Sum over organelles with any GT of discriminator k's loss on those samples (fake detached).

    A sum, not a mean: each discriminator has its own parameters, so summing gives each the
    gradient of its own loss, independent of how many others are in the batch.
    """
    total = None
    fake = fake.detach()
    for k, disc in enumerate(discriminators):
        rows = mask[:, k]
        if bool(rows.any()):
            real_logits = disc(conditional_input(inputs[rows], real[rows, k:k + 1], conditional))
            fake_logits = disc(conditional_input(inputs[rows], fake[rows, k:k + 1], conditional))
            loss = gan.discriminator_loss(real_logits, fake_logits)
            total = loss if total is None else total + loss
    if total is None:  # keep every discriminator in the graph (DDP needs a gradient for all)
        total = sum(p.sum() * 0.0 for p in discriminators.parameters())
    return total


def generator_objective(rec_loss: torch.Tensor, codebook_loss: torch.Tensor,
                        gan_loss: torch.Tensor | None, last_layer: torch.Tensor, *,
                        codebook_weight: float, disc_weight: float, adaptive: bool = True,
                        max_weight: float = 1e4) -> tuple[torch.Tensor, torch.Tensor]:
    """(total, effective adversarial weight) of the generator objective both families train with
    (the VQGAN's of seed 000, taming; pix2pix's with no codebook and a fixed weight):

        rec + codebook_weight * codebook + d * disc_weight * gan,

    d = ||grad rec|| / ||grad gan|| at the decoder's last layer (adaptive), or 1. Before the
    discriminator starts, pass gan_loss=None: the term is absent and d = 0.
    """
    total = rec_loss + codebook_weight * codebook_loss
    if gan_loss is None:
        return total, torch.zeros((), device=rec_loss.device)
    d = adaptive_gan_weight(rec_loss, gan_loss, last_layer, max_weight) if adaptive \
        else torch.ones((), device=rec_loss.device)
    d = d * disc_weight
    return total + d * gan_loss, d


class DiscriminatorObjective(nn.Module):
    """One PatchGAN per output organelle and the discriminator loss as `forward`, so DDP can wrap
    it (DDP only synchronises what runs inside a wrapped module's forward)."""

    def __init__(self, n: int, config: PatchGANConfig, mode: str, conditional: bool):
        super().__init__()
        self.discs = nn.ModuleList(PatchDiscriminator(config) for _ in range(n))
        self.gan = GANLoss(mode)
        self.conditional = conditional

    def forward(self, inputs, fake, real, mask) -> torch.Tensor:
        return partial_discriminator_gan(self.discs, self.gan, inputs, fake, real, mask, self.conditional)

    def generator_term(self, inputs, fake, mask) -> torch.Tensor:
        return partial_generator_gan(self.discs, self.gan, inputs, fake, mask, self.conditional)
