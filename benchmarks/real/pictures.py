"""The zero-shot predictions to look at: one row per real image, TL | prediction | target | error.

The scores say how far a prediction is from the real stain; the picture says how (invented spots,
a saturated corner, the cells' outline instead of their nuclei). The ISL row shows one fixed slice
(ISL_PICTURE_SLICE, the middle of the stack) rather than the best or the worst, so no run can pick
a flattering one. Panels are normalised as the challenge does, with scale bars from the assumed
pixel sizes (metrics/report_figures.py draws them).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from metrics.challenge import percentile_normalise
from metrics.report_figures import ExampleRow, Panel, example_figure, save

ISL_PICTURE_SLICE = 6


def _row(result: dict, pair, index: int) -> ExampleRow:
    scores = result["slices"][index]["shipped"]
    where = f"slice z{index:02d}" if len(pair.tl) > 1 else "the crop"
    title = (f"{pair.name}\n{where}, {pair.pixel_size_um} µm assumed\n{result['route']}\n"
             f"PCC {scores['PCC']:.3f}  SSIM {scores['SSIM']:.3f}")
    return ExampleRow(title=title,
                      tl=Panel(percentile_normalise(pair.tl[index].array), pair.pixel_size_um),
                      pred=Panel(percentile_normalise(np.asarray(result["predictions"][index], dtype=np.float64)),
                                 pair.pixel_size_um),
                      gt=Panel(percentile_normalise(pair.nucleus), pair.pixel_size_um))


def write_zero_shot_pictures(results: list[dict], pairs: list, out: Path, dpi: int = 110) -> Path:
    """One PNG: a row per (zero-shot result, its RealPair), the ISL stack at its fixed slice."""
    rows = [_row(r, p, min(ISL_PICTURE_SLICE, len(p.tl) - 1)) for r, p in zip(results, pairs)]
    out.parent.mkdir(parents=True, exist_ok=True)
    return save(example_figure("nucleus (real images, zero-shot)", rows), out, dpi)
