"""python -m synthetic.montage --out montage.png [--seed S] [--size PX] [--studies N] [--deviation D] [--profile P]

One PNG for people to look at, all of it simulated. By default (`--studies 4`) the variety of a
profile: studies 1..N of `sample_study` (as `python -m synthetic --seed S --max-size PX` draws
them), one row each with the in-focus TL of its first field and the organelles it labels, and a
row label with its modality, objective, pixel size, image size and cell line. `--studies 0` draws
the focus view instead: study 1's field in BF, PC and DIC, in focus and `--deviation` slices away,
and its four organelles at best focus. Every image has its own scale bar.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

import numpy as np

from preprocessing.ome_io import MODALITIES, ORGANELLES

from .acquisitions import REAL_ACQUISITIONS
from .config import DEFAULT_PROFILE, PROFILES, SimulationConfig
from .fov import SimulatedFOV, simulate_fov
from .profiles import LOW_MAG_ACQUISITIONS, NEW_SITE_ACQUISITIONS
from .study import StudyParams, sample_study

# Condenser apertures typical of each modality (BF iris half open, PC annulus, DIC matched).
_CONDENSER_NA = {"BF": 0.35, "PC": 0.35, "DIC": 0.7}
# Scale-bar lengths (µm): 1-2-5 steps first; 2.5 steps fill the gaps where no 1-2-5 length fits.
_ROUND_UM = tuple(sorted(m * 10.0 ** k for k in range(-2, 5) for m in (1, 2, 5)))
_FILL_UM = tuple(2.5 * 10.0 ** k for k in range(-2, 5))
SCALE_BAR_FRACTION = (0.15, 0.30)   # of the panel width
DEFAULT_STUDIES = 4


def scale_bar_um(width_um: float) -> float:
    """A round length (1, 2, 5 × 10^k µm, or 2.5 × 10^k where none of those fits) that is 15-30 %
    of an image `width_um` wide, nearest a fifth of it."""
    if not width_um > 0:
        raise ValueError(f"width must be > 0 µm, got {width_um}")
    low, high = (f * width_um for f in SCALE_BAR_FRACTION)
    for table in (_ROUND_UM, _FILL_UM):
        fits = [n for n in table if low * (1 - 1e-9) <= n <= high * (1 + 1e-9)]
        if fits:
            return min(fits, key=lambda n: abs(math.log(n / (width_um / 5))))
    raise ValueError(f"no scale bar for an image {width_um:g} µm wide")


def add_scale_bar(ax, width_px: int, height_px: int, pixel_size_um: float) -> float:
    """A white bar with a dark outline and its length in the lower right corner of an image axes
    (data coordinates = pixels); returns its length in µm."""
    from matplotlib import patheffects
    from matplotlib.patches import Rectangle

    length_um = scale_bar_um(width_px * pixel_size_um)
    length_px = length_um / pixel_size_um
    margin = 0.05 * width_px
    thick = max(0.012 * height_px, 1.0)
    x0, y0 = width_px - margin - length_px, height_px - margin - thick
    ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), length_px, thick, facecolor="white", edgecolor="black",
                           linewidth=0.8, gid="scale_bar"))
    label = ax.text(x0 + length_px / 2 - 0.5, y0 - 0.02 * height_px - 0.5, f"{length_um:g} µm", color="white",
                    fontsize=7, ha="center", va="bottom", gid="scale_bar_label")
    label.set_path_effects([patheffects.withStroke(linewidth=2.2, foreground="black")])
    return length_um


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


@dataclasses.dataclass
class StudyRow:
    """One row of the variety view: the study as generated at full size, and its first field
    simulated in focus at (at most) size × size pixels."""
    full_shape: tuple[int, int]
    fov: SimulatedFOV

    @property
    def study(self) -> StudyParams:
        return self.fov.study


def variety_rows(seed: int, size: int, studies: int = DEFAULT_STUDIES,
                 profile: str = DEFAULT_PROFILE) -> list[StudyRow]:
    """Studies 1..`studies` of (seed, profile), each cropped to at most size × size pixels as
    `python -m synthetic --max-size` crops (pixel size and cells unchanged), field 0 in focus."""
    if studies < 1:
        raise ValueError(f"studies must be ≥ 1, got {studies}")
    full = SimulationConfig(seed=seed, profile=profile)
    cropped = SimulationConfig(seed=seed, profile=profile, max_size=size)
    rows = []
    for number in range(1, studies + 1):
        study = sample_study(cropped, number)
        fov = simulate_fov(study, 0, seed, defocus_um=[0.0], best_z=0)
        rows.append(StudyRow(sample_study(full, number).shape, fov))
    return rows


def _magnification(study: StudyParams) -> int | None:
    """The objective's magnification where the acquisition tables name exactly one for the
    study's pixel size and NA (110 nm at NA 1.4 is 60x or 100x: None)."""
    pixel_nm, na = round(study.pixel_size_um * 1000), study.optics.na_objective
    table = [(a.pixel_size_nm, a.magnification, a.na) for a in REAL_ACQUISITIONS]
    mags = {mag for p, mag, a in (*table, *NEW_SITE_ACQUISITIONS, *LOW_MAG_ACQUISITIONS)
            if round(p) == pixel_nm and abs(a - na) < 1e-6}
    return mags.pop() if len(mags) == 1 else None


