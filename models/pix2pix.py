"""pix2pix ResNet generator with a shared encoder and one decoder per organelle.

After the adaptive-loss pix2pix of the Light My Cells challenge (seed 001): the ResNet generator of
Johnson et al. / junyanz's pix2pix (reflection padding, 7×7 stem, two stride-2 downsamplings,
N residual blocks, two ×2 upsamplings, tanh), split so that the stem, downsampling and
residual blocks are computed once and each output channel (organelle) has its own decoder. One
forward pass therefore yields every organelle the model knows; channel i is organelle i.

Upsampling (`upsample`): "transpose", the paper's stride-2 3×3 transposed convs, which the first
shipped checkpoints use: their kernel overlaps unevenly, so one output pixel in four gets four
taps and the others two or one, a period-2 and (after both) period-4 pattern in model pixels, the
checkerboard the defect scan finds in PC actin and DIC mitochondria. "resize" is nearest ×2 then a
reflection-padded 3×3 conv (Odena et al. 2016, "Deconvolution and checkerboard artifacts"), where
every output pixel sees the same taps. Nearest ×2 still leaves 2×2 blocks whose borders one 3×3
conv does not hide: on the development set the resize models kept a weak period-2/4 pattern in the
edge spectrum. "bilinear" is a bilinear ×2 (half-pixel centres) then the same conv: a linear ramp
stays a linear ramp, so neither blocks nor parities exist. "resize" and "bilinear" share one state
layout; `resize_state_from_transpose` turns a "transpose" state into it for a warm start.

Size: H and W must be multiples of 4 (`size_divisor`): two stride-2 convs, then upsamplings that
exactly double, so other sizes would come back a pixel short. Reflection padding also needs
H/4, W/4 >= 2, so the smallest accepted input is 8×8.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.norms import conv_bias, make_norm
from models.presets import from_preset
from models.shapes import check_input

UPSAMPLING = ("transpose", "resize", "bilinear")

_PRESETS: dict[str, dict] = {
    "tiny": dict(ngf=8, n_blocks=2),        # ~68k params: CPU tests
    "small": dict(ngf=32, n_blocks=6),      # ~2.2M params (4 decoders): shippable on a CPU budget
    "paper": dict(ngf=64, n_blocks=9),      # ~12.5M params: ResNet-9blocks as in pix2pix / seed 001
}


@dataclass
class Pix2PixConfig:
    in_channels: int = 1          # TL channels (1 plane, or a few z-slices stacked)
    out_channels: int = 4         # number of organelles = number of decoders
    ngf: int = 64                 # width of the stem; doubles at each downsampling
    n_blocks: int = 9             # residual blocks in the shared encoder (at 1/4 resolution)
    decoder_blocks: int = 0       # extra residual blocks at the start of each decoder
    norm: str = "instance"        # "instance" | "batch" | "none"
    dropout: float = 0.0          # inside residual blocks (pix2pix's use_dropout gives 0.5)
    upsample: str = "transpose"   # "transpose" | "resize" | "bilinear" (see the module docstring)

    def __post_init__(self) -> None:
        if self.upsample not in UPSAMPLING:
            raise ValueError(f"upsample must be one of {UPSAMPLING}, got {self.upsample!r}")

    @property
    def size_divisor(self) -> int:
        return 4

    @classmethod
    def preset(cls, name: str, **overrides) -> Pix2PixConfig:
        return from_preset(cls, _PRESETS, "pix2pix", name, overrides)


class ResnetBlock(nn.Module):
    """x + conv-norm-relu-conv-norm(x), reflection padded so borders are not darkened by zeros."""

    def __init__(self, channels: int, norm: str, dropout: float):
        super().__init__()
        bias = conv_bias(norm)
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias),
            make_norm(norm, channels), nn.ReLU(inplace=True)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias),
                   make_norm(norm, channels)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _encoder(cfg: Pix2PixConfig) -> nn.Sequential:
    bias = conv_bias(cfg.norm)
    layers: list[nn.Module] = [
        nn.ReflectionPad2d(3), nn.Conv2d(cfg.in_channels, cfg.ngf, 7, bias=bias),
        make_norm(cfg.norm, cfg.ngf), nn.ReLU(inplace=True)]
    ch = cfg.ngf
    for _ in range(2):
        layers += [nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1, bias=bias),
                   make_norm(cfg.norm, ch * 2), nn.ReLU(inplace=True)]
        ch *= 2
    layers += [ResnetBlock(ch, cfg.norm, cfg.dropout) for _ in range(cfg.n_blocks)]
    return nn.Sequential(*layers)


def _decoder(cfg: Pix2PixConfig) -> nn.Sequential:
    """1/4-resolution features -> one channel in [-1, 1]."""
    bias = conv_bias(cfg.norm)
    ch = cfg.ngf * 4
    layers: list[nn.Module] = [ResnetBlock(ch, cfg.norm, cfg.dropout)
                               for _ in range(cfg.decoder_blocks)]
    for _ in range(2):
        if cfg.upsample == "transpose":
            up: nn.Module = nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1, bias=bias)
        else:
            scale = (nn.Upsample(scale_factor=2, mode="nearest") if cfg.upsample == "resize"
                     else nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            up = nn.Sequential(scale, nn.ReflectionPad2d(1),
                               nn.Conv2d(ch, ch // 2, 3, bias=bias))
        layers += [up, make_norm(cfg.norm, ch // 2), nn.ReLU(inplace=True)]
        ch //= 2
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, 1, 7), nn.Tanh()]
    return nn.Sequential(*layers)


class Pix2PixGenerator(nn.Module):
    """x [B, in_channels, H, W] -> [B, out_channels, H, W] in [-1, 1]; H, W multiples of 4."""

    def __init__(self, config: Pix2PixConfig):
        super().__init__()
        if config.out_channels < 1 or config.in_channels < 1:
            raise ValueError("pix2pix needs at least one input and one output channel")
        self.config = config
        self.encoder = _encoder(config)
        self.decoders = nn.ModuleList(_decoder(config) for _ in range(config.out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.config.in_channels, self.config.size_divisor)
        features = self.encoder(x)
        return torch.cat([decoder(features) for decoder in self.decoders], dim=1)

    def last_layer_weight(self, index: int = 0) -> nn.Parameter:
        """Weight of decoder `index`'s final conv (for the adaptive GAN weight of that organelle)."""
        return self.decoders[index][-2].weight



