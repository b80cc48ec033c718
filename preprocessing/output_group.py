"""Files that must appear together or not at all: an input's four organelle outputs.

The evaluator fails the whole job when one of an input's four outputs is missing, and a half set is
worse than none (it looks done). `write_together` writes every file to a short hidden temporary
name beside its target, and renames them into place only when all were written; any failure
removes what was written. Temporary names are `.lmc-<pid>-<random>.partial`: short, so a target
name near the 255-byte limit still works, and carrying the writer's pid, so `remove_leftovers` at
the start of a run can tell a killed run's files from those of a run still going on beside it.
"""
from __future__ import annotations

import errno
import os
import re
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path

from preprocessing.atomic_write import FILE_MODE

_TEMP = re.compile(r"^\.+lmc-(\d+)-.*\.partial$")
# Hidden *.partial files of the older atomic writer (no pid): only a killed run leaves them.
_LEGACY = re.compile(r"^\..*\.partial$")
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFullError(OSError):
    """No space left on the output's device (ENOSPC, or a quota): said as such in the log."""


def temp_name() -> str:
    return f".lmc-{os.getpid()}-{secrets.token_hex(4)}.partial"


def write_together(targets: Iterable[tuple[Path, Callable[[Path], object]]]) -> list[Path]:
    """Call each `write(temporary_path)`, then rename all into their targets; on any error none of
    the targets is left (temporary files removed) and the error is raised, a full disk as
    DiskFullError."""
    pending: list[tuple[Path, Path]] = []
    done: list[Path] = []
    try:
        for target, write in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.parent / temp_name()
            pending.append((tmp, target))
            write(tmp)
        for tmp, target in pending:
            os.chmod(tmp, FILE_MODE)
            os.replace(tmp, target)
            done.append(target)
    except BaseException as exc:
        for tmp, _ in pending:
            tmp.unlink(missing_ok=True)
        for target in done:   # a rename failed half-way: none rather than some
            target.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:
            raise DiskFullError(exc.errno, f"disk full (no space left on the device of {pending[-1][1].parent})") \
                from exc
        raise
    return done


def _alive(pid: int) -> bool:
    if pid == os.getpid():   # a restarted container reuses the pid: that earlier run is dead
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):   # no such process (or no such pid at all)
        return False
    except PermissionError:   # someone else's live process
        return True
    return True


def remove_leftovers(folders: Iterable[Path]) -> list[Path]:
    """Remove the temporary files a killed run left in `folders`; those of live runs stay."""
    removed = []
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            match = _TEMP.match(entry.name)
            stale = (not _alive(int(match.group(1)))) if match else bool(_LEGACY.match(entry.name))
            if stale and entry.is_file(follow_symlinks=False):
                try:
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
                except OSError:
                    pass
    return removed


def check_writable(folder: Path) -> str | None:
    """None when a file can be created in `folder` (made if missing); else why not, in words.
    A real probe file: os.access says yes to root on a read-only mount."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / temp_name()
        with open(probe, "wb") as handle:
            handle.write(b"0")
        probe.unlink()
    except OSError as exc:
        reason = "disk full" if exc.errno in DISK_FULL else (exc.strerror or str(exc))
        return f"{folder}: {reason}"
    return None
