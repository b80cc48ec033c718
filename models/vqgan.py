"""The simplified VQGAN of the winning Light My Cells solution (seed 000), no transformer.

    y = tanh(G(q(E(x))))

E: conv stem, per level `num_res_blocks` residual blocks (GroupNorm + SiLU) then a stride-2
downsampling, a middle of block / optional self-attention / block at the lowest resolution,
and a conv to `z_channels`; a 1×1 conv to the codebook dimension; q: the vector quantiser
(models/quantizer.py); a 1×1 conv back; G: the mirror of E with one more residual block per level
(taming-transformers' layout), which is what makes the decoder about 1.5× the encoder, as the
paper asks ("the decoder is larger than the encoder, with 1.5 times the number of trainable
parameters"). Any number of input and output channels; the output goes through tanh so it lies in
[-1, 1] like every generator here.

The paper's 58.1M trainable parameters are this generator at ch 128, ch_mult (1, 2, 4), two
residual blocks per level, mid attention, codebook 8192 × 3 (55.3M: encoder 22.3M, decoder 33.0M),
plus its PatchGAN discriminator (ndf 64, 3 layers: 2.8M); test_models checks the sum.

Size: H and W must be multiples of 2^(len(ch_mult) - 1) (`size_divisor`, 4 for the presets).
The lowest level has H/4 × W/4 positions; self-attention there costs O((HW/16)²) compute, done
by scaled_dot_product_attention so memory stays linear.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from models.presets import from_preset
from models.quantizer import VectorQuantizer
from models.shapes import check_input

PADDING_MODES = ("zeros", "replicate")

_PRESETS: dict[str, dict] = {
    # ~0.7M: CPU tests.
    "tiny": dict(ch=16, ch_mult=(1, 2, 4), num_res_blocks=1, n_embed=64, norm_groups=8),
    # ~3.5M: shippable, a few seconds per 512² window on a CPU.
    "small": dict(ch=32, ch_mult=(1, 2, 4), num_res_blocks=2, n_embed=1024),
    # 55.3M generator (+ 2.8M discriminator = the paper's 58.1M).
    "paper": dict(ch=128, ch_mult=(1, 2, 4), num_res_blocks=2, n_embed=8192),
}


@dataclass
class VQGANConfig:
    in_channels: int = 1
    out_channels: int = 1
    ch: int = 128                          # channels of the first level
    ch_mult: tuple[int, ...] = (1, 2, 4)   # channel multiplier per level; len - 1 downsamplings
    num_res_blocks: int = 2                # per encoder level; the decoder has one more
    attention: bool = True                 # self-attention in the middle (lowest resolution)
    z_channels: int = 3                    # encoder output channels
    embed_dim: int = 3                     # codebook vector size
    n_embed: int = 8192                    # codebook entries
    beta: float = 0.25                     # weight of the commitment term (see quantizer.py)
    legacy_beta: bool = False              # taming's legacy placement: beta on the codebook term
    reseed_threshold: float = 0.0          # > 0: re-seed codes with fewer hits/batch (training)
    dropout: float = 0.0
    norm_groups: int = 32                  # GroupNorm groups (reduced to divide the channels)
    # How every 3×3 conv (and the downsampling's bottom/right pad) sees past the border. "zeros"
    # (taming's layout, the first shipped checkpoints) lets the network tell a corner from the
    # interior even on a flat input, and the shipped actin and tubulin decoders learned to paint
    # +1 into the top-right corner of every window there. "replicate" makes a flat field look the
    # same at the border as inside, so no position can be singled out; same weights and shapes.
    padding_mode: str = "zeros"

    def __post_init__(self) -> None:
        # From a checkpoint the tuple comes back as a list; keep the config hashable and equal.
        self.ch_mult = tuple(int(m) for m in self.ch_mult)
        if self.padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {self.padding_mode!r}")

    @property
    def size_divisor(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)

    @classmethod
    def preset(cls, name: str, **overrides) -> VQGANConfig:
        return from_preset(cls, _PRESETS, "VQGAN", name, overrides)


def _norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(channels, groups), channels, eps=1e-6)


def _conv3(c_in: int, c_out: int, padding_mode: str) -> nn.Conv2d:
    """The 3×3 conv that keeps the size, padded as the config says."""
    return nn.Conv2d(c_in, c_out, 3, padding=1, padding_mode=padding_mode)


class ResnetBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, groups: int, dropout: float, padding_mode: str = "zeros"):
        super().__init__()
        self.body = nn.Sequential(
            _norm(c_in, groups), nn.SiLU(), _conv3(c_in, c_out, padding_mode),
            _norm(c_out, groups), nn.SiLU(), nn.Dropout(dropout),
            _conv3(c_out, c_out, padding_mode))
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.body(x)


class AttnBlock(nn.Module):
    """Single-head self-attention over all positions, residual."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.norm = _norm(channels, groups)
        self.q, self.k, self.v, self.proj = (nn.Conv2d(channels, channels, 1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        n = self.norm(x)
        q, k, v = (f(n).reshape(b, 1, c, h * w).transpose(-1, -2) for f in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v)          # [b, 1, hw, c]
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class Downsample(nn.Module):
    """Stride-2 3×3 conv with padding only on the bottom/right, so even sizes halve exactly."""

    def __init__(self, channels: int, padding_mode: str = "zeros"):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2)
        self.pad_mode = "constant" if padding_mode == "zeros" else padding_mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1), mode=self.pad_mode))


