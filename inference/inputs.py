"""Reading one input for inference: strict reader first, then a narrow rescue for odd files.

The evaluator fails a whole job when any of the four outputs is missing, so an input that is
readable but odd (a colour image, a few NaN/inf pixels) is turned into a usable grey plane with a
warning naming the file and what was done, instead of being dropped. Files that cannot be read at
all, or hold stacks, still raise OmeReadError.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from preprocessing.ome_io import OmeImage, OmeReadError, parse_ome_metadata, read_ome_tiff


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
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            data, axes, ome_xml = np.asarray(series.asarray()), series.axes.upper(), tif.ome_metadata
    except Exception:  # unreadable: nothing to rescue, the strict error stands
        return None
    if data.dtype.kind not in "uifb":
        return None
    actions = []
    keep = [(n, a) for n, a in zip(data.shape, axes if len(axes) == data.ndim else "?" * data.ndim) if n != 1]
    plane = data.reshape([n for n, _ in keep]).astype(np.float32)
    if plane.ndim == 3:
        colour_axis = next((i for i, (n, a) in enumerate(keep) if a in "SC" and n in (3, 4)), None)
        if colour_axis is None and keep[-1][0] in (3, 4):
            colour_axis = 2
        if colour_axis is None:
            return None  # a real stack: which plane is meant is not ours to guess
        plane = np.moveaxis(plane, colour_axis, -1)[..., :3].mean(axis=-1)  # drop alpha, average RGB
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
