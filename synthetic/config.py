"""What to simulate: the run-level configuration passed explicitly to `generate_studies`."""
from __future__ import annotations

from dataclasses import dataclass

from preprocessing.ome_io import MODALITIES

# Image shapes (H, W) of the real set: square 512..2048 and the non-square ones seen there.
REAL_SHAPES: tuple[tuple[int, int], ...] = (
    (512, 512), (1024, 1024), (2048, 2048), (966, 1296), (980, 1016), (1200, 1200),
    (1300, 1624), (2044, 2048), (512, 640), (1024, 1344),
)


@dataclass(frozen=True)
class SimulationConfig:
    studies: int = 4                    # number of Study_<n> folders
    seed: int = 0
    first_study: int = 1                # study numbers run first_study .. first_study + studies - 1
    fovs_per_study: int | None = None   # None: 2..6 per study, drawn from the seed
    max_size: int | None = None         # crop H and W to at most this (keeps pixel size and cells)
    max_slices: int = 11                # z-slices per FOV at most (≥ 6 lets deviation 5 occur)
    modalities: tuple[str, ...] = MODALITIES
    shapes: tuple[tuple[int, int], ...] = REAL_SHAPES
    quiet: bool = False

    def __post_init__(self):
        if self.studies < 1:
            raise ValueError(f"studies must be ≥ 1, got {self.studies}")
        if self.fovs_per_study is not None and self.fovs_per_study < 1:
            raise ValueError(f"fovs_per_study must be ≥ 1, got {self.fovs_per_study}")
        if self.max_size is not None and self.max_size < 64:
            raise ValueError(f"max_size must be ≥ 64 pixels, got {self.max_size}")
        if self.max_slices < 1:
            raise ValueError(f"max_slices must be ≥ 1, got {self.max_slices}")
        bad = [m for m in self.modalities if m not in MODALITIES]
        if bad or not self.modalities:
            raise ValueError(f"modalities must be a non-empty subset of {MODALITIES}, got {self.modalities}")
