"""python -m synthetic.montage --out montage.png [--seed S] [--size PX] [--deviation D] [--profile P]

One PNG for people to look at: the same simulated field of view in BF, PC and DIC, in focus and
`--deviation` slices away, and its four organelles at best focus.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

from preprocessing.ome_io import MODALITIES, ORGANELLES

from .config import DEFAULT_PROFILE, PROFILES, SimulationConfig
from .fov import SimulatedFOV, simulate_fov
from .study import sample_study

# Condenser apertures typical of each modality (BF iris half open, PC annulus, DIC matched).
_CONDENSER_NA = {"BF": 0.35, "PC": 0.35, "DIC": 0.7}


def montage_fovs(seed: int, size: int, deviation: int, profile: str = DEFAULT_PROFILE) -> dict[str, SimulatedFOV]:
    """The same phantom imaged by each modality at deviation 0 and `deviation` slices."""
    study = sample_study(SimulationConfig(seed=seed, shapes=((size, size),), profile=profile), 1)
    study = dataclasses.replace(study, organelles=ORGANELLES)
    out = {}
    for modality in MODALITIES:
        optics = dataclasses.replace(study.optics, modality=modality,
                                     na_condenser=min(_CONDENSER_NA[modality], study.optics.na_objective))
        variant = dataclasses.replace(study, optics=optics)
        defocus = [0.0, deviation * study.z_step_um]
        out[modality] = simulate_fov(variant, 0, seed, defocus_um=defocus, best_z=0, z_indices=(0, deviation),
                                     organelles=ORGANELLES if modality == "BF" else ())
    return out


def _stretch(image: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(image, (0.5, 99.8))
    return np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1)


def render(path: Path, seed: int = 0, size: int = 512, deviation: int = 4, profile: str = DEFAULT_PROFILE) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fovs = montage_fovs(seed, size, deviation, profile)
    study = fovs["BF"].study
    panels = []
    for modality in MODALITIES:
        for z, dev in ((0, 0), (1, deviation)):
            dz = fovs[modality].defocus_um[z]
            panels.append((f"{modality}  deviation {dev} ({dz:+.1f} µm)", fovs[modality].tl[z], "gray"))
    for organelle in ORGANELLES:
        panels.append((f"{organelle} (best focus)", fovs["BF"].organelles[organelle], "gray"))
    cols = 5
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.4 * rows), dpi=110)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (title, image, cmap) in zip(axes.ravel(), panels):
        ax.imshow(_stretch(image.astype(np.float32)), cmap=cmap, interpolation="nearest")
        ax.set_title(title, fontsize=9)
    fig.suptitle(f"SIMULATED (synthetic/, seed {seed}): pixel {study.pixel_size_um * 1000:.0f} nm, "
                 f"z-step {study.z_step_um:.2f} µm, NA {study.optics.na_objective:.2f}", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synthetic.montage", description=__doc__.split("\n\n")[1])
    parser.add_argument("--out", type=Path, default=Path("montage.png"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=512, help="image side in pixels (default 512)")
    parser.add_argument("--deviation", type=int, default=4, help="second focus deviation in slices (default 4)")
    parser.add_argument("--profile", choices=PROFILES, default=DEFAULT_PROFILE, help="simulator profile")
    args = parser.parse_args(argv)
    print(render(args.out, args.seed, args.size, args.deviation, args.profile))
    return 0


if __name__ == "__main__":
    sys.exit(main())
