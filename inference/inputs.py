"""Reading one input for inference: strict reader first, then a narrow rescue for odd files.

The evaluator fails a whole job when any of the four outputs is missing, so an input that is
readable but odd (a colour image, a few NaN/inf pixels) is turned into a usable grey plane with a
warning naming the file and what was done, instead of being dropped. Files that cannot be read at
all, or hold stacks, still raise OmeReadError.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from preprocessing.ome_io import (OmeImage, OmeReadError, colour_axis, parse_ome_metadata, read_ome_tiff,
                                  read_series, squeeze_singletons)


def load_input(path: str | Path) -> tuple[OmeImage, list[str]]:
    """(image, warnings). Raises OmeReadError (naming the file) when nothing usable can be read."""
    path = Path(path)
    try:
        return read_ome_tiff(path), []
    except OmeReadError as strict_error:
        rescued = _rescue(path)
        if rescued is None:
            raise
        image, actions = rescued
        return image, [f"{strict_error}; rescued: {'; '.join(actions)}"]


def _rescue(path: Path) -> tuple[OmeImage, list[str]] | None:
    try:
        data, axes, ome_xml = read_series(path)
    except OmeReadError:  # unreadable: nothing to rescue, the strict error stands
        return None
    actions = []
    plane, kept = squeeze_singletons(data, axes)
    plane = plane.astype(np.float32)
    if plane.ndim == 3:
        axis = colour_axis(plane.shape, kept)
        if axis is None:
            return None  # a real stack: which plane is meant is not ours to guess
        plane = np.moveaxis(plane, axis, -1)[..., :3].mean(axis=-1)  # drop alpha, average RGB
        actions.append("colour channels averaged to grey")
    if plane.ndim != 2:
        return None
    finite = np.isfinite(plane)
    if not finite.all():
        fill = float(np.median(plane[finite])) if finite.any() else 0.0
        plane = np.where(finite, plane, np.float32(fill)).astype(np.float32)
        actions.append(f"{int((~finite).sum())} NaN/inf pixel(s) set to the median {fill:g}")
    modality, pixel_size = parse_ome_metadata(ome_xml)
    return OmeImage(path=path, array=np.ascontiguousarray(plane, dtype=np.float32), modality=modality,
                    pixel_size_um=pixel_size, ome_xml=ome_xml, dtype=data.dtype), actions
