"""The acquisition settings of the 30 real Light My Cells training studies, as their documentation
states them (the organizers' REMBI sheet, `rembi_studies.csv` in ../shared/real/lmc_training_doc).

Facts, not pixels: modality, pixel size and objective per study. Where the sheet names no
numerical aperture (Studies 16, 17, 28), the value is the usual one for that stand and
magnification and is marked as assumed. Simulated sets that should look like the real set's
acquisitions (the benchmark's development and test sets) draw from this table;
`test/test_synthetic_acquisitions.py` checks it against the sheet when ../shared is present.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Acquisition:
    study: int
    modality: str            # "BF" | "PC" | "DIC"
    pixel_size_nm: float
    magnification: int
    na: float
    na_assumed: bool = False


REAL_ACQUISITIONS: tuple[Acquisition, ...] = (
    Acquisition(1, "BF", 100, 63, 0.7),        # Leica DMi8, 63x/0.7 dry
    Acquisition(2, "DIC", 102, 60, 1.35),      # Olympus FV3000 confocal, 60x/1.35 oil
    Acquisition(3, "BF", 100, 63, 1.40),       # Leica HC PL APO 63x/1.40 oil
    Acquisition(4, "DIC", 60, 63, 1.43),       # Leica DMI8, 63x/1.43 oil
    Acquisition(5, "PC", 65, 100, 1.3),        # Zeiss 100x/1.3 oil Ph3
    Acquisition(6, "PC", 162, 40, 0.6),        # Zeiss LD 40x/0.6 Ph2
    Acquisition(7, "DIC", 103, 63, 1.4),       # Zeiss 63x/1.4 oil DIC
    Acquisition(8, "BF", 162, 40, 1.3),        # Nikon Ti, 40x/1.3 oil
    Acquisition(9, "BF", 162, 40, 1.3),
    Acquisition(10, "BF", 65, 100, 1.4),       # Nikon Ti, 100x/1.4 oil
    Acquisition(11, "BF", 65, 100, 1.4),
    Acquisition(12, "PC", 65, 100, 1.3),       # Nikon Ti, 100x/1.3 oil
    Acquisition(13, "PC", 65, 100, 1.3),
    Acquisition(14, "BF", 65, 100, 1.4),
    Acquisition(15, "PC", 65, 100, 1.4),
    Acquisition(16, "DIC", 103, 63, 1.4, na_assumed=True),   # Zeiss Axio Observer, objective not named
    Acquisition(17, "DIC", 103, 63, 1.4, na_assumed=True),
    Acquisition(18, "DIC", 110, 100, 1.4),     # Nikon Ti2, 100x/1.4 oil, Prime95B
    Acquisition(19, "DIC", 110, 100, 1.4),
    Acquisition(20, "DIC", 110, 100, 1.4),
    Acquisition(21, "DIC", 110, 100, 1.4),
    Acquisition(22, "DIC", 110, 100, 1.4),
    Acquisition(23, "DIC", 110, 60, 1.4),      # Nikon Ti2, 60x/1.4 oil
    Acquisition(24, "DIC", 110, 100, 1.4),
    Acquisition(25, "BF", 79, 100, 1.4),       # Deltavision OMX, 100x/1.4 oil
    Acquisition(26, "BF", 102, 60, 1.42),      # OMX-t, 60x/1.42 oil
    Acquisition(27, "PC", 65, 100, 1.4),       # Leica Thunder, 100x/1.4 oil
    Acquisition(28, "PC", 106, 63, 1.25, na_assumed=True),   # home-made, 63x Olympus phase objective
    Acquisition(29, "PC", 100, 63, 1.4),       # Zeiss Observer 7, 63x/1.4 oil
    Acquisition(30, "BF", 100, 63, 1.4),
)


def acquisitions_of(modality: str) -> tuple[Acquisition, ...]:
    found = tuple(a for a in REAL_ACQUISITIONS if a.modality == modality)
    if not found:
        raise ValueError(f"no real study has modality {modality!r}")
    return found
