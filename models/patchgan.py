"""PatchGAN discriminator, GAN losses and the adaptive GAN weight.

The discriminator is pix2pix's N-layer PatchGAN (70×70 receptive field for 3 layers): it scores
overlapping patches, so it judges texture and leaves global layout to the pixel loss. For a
conditional pix2pix discriminator feed cat(TL, organelle) and set in_channels accordingly; the
VQGAN discriminator (taming-transformers) sees the output image alone.

`adaptive_gan_weight` follows taming-transformers: scale the GAN loss so that its gradient at the
decoder's last layer has the same norm as the reconstruction loss's, which keeps the adversarial
term from swamping (or vanishing against) the L1 term whatever their raw magnitudes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.norms import conv_bias, make_norm
from models.presets import from_preset

_PRESETS: dict[str, dict] = {
    "tiny": dict(ndf=8, n_layers=2),
    "small": dict(ndf=32, n_layers=3),
    "paper": dict(ndf=64, n_layers=3),
}


@dataclass
class PatchGANConfig:
    in_channels: int = 2          # e.g. 1 TL + 1 organelle for a conditional discriminator
    ndf: int = 64
    n_layers: int = 3             # stride-2 convs; 3 gives a 70×70 receptive field
    norm: str = "batch"           # "batch" | "instance" | "none"

    @property
    def size_divisor(self) -> int:
        """Inputs should be multiples of this; the smallest usable side is 4 × this (at least
        one logit per side after the two final stride-1 4×4 convs)."""
        return 2 ** self.n_layers

    @classmethod
    def preset(cls, name: str, **overrides) -> PatchGANConfig:
        return from_preset(cls, _PRESETS, "PatchGAN", name, overrides)


class PatchDiscriminator(nn.Module):
    """x [B, in_channels, H, W] -> patch logits [B, 1, ~H/2^n - 2, ~W/2^n - 2] (no sigmoid)."""

    def __init__(self, config: PatchGANConfig):
        super().__init__()
        self.config = config
        bias = conv_bias(config.norm)
        ndf = config.ndf
        # First layer has no norm: normalising raw images would throw away their intensity.
        layers: list[nn.Module] = [nn.Conv2d(config.in_channels, ndf, 4, 2, 1),
                                   nn.LeakyReLU(0.2, inplace=True)]
        ch = ndf
        for n in range(1, config.n_layers + 1):
            stride = 2 if n < config.n_layers else 1
            out = ndf * min(2 ** n, 8)
            layers += [nn.Conv2d(ch, out, 4, stride, 1, bias=bias), make_norm(config.norm, out),
                       nn.LeakyReLU(0.2, inplace=True)]
            ch = out
        layers.append(nn.Conv2d(ch, 1, 4, 1, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class GANLoss(nn.Module):
    """Adversarial losses on raw logits.

    vanilla: BCE with logits (the original GAN); lsgan: least squares to the labels; hinge:
    max(0, 1 - D(real)) + max(0, 1 + D(fake)) for D and -D(fake) for G. The discriminator loss is
    the mean of its real and fake halves (pix2pix / taming convention). Labels live in buffers so
    they follow the module to the GPU and the logits' dtype without a host->device copy per step.
    """

    MODES = ("vanilla", "lsgan", "hinge")

    def __init__(self, mode: str = "vanilla", real_label: float = 1.0, fake_label: float = 0.0):
        super().__init__()
        if mode not in self.MODES:
            raise ValueError(f"unknown GAN loss {mode!r}; expected one of {self.MODES}")
        self.mode = mode
        self.register_buffer("real_label", torch.tensor(real_label))
        self.register_buffer("fake_label", torch.tensor(fake_label))

    def _label_loss(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        label = self.real_label if real else self.fake_label
        target = label.to(logits.dtype).expand_as(logits)
        if self.mode == "vanilla":
            return F.binary_cross_entropy_with_logits(logits, target)
        return F.mse_loss(logits, target)

    def generator_loss(self, fake_logits: torch.Tensor) -> torch.Tensor:
        if self.mode == "hinge":
            return -fake_logits.mean()
        return self._label_loss(fake_logits, real=True)

    def discriminator_loss(self, real_logits: torch.Tensor,
                           fake_logits: torch.Tensor) -> torch.Tensor:
        if self.mode == "hinge":
            return 0.5 * (F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean())
        return 0.5 * (self._label_loss(real_logits, real=True)
                      + self._label_loss(fake_logits, real=False))


def adaptive_gan_weight(rec_loss: torch.Tensor, gan_loss: torch.Tensor, last_layer: torch.Tensor,
                        max_weight: float = 1e4) -> torch.Tensor:
    """||d rec / d W_last|| / (||d gan / d W_last|| + 1e-4), clamped to [0, max_weight], detached.

    Both losses must still have their graphs (this uses retain_graph). Multiply the result by
    your own discriminator weight (and zero it before the discriminator starts).
    """
    rec_grad = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)[0]
    gan_grad = torch.autograd.grad(gan_loss, last_layer, retain_graph=True)[0]
    weight = rec_grad.norm() / (gan_grad.norm() + 1e-4)
    return weight.clamp(0.0, max_weight).detach()
