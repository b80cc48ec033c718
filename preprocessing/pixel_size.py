"""The physical pixel size of an input, from whichever metadata the file carries (no torch, no I/O).

Precedence, first that gives a usable size wins:
1. OME-XML `Pixels/@PhysicalSizeX/Y` with their `...Unit` (default µm); every OME length unit
   (m, cm, mm, µm written with the micro sign U+00B5 or the Greek mu U+03BC, um, nm, pm, Å, in, ...).
   Only one of X and Y present: it is used for both (square pixels are the norm; a size is better
   than none, since the model's grid depends on it).
2. ImageJ: the resolution tags read in ImageJ's `unit=` (micron, um, \\u00B5m, nm, mm, cm, ...) --
   ImageJ writes ResolutionUnit NONE and keeps its unit in the description. ImageJ's `spacing=` is
   the z-step, not the XY pixel size, and is not used.
3. Plain TIFF XResolution/YResolution with ResolutionUnit INCH or CENTIMETER (pixels per unit, the
   reciprocal of the size). A result outside PLAUSIBLE_TAG_UM is a writer's display default (72 or
   96 dpi is 350 µm per pixel) and is ignored, with a note.
Sources lower in the list are read only when the ones above say nothing usable.
"""
from __future__ import annotations

import math

# OME UnitsLength symbols -> micrometres. Both micro characters are seen in real files.
_SI_PREFIX_UM = {"Y": 1e30, "Z": 1e27, "E": 1e24, "P": 1e21, "T": 1e18, "G": 1e15, "M": 1e12,
                 "k": 1e9, "h": 1e8, "da": 1e7, "": 1e6, "d": 1e5, "c": 1e4, "m": 1e3,
                 "µ": 1.0, "μ": 1.0, "u": 1.0, "n": 1e-3, "p": 1e-6, "f": 1e-9, "a": 1e-12,
                 "z": 1e-15, "y": 1e-18}
LENGTH_UNITS_UM = {prefix + "m": factor for prefix, factor in _SI_PREFIX_UM.items()}
LENGTH_UNITS_UM.update({"\u00c5": 1e-4, "\u212b": 1e-4, "angstrom": 1e-4, "micron": 1.0, "microns": 1.0,
                        "micrometer": 1.0, "micrometre": 1.0, "nanometer": 1e-3, "millimeter": 1e3,
                        "in": 25400.0, "inch": 25400.0, "thou": 25.4, "mil": 25.4,
                        "ft": 304800.0, "pt": 25400.0 / 72})
PLAUSIBLE_TAG_UM = (1e-3, 100.0)
_TIFF_UNIT_UM = {2: 25400.0, 3: 1e4}   # ResolutionUnit INCH, CENTIMETER; 1 (NONE) has no length

PixelSize = tuple[float, float]   # (y, x) in µm


def to_um(value, unit: str | None) -> float | None:
    """`value` in `unit` as micrometres; None when either is not usable (unknown unit, <= 0, nan)."""
    unit = _decode_escapes((unit or "µm").strip())
    factor = LENGTH_UNITS_UM.get(unit, LENGTH_UNITS_UM.get(unit.lower()))
    try:
        um = float(value) * factor  # type: ignore[operator]
    except (TypeError, ValueError):
        return None
    return um if math.isfinite(um) and um > 0 else None


def ome_pixel_size(attributes: dict) -> PixelSize | None:
    """From a Pixels element's attributes; one axis alone serves for both."""
    y, x = (to_um(attributes.get(f"PhysicalSize{a}"), attributes.get(f"PhysicalSize{a}Unit"))
            for a in ("Y", "X"))
    if y is None and x is None:
        return None
    return (y or x, x or y)  # type: ignore[return-value]


def pixel_size_from(ome: PixelSize | None, imagej: dict | None,
                    resolution: tuple | None) -> tuple[PixelSize | None, str | None, list[str]]:
    """(pixel size, its source "OME" | "ImageJ" | "resolution tags", notes) by the precedence above."""
    if ome is not None:
        return ome, "OME", []
    notes: list[str] = []
    if resolution is not None and imagej is not None:
        size = _from_resolution(resolution, lambda: to_um(1.0, imagej["unit"]) if imagej.get("unit") else None)
        if size is not None:
            return size, "ImageJ", notes
    if resolution is not None and imagej is None:
        size = _from_resolution(resolution, lambda: _TIFF_UNIT_UM.get(resolution[2]))
        if size is not None and all(PLAUSIBLE_TAG_UM[0] <= s <= PLAUSIBLE_TAG_UM[1] for s in size):
            return size, "resolution tags", notes
        if size is not None:
            notes.append(f"resolution tags give {size[1]:.4g} x {size[0]:.4g} µm per pixel, outside "
                         f"{list(PLAUSIBLE_TAG_UM)} µm (a display default, not a microscope's); ignored")
    return None, None, notes


def _from_resolution(resolution: tuple, unit_um) -> PixelSize | None:
    x_per_unit, y_per_unit, _ = resolution
    per = unit_um()
    if per is None or not x_per_unit or not y_per_unit:
        return None
    size = (per / y_per_unit, per / x_per_unit)
    return size if all(math.isfinite(s) and s > 0 for s in size) else None


def _decode_escapes(unit: str) -> str:
    r"""ImageJ writes µ as the six characters \u00B5 in its description."""
    if "\\u" not in unit:
        return unit
    try:
        return unit.encode("ascii").decode("unicode_escape")
    except (UnicodeError, ValueError):
        return unit