def row_label(row: StudyRow) -> str:
    """Modality, objective, pixel size, image size and cell line of a study, on four short lines."""
    s = row.study
    mag = _magnification(s)
    objective = f"{mag}x/{s.optics.na_objective:.2f}" if mag else f"NA {s.optics.na_objective:.2f}"
    h, w = row.full_shape
    sh, sw = s.shape
    shown = "" if (sh, sw) == (h, w) else f", {sw}×{sh} shown"
    line = s.cell_line
    nucleus_um = 2 * line.cell_radius_um * line.nucleus_fraction
    extra = [f"{s.tl_bits}-bit TL"] if s.tl_bits != 16 else []
    if line.debris_per_mm2 > 0:
        extra.append(f"debris {line.debris_per_mm2:.0f}/mm²")
    if line.mitotic_fraction > 0:
        extra.append(f"mitoses {100 * line.mitotic_fraction:.0f} %")
    lines = [f"Study {s.number}: {s.modality} {objective}",
             f"{s.pixel_size_um * 1000:.0f} nm/px, {w}×{h} px{shown}",
             f"nuclei {nucleus_um:.0f} µm, confluence {line.confluence:.2f}"]
    if extra:
        lines.append(", ".join(extra))
    return "\n".join(lines)


def _stretch(image: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(image, (0.5, 99.8))
    return np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1)


def _show(ax, image: np.ndarray, pixel_size_um: float) -> None:
    ax.imshow(_stretch(image.astype(np.float32)), cmap="gray", interpolation="nearest")
    add_scale_bar(ax, image.shape[1], image.shape[0], pixel_size_um)