class Upsample(nn.Module):
    """Nearest ×2 then a 3×3 conv (no checkerboard artefacts of transposed convs)."""

    def __init__(self, channels: int, padding_mode: str = "zeros"):
        super().__init__()
        self.conv = _conv3(channels, channels, padding_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _middle(channels: int, cfg: VQGANConfig) -> nn.Sequential:
    return nn.Sequential(
        ResnetBlock(channels, channels, cfg.norm_groups, cfg.dropout, cfg.padding_mode),
        AttnBlock(channels, cfg.norm_groups) if cfg.attention else nn.Identity(),
        ResnetBlock(channels, channels, cfg.norm_groups, cfg.dropout, cfg.padding_mode))


class Encoder(nn.Module):
    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        g, pad = cfg.norm_groups, cfg.padding_mode
        layers: list[nn.Module] = [_conv3(cfg.in_channels, cfg.ch, pad)]
        c = cfg.ch
        for level, mult in enumerate(cfg.ch_mult):
            for _ in range(cfg.num_res_blocks):
                layers.append(ResnetBlock(c, cfg.ch * mult, g, cfg.dropout, pad))
                c = cfg.ch * mult
            if level < len(cfg.ch_mult) - 1:
                layers.append(Downsample(c, pad))
        layers += [_middle(c, cfg), _norm(c, g), nn.SiLU(), _conv3(c, cfg.z_channels, pad)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Decoder(nn.Module):
    def __init__(self, cfg: VQGANConfig):
        super().__init__()
        g, pad = cfg.norm_groups, cfg.padding_mode
        c = cfg.ch * cfg.ch_mult[-1]
        layers: list[nn.Module] = [_conv3(cfg.z_channels, c, pad), _middle(c, cfg)]
        for level in reversed(range(len(cfg.ch_mult))):
            for _ in range(cfg.num_res_blocks + 1):
                layers.append(ResnetBlock(c, cfg.ch * cfg.ch_mult[level], g, cfg.dropout, pad))
                c = cfg.ch * cfg.ch_mult[level]
            if level > 0:
                layers.append(Upsample(c, pad))
        layers += [_norm(c, g), nn.SiLU()]
        self.net = nn.Sequential(*layers)
        self.conv_out = _conv3(c, cfg.out_channels, pad)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.net(z))


class VQGAN(nn.Module):
    """x [B, in_channels, H, W] -> [B, out_channels, H, W] in [-1, 1]; H, W multiples of
    `config.size_divisor`."""

    def __init__(self, config: VQGANConfig):
        super().__init__()
        if config.in_channels < 1 or config.out_channels < 1:
            raise ValueError("VQGAN needs at least one input and one output channel")
        self.config = config
        self.encoder = Encoder(config)
        self.quant_conv = nn.Conv2d(config.z_channels, config.embed_dim, 1)
        self.quantizer = VectorQuantizer(config.n_embed, config.embed_dim, config.beta,
                                         legacy_beta=config.legacy_beta,
                                         reseed_threshold=config.reseed_threshold)
        self.post_quant_conv = nn.Conv2d(config.embed_dim, config.z_channels, 1)
        self.decoder = Decoder(config)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-quantisation latent [B, embed_dim, H/f, W/f]."""
        check_input(x, self.config.in_channels, self.config.size_divisor)
        return self.quant_conv(self.encoder(x))

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.decoder(self.post_quant_conv(z_q)))

    def forward_with_losses(self, x: torch.Tensor
                            ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """(y, codebook loss, stats with "perplexity", "usage", "indices"), for training."""
        z_q, codebook_loss, stats = self.quantizer(self.encode(x))
        return self.decode(z_q), codebook_loss, stats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Same output as forward_with_losses, without the loss and statistics (inference path).
        return self.decode(self.quantizer.quantize(self.encode(x)))

    def last_layer_weight(self) -> nn.Parameter:
        return self.decoder.conv_out.weight
