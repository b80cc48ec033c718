"""The real images of ../shared/real as the pipeline sees them, with the pixel sizes we assume.

Neither image records its pixel size, so the value is an assumption, stated here once and printed
beside every number (see ../shared/real/README.md):
- ISL (google/in-silico-labeling, Condition B): a phase-contrast z-stack of 13 slices, 1024x1024,
  with confocal DAPI nuclei. Single nuclei are about 15-28 px across, and rat cortical nuclei are
  about 8-15 um: 0.55 um per pixel.
- The Light My Cells crop (BiaPy's example): bright field and its nucleus target, 200x200 8-bit,
  already contrast-stretched. Its nuclei are about 30-45 px across; for nuclei of 12-18 um that is
  about 0.4 um per pixel.
`ISL_SPLIT_COLUMN` fixes the learnability split: columns left of it may be trained on, the rest
is only scored. It is a constant, so no run can pick a more favourable split.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from preprocessing.ome_io import OmeImage

# ../shared/real beside the repository, or where LMC_REAL_DATA points.
REAL = Path(os.environ.get("LMC_REAL_DATA", Path(__file__).resolve().parents[2].parent / "shared" / "real"))
ISL_DIR = REAL / "isl_condition_blue"
LMC_DIR = REAL / "lmc_crop_biapy"
ISL_PIXEL_UM = 0.55
LMC_PIXEL_UM = 0.4
ISL_SLICES = 13
ISL_SPLIT_COLUMN = 768      # train on columns [0, 768) (the left three quarters), score on [768, 1024)
# The same split for zero-shot decisions: choose on the left three quarters, report the right quarter.
ISL_REGIONS = {"left three quarters (development)": slice(0, ISL_SPLIT_COLUMN),
               "right quarter (report)": slice(ISL_SPLIT_COLUMN, None)}


class RealDataMissing(FileNotFoundError):
    """../shared/real (or one of its folders) is not beside the repository."""


@dataclass(frozen=True)
class RealPair:
    name: str
    tl: list[OmeImage]          # TL slices, as the container would read them
    nucleus: np.ndarray         # the nucleus ground truth, float32
    pixel_size_um: float        # assumed


def _read_png(path: Path) -> np.ndarray:
    import imageio.v3 as iio  # comes with scikit-image
    if not path.is_file():
        raise RealDataMissing(f"{path} is missing (../shared/real is not beside the repository)")
    return np.asarray(iio.imread(path), dtype=np.float32)


def _image(path: Path, array: np.ndarray, modality: str, pixel_um: float) -> OmeImage:
    return OmeImage(path=path, array=np.ascontiguousarray(array, dtype=np.float32), modality=modality,
                    pixel_size_um=(pixel_um, pixel_um), ome_xml=None, dtype=np.dtype(np.uint16))


def isl(columns: slice = slice(None)) -> RealPair:
    """The ISL phase-contrast stack and its DAPI nuclei, restricted to `columns`."""
    slices = [ISL_DIR / f"PHASE_CONTRAST_z{z:02d}.png" for z in range(ISL_SLICES)]
    tl = [_image(p, _read_png(p)[:, columns], "PC", ISL_PIXEL_UM) for p in slices]
    return RealPair("ISL phase contrast / DAPI", tl, _read_png(ISL_DIR / "DAPI_CONFOCAL.png")[:, columns],
                    ISL_PIXEL_UM)


def lmc_crop(pixel_um: float = LMC_PIXEL_UM) -> RealPair:
    path = LMC_DIR / "TL_input.png"
    return RealPair("Light My Cells crop, bright field", [_image(path, _read_png(path), "BF", pixel_um)],
                    _read_png(LMC_DIR / "Nucleus_target.png"), pixel_um)


def available() -> str | None:
    """None when every real image is here, else why not (for skips and messages)."""
    for folder in (ISL_DIR, LMC_DIR):
        if not folder.is_dir():
            return f"{folder} is missing (../shared/real is not beside the repository)"
    return None
