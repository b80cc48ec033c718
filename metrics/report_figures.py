"""The report's two figures per organelle: an example montage and metric-vs-focus plots.

Both are built as matplotlib Figures (the tests inspect them) and then saved as PNGs.
- Example montage: rows = chosen images, columns = TL input, prediction, ground truth and
  |ground truth - prediction|, as the challenge sees them (percentile-normalised). Each column has
  one colour bar (all rows share its scale, so rows compare), each panel a scale bar in µm from
  the ground truth's pixel size, and each row its title in the left margin, never on the image.
- Focus plots: one panel per metric against |image_z - best_z|; per modality the mean over images
  as a marker with a +-1 SD error bar and the number of images written beside it; the baselines
  the same way in grey. No line joins the points: test sets have a few images per deviation, and a
  line would suggest a trend between points that were never measured.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar  # noqa: E402

from preprocessing.ome_io import OmeReadError, read_ome_tiff  # noqa: E402

from .aggregate import TL_ORDER  # noqa: E402
from .challenge import LOWER_IS_BETTER, METRICS_BY_ORGANELLE, percentile_normalise  # noqa: E402

MODALITY_COLOURS = {"BF": "tab:blue", "DIC": "tab:orange", "PC": "tab:green"}
BASELINE_STYLE = {"constant": ("s", "0.55"), "tl_input": ("^", "0.25")}   # marker, grey level
BASELINE_LABELS = {"constant": "baseline: constant 0", "tl_input": "baseline: TL input"}
_NICE_UM = (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


@dataclass
class Panel:
    """One image of the montage, already normalised; None where the file is missing or unreadable."""
    image: np.ndarray | None
    pixel_size_um: float | None


@dataclass
class ExampleRow:
    title: str            # the left-margin text: which image, why it was picked, its scores
    tl: Panel
    pred: Panel
    gt: Panel
    spread: Panel | None = None   # process.py --uncertainty's map, as written (not normalised)


def load_panel(path: Path | None, normalise: bool = True) -> Panel:
    if path is None:
        return Panel(None, None)
    try:
        image = read_ome_tiff(path)
    except OmeReadError:
        return Panel(None, None)
    size = image.pixel_size_um
    return Panel(percentile_normalise(image.array) if normalise else image.array,
                 math.sqrt(size[0] * size[1]) if size else None)


def _spread_top(rows: list[ExampleRow]) -> float:
    """One colour scale for every spread map of the figure: their common 99.5th percentile."""
    values = [np.percentile(r.spread.image, 99.5) for r in rows if r.spread is not None and r.spread.image is not None]
    return max(float(max(values, default=0.0)), 1e-6)


def _display(array: np.ndarray, max_side: int) -> tuple[np.ndarray, int]:
    """Strided to at most max_side a side (plenty for a screen) and the stride used."""
    step = max(1, math.ceil(max(array.shape) / max_side))
    return array[::step, ::step], step


def scale_bar_um(width_um: float) -> float:
    """A round length of about a fifth of the image width."""
    target = width_um / 5
    return max([n for n in _NICE_UM if n <= target], default=_NICE_UM[0])


def _add_scale_bar(ax, shown_width_px: int, step: int, pixel_size_um: float) -> None:
    length_um = scale_bar_um(shown_width_px * step * pixel_size_um)
    length_px = length_um / (pixel_size_um * step)
    label = f"{length_um:g} µm"
    bar = AnchoredSizeBar(ax.transData, length_px, label, "lower right", color="white", frameon=True,
                          size_vertical=max(1.0, shown_width_px / 120), pad=0.3, borderpad=0.4, sep=2,
                          fontproperties={"size": 8})
    # White on a translucent dark box: readable on a bright TL background as on dark fluorescence.
    bar.patch.set(facecolor="black", alpha=0.45, edgecolor="none")
    ax.add_artist(bar)


def example_figure(organelle: str, rows: list[ExampleRow], max_side: int = 512) -> Figure:
    columns = ["TL input", "prediction", "ground truth", "|ground truth - prediction|"]
    with_spread = any(row.spread is not None for row in rows)
    if with_spread:
        columns.append("spread over TTA views / models")
    spread_top = _spread_top(rows)
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(3.5 * len(columns), 3.1 * len(rows) + 0.9),
                             squeeze=False, layout="constrained")
    shown_by_column: dict[int, object] = {}
    for r, row in enumerate(rows):
        error = None
        if row.pred.image is not None and row.gt.image is not None and row.pred.image.shape == row.gt.image.shape:
            error = Panel(np.abs(row.gt.image - row.pred.image), row.gt.pixel_size_um)
        # The TL input and the prediction share the ground truth's grid: its pixel size is the one
        # the scale bar is drawn from (the prediction's own metadata may be missing).
        pixel = row.gt.pixel_size_um or row.tl.pixel_size_um
        panels = [(row.tl, "gray", 1.0), (row.pred, "gray", 1.0), (row.gt, "gray", 1.0), (error, "magma", 0.5)]
        if with_spread:
            panels.append((row.spread, "viridis", spread_top))
        for c, (panel, cmap, vmax) in enumerate(panels):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(columns[c])
            if panel is None or panel.image is None:
                ax.text(0.5, 0.5, "not available", ha="center", va="center", transform=ax.transAxes)
                continue
            image, step = _display(panel.image, max_side)
            # Normalised images on [0, 1] (values beyond saturate); errors on [0, 0.5], where most are.
            shown_by_column[c] = ax.imshow(image, cmap=cmap, vmin=0.0, vmax=vmax, interpolation="nearest")
            if pixel:
                _add_scale_bar(ax, image.shape[1], step, pixel)
        axes[r, 0].set_ylabel(row.title, rotation=0, ha="right", va="center", fontsize=8, labelpad=8)
    labels = ["normalised intensity"] * 3 + ["absolute error (normalised)", "std over views ([0, 1] prediction scale)"]
    for c, shown in shown_by_column.items():
        fig.colorbar(shown, ax=axes[:, c], location="bottom", shrink=0.85, extend="max", label=labels[c])
    if not any(row.gt.pixel_size_um or row.tl.pixel_size_um for row in rows):
        fig.text(0.01, 0.005, "no scale bar: the ground truth has no pixel size", fontsize=8)
    fig.suptitle(f"{organelle}: examples, each image normalised as the challenge does (p2 -> 0, p99.8 -> 1)")
    return fig


def _jitter(index: int, count: int, width: float = 0.3) -> float:
    """x offset of series `index` of `count`, so markers at the same deviation do not hide each other."""
    return 0.0 if count <= 1 else -width / 2 + width * index / (count - 1)


def _series_points(points: list[tuple[int, dict]], metric: str) -> list[tuple[int, float, float, int]]:
    """(deviation, mean, SD, n) per deviation, NaN scores left out of the mean and the count."""
    by_dev: dict[int, list[float]] = {}
    for dev, scores in points:
        value = scores.get(metric)
        if value is not None and not math.isnan(value):
            by_dev.setdefault(dev, []).append(value)
    return [(d, float(np.mean(v)), float(np.std(v)), len(v)) for d, v in sorted(by_dev.items())]


def focus_figure(organelle: str, model: list[tuple[str | None, int | None, dict]],
                 baselines: dict[str, list[tuple[int | None, dict]]] | None = None) -> Figure | None:
    """Metrics vs focus deviation; model points per modality, baselines pooled over modalities.
    None when no image has a focus deviation."""
    model = [(m, d, s) for m, d, s in model if d is not None]
    if not model:
        return None
    baselines = {name: [(d, s) for d, s in pts if d is not None] for name, pts in (baselines or {}).items()}
    modalities = [m for m in [*TL_ORDER, None] if any(p[0] == m for p in model)]
    series = [(m or "unknown", "o", MODALITY_COLOURS.get(m or "", "tab:purple"),
               [(d, s) for mm, d, s in model if mm == m], True) for m in modalities]
    series += [(BASELINE_LABELS.get(n, n), *BASELINE_STYLE.get(n, ("D", "0.4")), pts, False)
               for n, pts in baselines.items() if pts]
    metrics = METRICS_BY_ORGANELLE[organelle]
    # At most three panels a row, so a page shows them at a readable size, and one panel more than
    # metrics: the legend's, where it covers neither the points nor the title.
    ncols = min(3, len(metrics) + 1)
    nrows = math.ceil((len(metrics) + 1) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.4 * ncols + 2.2, 3.4 * nrows + 0.4), squeeze=False,
                             layout="constrained")
    flat = list(axes.flat)
    for ax in flat[len(metrics):]:
        ax.set_axis_off()
    for ax, metric in zip(flat, metrics):
        for i, (label, marker, colour, pts, count_shown) in enumerate(series):
            stats = _series_points(pts, metric)
            if not stats:
                continue
            x = np.array([d for d, *_ in stats]) + _jitter(i, len(series))
            ax.errorbar(x, [s[1] for s in stats], yerr=[s[2] for s in stats], fmt=marker, linestyle="none",
                        color=colour, capsize=3, markersize=5, label=label)
            if count_shown:   # the baselines are scored on the same images: one count per point is enough
                for xi, (_, mean, _, n) in zip(x, stats):
                    ax.annotate(f"n={n}", (xi, mean), textcoords="offset points", xytext=(4, 4), fontsize=7,
                                color=colour)
        better = "lower" if metric in LOWER_IS_BETTER else "higher"
        ax.set_ylabel(f"{metric} ({better} is better)")
        ax.set_xlabel("focus deviation |image_z - best_z| (slices)")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    handles, labels = flat[0].get_legend_handles_labels()
    flat[-1].legend(handles, labels, loc="center", fontsize=9, title="mean of images per deviation")
    fig.suptitle(f"{organelle}: metrics vs focus deviation (markers: mean over images, bars: +-1 SD, "
                 "n = images per point; baselines on the same images)")
    return fig


def save(fig: Figure, out: Path, dpi: int) -> Path:
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