def _bare(ax) -> None:
    """No ticks and no frame, but keep the y label (axis("off") would hide the row label)."""
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def focus_figure(seed: int = 0, size: int = 512, deviation: int = 4, profile: str = DEFAULT_PROFILE):
    """The focus view: one phantom in BF, PC and DIC at deviation 0 and `deviation`, and its organelles."""
    import matplotlib.pyplot as plt

    fovs = montage_fovs(seed, size, deviation, profile)
    study = fovs["BF"].study
    panels = []
    for modality in MODALITIES:
        for z, dev in ((0, 0), (1, deviation)):
            dz = fovs[modality].defocus_um[z]
            panels.append((f"{modality}, deviation {dev} ({dz:+.1f} µm)", fovs[modality].tl[z]))
    for organelle in ORGANELLES:
        panels.append((f"{organelle} (best focus)", fovs["BF"].organelles[organelle]))
    cols = 5
    rows = int(np.ceil(len(panels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.7 * cols, 3.0 * rows + 0.4), dpi=110, squeeze=False,
                             layout="constrained")
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (title, image) in zip(axes.ravel(), panels):
        _show(ax, image, study.pixel_size_um)
        ax.set_title(title, fontsize=8)
    fig.suptitle(f"SIMULATED (synthetic/, profile {profile}, seed {seed}, study 1): pixel "
                 f"{study.pixel_size_um * 1000:.0f} nm, z-step {study.z_step_um:.2f} µm, "
                 f"NA {study.optics.na_objective:.2f}", fontsize=9)
    return fig


def variety_figure(seed: int = 0, size: int = 512, studies: int = DEFAULT_STUDIES, profile: str = DEFAULT_PROFILE):
    """The variety view: one row per study, in-focus TL and the organelles it labels."""
    import matplotlib.pyplot as plt

    rows = variety_rows(seed, size, studies, profile)
    columns = ["TL, in focus", *ORGANELLES]
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(2.3 * len(columns) + 1.7, 2.2 * len(rows) + 0.4),
                             dpi=110, squeeze=False, layout="constrained")
    for r, row in enumerate(rows):
        study = row.study
        for c, (ax, column) in enumerate(zip(axes[r], columns)):
            _bare(ax)
            if r == 0:
                ax.set_title(column, fontsize=9)
            if c == 0:
                _show(ax, row.fov.tl[0], study.pixel_size_um)
                ax.set_ylabel(row_label(row), fontsize=7, rotation=0, ha="right", va="center", labelpad=6)
            elif column in row.fov.organelles:
                _show(ax, row.fov.organelles[column], study.pixel_size_um)
            else:
                ax.set_facecolor("0.93")
                ax.text(0.5, 0.5, "not labelled\nin this study", transform=ax.transAxes, ha="center",
                        va="center", fontsize=7, color="0.4")
                h, w = row.fov.tl.shape[1:]
                ax.set(xlim=(-0.5, w - 0.5), ylim=(h - 0.5, -0.5), aspect="equal")
    fig.suptitle(f"SIMULATED (synthetic/, profile {profile}, seed {seed}): studies 1-{len(rows)}, field 0",
                 fontsize=9)
    return fig


def render(path: Path, seed: int = 0, size: int = 512, deviation: int = 4, profile: str = DEFAULT_PROFILE,
           studies: int = 0) -> Path:
    """Write the montage PNG: the variety view of `studies` studies, or the focus view where
    `studies` is 0 (the default here, as before; the command line's default is the variety view)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = variety_figure(seed, size, studies, profile) if studies else focus_figure(seed, size, deviation, profile)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synthetic.montage", description=__doc__.split("\n\n")[1])
    parser.add_argument("--out", type=Path, default=Path("montage.png"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=512, help="image side in pixels at most (default 512)")
    parser.add_argument("--studies", type=int, default=DEFAULT_STUDIES,
                        help=f"studies shown, one row each (default {DEFAULT_STUDIES}); 0: the focus view of study 1")
    parser.add_argument("--deviation", type=int, default=4,
                        help="focus view: second focus deviation in slices (default 4)")
    parser.add_argument("--profile", choices=PROFILES, default=DEFAULT_PROFILE, help="simulator profile")
    args = parser.parse_args(argv)
    if args.studies < 0:
        parser.error("--studies must be ≥ 0")
    if args.studies:
        try:   # the simulator's own check of the crop size the variety view uses
            SimulationConfig(seed=args.seed, profile=args.profile, max_size=args.size)
        except ValueError as exc:
            parser.error(str(exc))
    print(render(args.out, args.seed, args.size, args.deviation, args.profile, args.studies))
    return 0


if __name__ == "__main__":
    sys.exit(main())
