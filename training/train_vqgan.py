"""Train one simplified VQGAN (seed 000) per organelle.

    python -m training.train_vqgan --data DIR --out RUN_DIR --organelle nucleus --preset small
    torchrun --nproc_per_node 2 -m training.train_vqgan ...        (DDP; gloo on CPU, nccl on GPU)

Objective (seed 000, taming-transformers): L1 (weighted 1 inside [p2, p99.8] of the target, 0.1
outside) + codebook loss + adaptive-weighted PatchGAN loss, the discriminator starting after a
warm-up (default: half the steps). Optimiser: Adam, betas (0.5, 0.9) as in taming. Learning rate:
the paper's per-organelle rates (4e-6 nucleus, 1e-6 mitochondria and tubulin, 2e-6 actin, batch
16, tens to hundreds of A100 epochs) for the `paper` preset; the small presets trained here for
minutes on a CPU use 2e-4, with which they converge in a few thousand steps.
"""
from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from models.vqgan import VQGAN, VQGANConfig
from preprocessing.ome_io import ORGANELLES

from .options import parse, train_and_report
from .trainer import LossConfig, RunResult, TrainConfig

PAPER_LR = {"nucleus": 4e-6, "mitochondria": 1e-6, "tubulin": 1e-6, "actin": 2e-6}
SMALL_LR = 2e-4
VQGAN_BETAS = (0.5, 0.9)
VQGAN_LOSS = LossConfig(l1_weight=1.0, codebook_weight=1.0, gan_weight=0.5, gan_mode="hinge",
                        adaptive_gan=True, conditional_disc=False, disc_start=0)


class _WithLosses(nn.Module):
    """forward = forward_with_losses, so DDP (which only hooks `forward`) wraps the training call."""

    def __init__(self, model: VQGAN):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor):
        return self.model.forward_with_losses(x)


@dataclass
class VQGANFamily:
    overrides: dict = field(default_factory=dict)
    arch: str = "vqgan"

    def model_config(self, cfg: TrainConfig) -> VQGANConfig:
        if len(cfg.organelles) != 1:
            raise ValueError(f"a VQGAN predicts one organelle, got {cfg.organelles}")
        return VQGANConfig.preset(cfg.preset, in_channels=1, out_channels=1, **self.overrides)

    def build(self, config: VQGANConfig) -> nn.Module:
        return VQGAN(config)

    def training_forward(self, model: nn.Module) -> nn.Module:
        return _WithLosses(model)

    def last_layer(self, model: nn.Module) -> torch.Tensor:
        return model.last_layer_weight()

    def defaults(self, chosen: dict) -> dict:
        """taming's optimiser and loss; the paper's per-organelle lr for the paper preset; the
        discriminator after a warm-up of half the run (reconstruction alone before)."""
        organelles = chosen.get("organelles", ())
        organelle = organelles[0] if len(organelles) == 1 else None
        return {"lr": default_lr(chosen.get("preset", "small"), organelle), "betas": VQGAN_BETAS,
                "decay_start": 1.0, "loss": {**asdict(VQGAN_LOSS), "disc_start": int(chosen.get("steps", 0)) // 2}}


def default_lr(preset: str, organelle: str | None) -> float:
    return PAPER_LR[organelle] if preset == "paper" and organelle in PAPER_LR else SMALL_LR


class _OneOrganelle(argparse.Action):
    """--organelle X is --organelles X: a VQGAN predicts one."""

    def __call__(self, parser, namespace, value, option_string=None):
        namespace.organelles = [value]


def add_organelle_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--organelle", action=_OneOrganelle, choices=ORGANELLES, default=argparse.SUPPRESS,
                        help="the one organelle this VQGAN predicts (or organelles = [X] in the run file)")


FAMILY = VQGANFamily     # what lmc-train (training/train.py) builds for a run file naming this family


def main(argv: list[str] | None = None) -> RunResult:
    cfg, family, _ = parse(argv, VQGANFamily, __doc__.split("\n\n")[0], extra=add_organelle_flag)
    return train_and_report(cfg, family)


def cli() -> int:
    """Console script `lmc-train-vqgan`: exit status 0 after a finished run (errors exit earlier)."""
    main()
    return 0


if __name__ == "__main__":
    main()
