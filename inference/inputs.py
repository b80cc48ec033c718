"""Reading one input for inference: every readable file (TIFF, or a 2D image of
preprocessing/image_files.py) becomes one usable grey plane.

The evaluator fails a whole job when any of the four outputs is missing, so an input that is
readable but odd is turned into a plane by documented rules (preprocessing/planes.py: stacks give
their middle plane, channels their TL channel or their mean, alpha is dropped), and every change
comes back as a warning naming the file: float values beyond float32's comfortable range are
rescaled (the percentile normalisation downstream does not care about scale), NaN/inf pixels get
the median. Only files that cannot be read at all, or whose plane is over MAX_INPUT_PIXELS, raise.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np

from preprocessing.image_files import is_image_file_name, read_image_file
from preprocessing.ome_io import OmeImage, OmeReadError, channel_names, metadata_of, normalise_modality, read_tiff
from preprocessing.planes import reduce_to_plane

# 8192 x 8192: four float32 predictions of this size already take 1 GB (see README "Inputs").
MAX_INPUT_PIXELS = 2 ** 26
# Finite float magnitudes outside this range lose everything in float32 (inf or denormal zeros).
_FLOAT_RANGE = (1e-30, 1e30)
log = logging.getLogger(__name__)


def load_input(path: str | Path, plane: int | None = None) -> tuple[OmeImage, list[str]]:
    """(image, warnings). Raises OmeReadError (naming the file) when nothing usable can be read,
    or when `plane` (the stack index to use instead of the middle plane) is out of range."""
    path = Path(path)
    raw = read_image_file(path) if is_image_file_name(path.name) else read_tiff(path)
    try:
        grey, actions = reduce_to_plane(raw.data, raw.axes, channel_names(raw.ome_xml), raw.alpha_samples,
                                         plane)
    except ValueError as exc:
        raise OmeReadError(f"{path}: {exc} (axes {raw.axes})") from exc
    if grey.size > MAX_INPUT_PIXELS:
        raise OmeReadError(f"{path}: plane {grey.shape[0]}x{grey.shape[1]} is over the bound of "
                           f"{MAX_INPUT_PIXELS} pixels")
    grey = finite_float32(grey, actions)
    modality, pixel_size = metadata_of(raw, actions)
    image = OmeImage(path=path, array=np.ascontiguousarray(grey, dtype=np.float32), modality=modality,
                     pixel_size_um=pixel_size, ome_xml=raw.ome_xml, dtype=raw.data.dtype)
    return image, ([f"{path}: {'; '.join(actions)}"] if actions else [])


def finite_float32(plane: np.ndarray, actions: list[str]) -> np.ndarray:
    """The plane as finite float32; a rescale or a fill is added to `actions`."""
    if plane.dtype.kind == "f":
        finite = np.isfinite(plane)
        peak = float(np.abs(plane[finite]).max()) if finite.any() else 0.0
        if peak > _FLOAT_RANGE[1] or 0.0 < peak < _FLOAT_RANGE[0]:
            stored = plane.dtype
            with np.errstate(all="ignore"):
                plane = plane.astype(np.float64) / peak
            actions.append(f"{stored} values up to {peak:g} rescaled by 1/{peak:g} to fit float32")
    with np.errstate(over="ignore"):
        plane = plane.astype(np.float32)
    finite = np.isfinite(plane)
    if not finite.all():
        fill = float(np.median(plane[finite])) if finite.any() else 0.0
        plane = np.where(finite, plane, np.float32(fill)).astype(np.float32)
        actions.append(f"{int((~finite).sum())} NaN/inf pixel(s) set to the median {fill:g}")
    return plane


def checked_modality(name: str, label: str) -> str:
    """A modality a person gave (flag or argument), understood or a ValueError: a typo must not
    silently become bright field. `label` names where it came from in the message."""
    modality = normalise_modality(name)
    if modality is None:
        raise ValueError(f"{label} {name!r} is not bright field, phase contrast or DIC (e.g. BF, PC, DIC)")
    return modality


def checked_pixel_size(value: float, label: str) -> float:
    """A pixel size a person gave, finite and positive, or a ValueError naming `label`."""
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{label} must be a finite number of µm above 0, got {value}")
    return value


def override_metadata(image: OmeImage, modality: str | None, pixel_size_um: float | None) -> None:
    """Checked values a person gave win over the file's metadata; replacing a value the file had is
    logged, naming the file (process.py --modality/--pixel-size, inference.api.predict_file)."""
    if modality is not None:
        if image.modality not in (None, modality):
            log.warning("%s: modality %s from its metadata replaced by --modality %s", image.path.name,
                        image.modality, modality)
        image.modality = modality
    if pixel_size_um is not None:
        if image.pixel_size_um is not None and tuple(image.pixel_size_um) != (pixel_size_um, pixel_size_um):
            log.warning("%s: pixel size %s µm from its metadata replaced by --pixel-size %g", image.path.name,
                        "x".join(f"{v:g}" for v in image.pixel_size_um), pixel_size_um)
        image.pixel_size_um = (pixel_size_um, pixel_size_um)
