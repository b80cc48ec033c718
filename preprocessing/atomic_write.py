"""Write a file so that readers see the old one or the whole new one, never half of it.

Every file the project writes for others to read (OME-TIFF outputs, checkpoints, manifests,
training checkpoints) goes through `atomic_target`: the writer fills a hidden temporary file in the
same folder, which then replaces the target in one rename.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

# mkstemp creates 0600 files; outputs, weights and manifests are meant to be read by others
# (a grader's user, a shared weights folder), as a plain open() would have made them.
FILE_MODE = 0o644
# Characters of the target's name kept in the temporary name (the rest is ~20 bytes of random + suffix).
TEMP_NAME_KEEP = 40


@contextmanager
def atomic_target(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path` to write to; when the block ends without an error it
    becomes `path` (mode 0644), otherwise it is removed and `path` is left as it was.

    The temporary name is hidden and ends in ".partial", so a reader listing the folder for
    *.tiff or *.pt never picks up a half-written file. It holds at most the first TEMP_NAME_KEEP
    characters of the target's name: a target near the 255-byte limit must still be writable."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:TEMP_NAME_KEEP]}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, data, check: Callable[[Path], object] | None = None) -> Path:
    """Write `data` as indented JSON, atomically. `check(temporary_path)` runs on the written file
    before it replaces `path`: if it raises, `path` is left as it was."""
    path = Path(path)
    with atomic_target(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
        if check is not None:
            check(tmp)
    return path
