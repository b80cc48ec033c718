"""Stage held-out studies as the container sees its input: one flat folder of TL images.

    python -m scripts.stage_inputs --studies test/studies --out STAGE
writes STAGE/images/organelles-transmitted-light-ome-tiff/<TL file name> for every z-slice of every
field of view under STUDIES/Study_*/. Names are kept, so the scorer can pair each prediction with
its field of view's ground truth and its focus record in bestz.csv.

Files are hard-linked where the file system allows (a 300-image set costs no disk) and copied
otherwise; never symlinked, because a symlink pointing outside the folder is dangling once the
folder is bind-mounted into a container.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from preprocessing.layout import INPUT_SUBDIR, index_studies  # noqa: E402


class StagingError(ValueError):
    """The studies cannot be staged; the message names the folder or files and why."""


def _place(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed
        shutil.copyfile(source, target)


def stage_inputs(studies: str | os.PathLike, out: str | os.PathLike) -> list[Path]:
    """Place every TL slice of STUDIES into OUT/INPUT_SUBDIR; returns the staged files, sorted.

    OUT/INPUT_SUBDIR is emptied first, so a re-run never leaves stale inputs behind.
    """
    studies, out = Path(studies), Path(out)
    if not studies.is_dir():
        raise StagingError(f"{studies}: no such studies folder")
    fovs = index_studies(studies)
    sources: dict[str, Path] = {}
    for fov in fovs:
        for path in fov.slices.values():
            if path.name in sources:
                raise StagingError(f"two TL files share the name {path.name}: {sources[path.name]} and {path}; "
                                   "the flat input folder needs unique names")
            sources[path.name] = path
    if not sources:
        raise StagingError(f"{studies}: no transmitted-light files (Study_*/image_<id>_<BF|PC|DIC>_z<k>.ome.tiff)")
    target_dir = out / INPUT_SUBDIR
    if target_dir.exists():
        shutil.rmtree(target_dir)
    target_dir.mkdir(parents=True)
    staged = []
    for name in sorted(sources):
        _place(sources[name], target_dir / name)
        staged.append(target_dir / name)
    return staged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", required=True, type=Path, help="root holding Study_*/ folders")
    parser.add_argument("--out", required=True, type=Path,
                        help=f"stage root; files go to OUT/{INPUT_SUBDIR}")
    args = parser.parse_args(argv)
    try:
        staged = stage_inputs(args.studies, args.out)
    except (StagingError, ValueError) as exc:
        print(f"stage_inputs: {exc}", file=sys.stderr)
        return 1
    print(f"stage_inputs: {len(staged)} TL images -> {args.out / INPUT_SUBDIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
