"""Trivial predictions, written in the challenge's output layout so the same scorer scores them.

- constant: every pixel 0 (uint16). Its percentiles are equal, so the challenge leaves it
  unnormalised: PCC is 0 (NaN -> 0), C_dist is 1 (a zero vector has similarity 0), MAE is the mean
  of the normalised ground truth. Zero is the only constant that means something here: a raw
  constant c is compared with a ground truth normalised to about [0, 1], so any other c only adds c.
- tl_input: the TL input itself, percentile-normalised (p2 -> 0, p99.8 -> 1, no clipping), float32.
  It shows what a model gains over copying the input's structure.

One file per input and baseline; the four organelle folders get hard links to it (a copy where the
file system refuses links), so a 300-image test set costs two images per input on disk.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from preprocessing.layout import OUTPUT_SUBDIRS
from preprocessing.ome_io import ORGANELLES, OmeImage, OmeReadError, list_tiffs, read_ome_tiff, write_ome_tiff

from .challenge import percentile_normalise
from .pairing import input_dir

BASELINES = ("constant", "tl_input")


@dataclass
class BaselineConfig:
    constant_value: int = 0
    names: frozenset[str] | None = None   # only these input names (None = every input)


def _place(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _write_all_organelles(out: Path, name: str, array: np.ndarray, pixel_size) -> None:
    first = out / OUTPUT_SUBDIRS[ORGANELLES[0]] / name
    write_ome_tiff(first, array, channel_name="baseline", pixel_size_um=pixel_size)
    for organelle in ORGANELLES[1:]:
        _place(first, out / OUTPUT_SUBDIRS[organelle] / name)


def baseline_arrays(image: OmeImage, constant_value: int = 0) -> dict[str, np.ndarray]:
    """The trivial predictions for one TL image, exactly as they are written to files."""
    return {"constant": np.full(image.shape, constant_value, dtype=np.uint16),
            "tl_input": percentile_normalise(image.array).astype(np.float32)}


def write_baselines(inputs: str | os.PathLike | Sequence[Path], out: str | os.PathLike,
                    config: BaselineConfig | None = None) -> tuple[dict[str, Path], list[str]]:
    """Write OUT/<baseline>/images/<organelle>-fluorescence-ome-tiff/<name> for every TL input.

    `inputs` is a TL folder (challenge input layout or flat) or a list of TL files.
    Returns (baseline name -> its prediction root, problems): an unreadable input is reported and skipped.
    """
    config = config or BaselineConfig()
    out = Path(out)
    roots = {b: out / b for b in BASELINES}
    problems: list[str] = []
    paths = list_tiffs(input_dir(inputs)) if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    for path in paths:
        if config.names is not None and path.name not in config.names:
            continue
        try:
            image = read_ome_tiff(path)
        except OmeReadError as exc:
            problems.append(str(exc))
            continue
        for name, array in baseline_arrays(image, config.constant_value).items():
            _write_all_organelles(roots[name], path.name, array, image.pixel_size_um)
    return roots, problems
