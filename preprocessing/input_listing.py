"""What in an input folder is an input, and why every other entry is not.

Only regular files (or links to them) named *.tif / *.tiff, not hidden, are inputs. Everything else
is reported with a reason, never skipped silently. An entry that looks like an input by its name
but cannot be one (a broken link, a FIFO, a directory called x.tiff) counts as dropped: the exit
code must then say the run was incomplete. Hidden files (.DS_Store, ._x.tiff from macOS) and
entries with other names are only named. FIFOs are never opened (a read would block forever).
"""
from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

TIFF_SUFFIXES = (".tif", ".tiff")


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: str
    dropped: bool        # True: it looked like an input, so the run is not complete without it


def list_inputs(folder: Path) -> tuple[list[Path], list[Skipped]]:
    """(input files sorted by name, every other entry with its reason). Raises OSError when the
    folder itself cannot be listed."""
    files, skipped = [], []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        reason = _not_an_input(Path(entry.path))
        if reason is None:
            files.append(Path(entry.path))
        else:
            tiff_name = entry.name.lower().endswith(TIFF_SUFFIXES)
            skipped.append(Skipped(entry.name, reason, dropped=tiff_name and not entry.name.startswith(".")))
    return files, skipped


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
    if not path.name.lower().endswith(TIFF_SUFFIXES):
        return "not a .tif/.tiff file"
    return None
