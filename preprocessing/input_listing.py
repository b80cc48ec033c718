"""What in an input folder is an input, and why every other entry is not.

Inputs are regular files (or links to them), not hidden, named *.tif / *.tiff or with one of the
2D image suffixes of preprocessing/image_files.py (.png, .jpg, ...). Everything else is reported
with a reason, never skipped silently. An entry that looks like an input by its name but cannot be
one (a broken link, a FIFO, a directory called x.tiff, a second file whose output name is taken)
counts as dropped: the exit code must then say the run was incomplete. Hidden files (.DS_Store,
._x.tiff from macOS), entries with other names and the ground-truth files of a study folder
(image_<id>_Nucleus.ome.tiff, ...: a fluorescence image is not a transmitted-light input) are only
named. FIFOs are never opened (a read would block forever).
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from preprocessing.image_files import IMAGE_SUFFIXES
from preprocessing.layout import GT_NAME
from preprocessing.ome_io import output_name

TIFF_SUFFIXES = (".tif", ".tiff")
INPUT_SUFFIXES = TIFF_SUFFIXES + IMAGE_SUFFIXES


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str
    dropped: bool        # True: it looked like an input, so the run is not complete without it


def list_inputs(folder: Path) -> tuple[list[Path], list[Skipped]]:
    """(input files sorted by name, every other entry with its reason). Raises OSError when the
    folder itself cannot be listed."""
    files, skipped, outputs = [], [], {}
    # TIFFs first: their output keeps the input's name (the challenge's rule), so a PNG whose
    # <stem>.ome.tiff collides with a TIFF is the one that gives way.
    entries = sorted(os.scandir(folder), key=lambda e: (not e.name.lower().endswith(TIFF_SUFFIXES), e.name))
    for entry in entries:
        reason = _not_an_input(Path(entry.path))
        if reason is None and output_name(entry.name) in outputs:
            reason = (f"its outputs would be named {output_name(entry.name)}, like those of "
                      f"{outputs[output_name(entry.name)]}; rename one of them")
        if reason is None:
            files.append(Path(entry.path))
            outputs[output_name(entry.name)] = entry.name
        else:
            input_name = entry.name.lower().endswith(INPUT_SUFFIXES) and not GT_NAME.match(entry.name)
            skipped.append(Skipped(entry.name, reason, dropped=input_name and not entry.name.startswith(".")))
    return sorted(files, key=lambda p: p.name), sorted(skipped, key=lambda s: s.name)


def _not_an_input(path: Path) -> str | None:
    if path.name.startswith("."):
        return "hidden file"
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "broken symbolic link" if path.is_symlink() else "vanished while listing"
    except OSError as exc:
        return f"cannot stat ({exc.strerror or exc})"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe), not read"
    if not stat.S_ISREG(mode):
        return "not a regular file (device or socket)"
    if not path.name.lower().endswith(INPUT_SUFFIXES):
        return "not a TIFF or other image file (.tif, .tiff, .png, .jpg, ... see preprocessing/image_files.py)"
    match = GT_NAME.match(path.name)
    if match:
        return f"the {match['organelle']} ground truth of a study folder, not a transmitted-light input"
    return None
