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


def partial_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, *,
               weighted: bool = True) -> torch.Tensor:
    """Mean over the (sample, organelle) pairs that have GT of their pixel-mean weighted L1.

    pred, target: [B, K, H, W]; mask: [B, K] bool. Pairs without GT are indexed away (not
    multiplied by zero), so a NaN or garbage placeholder in their target cannot leak in either.
    Returns 0 (with a graph) when nothing in the batch has GT.
    """
    if pred.shape != target.shape or mask.shape != pred.shape[:2]:
        raise ValueError(f"shapes differ: pred {tuple(pred.shape)}, target {tuple(target.shape)}, "
                         f"mask {tuple(mask.shape)}")
    if not bool(mask.any()):
        return pred.sum() * 0.0
    p, t = pred[mask].float(), target[mask].float()          # [N, H, W]
    error = (p - t).abs()
    if weighted:
        error = error * percentile_weights(t)
    return error.mean()


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