def resize_state_from_transpose(state: dict[str, torch.Tensor], config: Pix2PixConfig) -> dict[str, torch.Tensor]:
    """A "transpose" generator's state dict as a "resize" one of the same config: each transposed
    conv becomes the 3×3 conv after the nearest ×2 that gives the same response to a smooth input.

    A transposed conv is a correlation of the zero-interleaved input with its flipped, in/out-
    swapped kernel; each tap lands on exactly one of the four output parities, so the parities'
    mean response is the sum of the taps over 4. After a nearest ×2 every tap sees the input, hence
    the factor 1/4. Exact only for smooth inputs; the point is a warm start, not an equivalence."""
    layout = Pix2PixGenerator(Pix2PixConfig(**{**config.__dict__, "upsample": "resize"}))   # bilinear: same keys
    target = layout.state_dict()
    out = {}
    for key, value in state.items():
        if key in target and target[key].shape == value.shape:
            out[key] = value
            continue
        head, _, leaf = key.rpartition(".")
        converted = f"{head}.2.{leaf}"     # decoders.D.I.weight -> decoders.D.I.2.weight (the conv)
        if converted not in target:
            raise KeyError(f"{key}: no place for it in a resize-upsampling generator")
        out[converted] = value.transpose(0, 1).flip(2, 3) * 0.25 if leaf == "weight" else value
    missing = sorted(set(target) - set(out))
    if missing:
        raise KeyError(f"not a transpose-upsampling state of this config: {missing[:3]} missing")
    return out
