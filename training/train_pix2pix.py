"""Train the multi-decoder pix2pix (seed 001): one model per TL modality, all four organelles.

    python -m training.train_pix2pix --data DIR --out RUN_DIR --preset small --modalities BF
    torchrun --nproc_per_node 2 -m training.train_pix2pix ...      (DDP; gloo on CPU, nccl on GPU)

Defaults are the paper's: Adam lr 2e-4, betas (0.5, 0.999), lr constant for the first half and
linearly to 0 over the second; L1 weight 100 (1 inside [p2, p99.8] of the target, 0.1 outside),
one conditional PatchGAN per organelle with weight 1 (vanilla GAN loss); the loss covers only the
organelles each sample has ground truth for (losses.py).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from models.pix2pix import Pix2PixConfig, Pix2PixGenerator
from preprocessing.ome_io import ORGANELLES

from .options import parse, train_and_report
from .trainer import LossConfig, RunResult, TrainConfig

PIX2PIX_LR = 2e-4
PIX2PIX_BETAS = (0.5, 0.999)
PIX2PIX_DECAY_START = 0.5
PIX2PIX_LOSS = LossConfig(l1_weight=100.0, gan_weight=1.0, gan_mode="vanilla", adaptive_gan=False,
                          conditional_disc=True, disc_start=0)


class _ImageAndNoCodebook(nn.Module):
    """The trainer's forward contract, (y, codebook_loss, stats), for a model without a codebook."""

    def __init__(self, model: Pix2PixGenerator):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        y = self.model(x)
        return y, y.new_zeros(()), {}


@dataclass
class Pix2PixFamily:
    overrides: dict = field(default_factory=dict)
    arch: str = "pix2pix"

    def model_config(self, cfg: TrainConfig) -> Pix2PixConfig:
        return Pix2PixConfig.preset(cfg.preset, in_channels=1, out_channels=len(cfg.organelles),
                                    **self.overrides)

    def build(self, config: Pix2PixConfig) -> nn.Module:
        return Pix2PixGenerator(config)

    def training_forward(self, model: nn.Module) -> nn.Module:
        return _ImageAndNoCodebook(model)

    def last_layer(self, model: nn.Module) -> torch.Tensor:
        return model.last_layer_weight(0)

    def defaults(self, chosen: dict) -> dict:
        """The paper's optimiser, schedule and loss (training/options.py applies them under what
        the user gave)."""
        return {"lr": PIX2PIX_LR, "betas": PIX2PIX_BETAS, "decay_start": PIX2PIX_DECAY_START,
                "organelles": ORGANELLES, "loss": asdict(PIX2PIX_LOSS)}


FAMILY = Pix2PixFamily     # what lmc-train (training/train.py) builds for a run file naming this family


def main(argv: list[str] | None = None) -> RunResult:
    cfg, family, _ = parse(argv, Pix2PixFamily, __doc__.split("\n\n")[0])
    return train_and_report(cfg, family)


def cli() -> int:
    """Console script `lmc-train-pix2pix`: exit status 0 after a finished run (errors exit earlier)."""
    main()
    return 0


if __name__ == "__main__":
    main()
