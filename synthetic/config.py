"""What to simulate: the run-level configuration passed explicitly to `generate_studies`."""
from __future__ import annotations

from dataclasses import dataclass

from preprocessing.ome_io import MODALITIES

# "v1": the simulator every existing table, held-out set and shipped weight was made with, kept bit
# for bit. "lmc": calibrated to the 30 real training studies (the default: new data should look like
# the real set). "new-site": acquisitions and cell lines outside the real set, for a test of transfer.
# "low-mag": 10x-20x objectives at 0.3-0.65 µm pixels, half of them 8-bit contrast-stretched TL.
# synthetic/profiles.py defines what each draws.
PROFILES: tuple[str, ...] = ("v1", "lmc", "new-site", "low-mag")
DEFAULT_PROFILE = "lmc"

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
    max_slices: int | None = None       # z-slices per FOV at most; None: the profile's (v1 11, lmc 33)
    modalities: tuple[str, ...] = MODALITIES
    shapes: tuple[tuple[int, int], ...] = REAL_SHAPES
    quiet: bool = False
    profile: str = DEFAULT_PROFILE      # PROFILES; pin "v1" where existing results depend on it

    def __post_init__(self):
        if self.studies < 1:
            raise ValueError(f"studies must be ≥ 1, got {self.studies}")
        if self.fovs_per_study is not None and self.fovs_per_study < 1:
            raise ValueError(f"fovs_per_study must be ≥ 1, got {self.fovs_per_study}")
        if self.max_size is not None and self.max_size < 64:
            raise ValueError(f"max_size must be ≥ 64 pixels, got {self.max_size}")
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, got {self.profile!r}")
        if self.max_slices is not None and self.max_slices < 1:
            raise ValueError(f"max_slices must be ≥ 1, got {self.max_slices}")
        bad = [m for m in self.modalities if m not in MODALITIES]
        if bad or not self.modalities:
            raise ValueError(f"modalities must be a non-empty subset of {MODALITIES}, got {self.modalities}")
