"""A visual report for people: example grids, metric-vs-focus plots and an index.html that links them.

Per organelle:
- <organelle>_examples.png: rows = the best, median and worst image by PCC; columns = TL input,
  prediction, ground truth (both as the challenge sees them: percentile-normalised, shown on [0, 1])
  and |ground truth - prediction|;
- <organelle>_focus.png: each metric against |image_z - best_z|, one line per modality (mean with
  a band of +- one standard deviation over images).
Images are shown at most `max_side` pixels a side (strided), which is plenty for a screen.
"""
from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from preprocessing.ome_io import OmeReadError, read_ome_tiff  # noqa: E402

from .aggregate import AGGREGATE_ORGANELLES, TL_ORDER  # noqa: E402
from .challenge import ALL_METRICS, METRICS_BY_ORGANELLE, percentile_normalise  # noqa: E402
from .pairing import ImageRecord  # noqa: E402
from .score import ScoreRun  # noqa: E402
from .table import counts  # noqa: E402

MODALITY_COLOURS = {"BF": "tab:blue", "DIC": "tab:orange", "PC": "tab:green"}


@dataclass
class ReportConfig:
    max_side: int = 512
    dpi: int = 100
    title: str = "Light My Cells: local evaluation"


def pick_examples(scores: list[tuple[str, float]]) -> list[tuple[str, str, float]]:
    """(label, name, PCC) for the best, median and worst image by PCC; fewer when fewer images."""
    ordered = sorted(scores, key=lambda s: (-s[1], s[0]))
    if not ordered:
        return []
    picks = [("best", 0), ("median", len(ordered) // 2), ("worst", len(ordered) - 1)]
    seen, out = set(), []
    for label, index in picks:
        if index not in seen:
            seen.add(index)
            out.append((label, *ordered[index]))
    return out


def _display(array: np.ndarray, max_side: int) -> np.ndarray:
    step = max(1, math.ceil(max(array.shape) / max_side))
    return array[::step, ::step]


def _load(path: Path | None) -> np.ndarray | None:
    if path is None:
        return None
    try:
        return percentile_normalise(read_ome_tiff(path).array)
    except OmeReadError:
        return None


def example_grid(organelle: str, picks: list[tuple[str, ImageRecord, dict]], out: Path,
                 config: ReportConfig) -> Path:
    fig, axes = plt.subplots(len(picks), 4, figsize=(13, 3.2 * len(picks)), squeeze=False)
    for row, (label, record, scores) in enumerate(picks):
        tl = _load(record.input_path)
        pred, gt = _load(record.predictions.get(organelle)), _load(record.ground_truth.get(organelle))
        error = np.abs(gt - pred) if pred is not None and gt is not None else None
        panels = [("TL input", tl, "gray", 1.0), ("prediction", pred, "gray", 1.0),
                  ("ground truth", gt, "gray", 1.0), ("|gt - prediction| (0-0.5)", error, "magma", 0.5)]
        for col, (name, image, cmap, vmax) in enumerate(panels):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            if image is None:
                ax.text(0.5, 0.5, "not available", ha="center", va="center", transform=ax.transAxes)
            else:
                # Normalised images shown on [0, 1] (values outside saturate); errors on [0, 0.5],
                # where most of them are, the same scale for every row so rows compare.
                shown = ax.imshow(_display(image, config.max_side), cmap=cmap, vmin=0.0, vmax=vmax,
                                  interpolation="nearest")
                if col == 3:
                    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, extend="max")
            if row == 0:
                ax.set_title(name)
        summary = "  ".join(f"{m}={scores[m]:.3f}" for m in ("PCC", "SSIM", "MAE") if m in scores)
        focus = f"{record.modality or '?'} |dz|={record.deviation if record.deviation is not None else '?'}"
        axes[row, 0].set_ylabel(f"{label}\n{record.name}\n{focus}\n{summary}", fontsize=8)
    fig.suptitle(f"{organelle}: best / median / worst by PCC (normalised as the challenge does)")
    fig.tight_layout()
    fig.savefig(out, dpi=config.dpi)
    plt.close(fig)
    return out


def focus_plot(organelle: str, points: list[tuple[str | None, int | None, dict]], out: Path,
               config: ReportConfig) -> Path | None:
    """Each metric vs focus deviation per modality; None when no image has focus information."""
    points = [(m, d, s) for m, d, s in points if d is not None]
    if not points:
        return None
    metrics = METRICS_BY_ORGANELLE[organelle]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for modality in [*TL_ORDER, None]:
            by_dev: dict[int, list[float]] = {}
            for m, d, s in points:
                if m == modality:
                    by_dev.setdefault(d, []).append(s[metric])
            if not by_dev:
                continue
            devs = sorted(by_dev)
            mean = np.array([np.nanmean(by_dev[d]) for d in devs])
            std = np.array([np.nanstd(by_dev[d]) for d in devs])
            colour = MODALITY_COLOURS.get(modality or "", "tab:gray")
            ax.plot(devs, mean, "o-", color=colour, label=f"{modality or 'unknown'}")
            ax.fill_between(devs, mean - std, mean + std, color=colour, alpha=0.15)
        ax.set_xlabel("|image_z - best_z|")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"{organelle}: metrics vs focus deviation")
    fig.tight_layout()
    fig.savefig(out, dpi=config.dpi)
    plt.close(fig)
    return out


def _html_table(metrics: dict) -> str:
    n = counts(metrics)
    head = "".join(f"<th>{m}</th>" for m in ALL_METRICS)
    rows = []
    for organelle in AGGREGATE_ORGANELLES:
        means = metrics["agregate"].get(organelle, {})
        cells = "".join(f"<td>{means[m]:.4f}</td>" if m in means else "<td>-</td>" for m in ALL_METRICS)
        rows.append(f"<tr><td>{organelle}</td><td>{n[organelle]}</td>{cells}</tr>")
    return f"<table><tr><th>organelle</th><th>n</th>{head}</tr>{''.join(rows)}</table>"


def write_report(run: ScoreRun, out_dir: str | os.PathLike, config: ReportConfig | None = None) -> Path:
    """Write the PNGs and index.html into OUT_DIR; returns the index.html path."""
    config = config or ReportConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records = run.pairing.by_name()
    sections = []
    for organelle in AGGREGATE_ORGANELLES:
        scored = [(e["image_name"], e[organelle]) for e in run.metrics["results"]
                  if e.get(organelle) and e["image_name"] in records]
        if not scored:
            continue
        scores_of = dict(scored)
        picks = [(label, records[name], scores_of[name])
                 for label, name, _ in pick_examples([(n, s["PCC"]) for n, s in scored])]
        grid = example_grid(organelle, picks, out / f"{organelle}_examples.png", config)
        focus = focus_plot(organelle, [(records[n].modality, records[n].deviation, s) for n, s in scored],
                           out / f"{organelle}_focus.png", config)
        parts = [f"<h2>{organelle} ({len(scored)} images)</h2>",
                 f'<a href="{grid.name}"><img src="{grid.name}" width="900"></a>']
        parts.append(f'<a href="{focus.name}"><img src="{focus.name}" width="900"></a>' if focus
                     else "<p>No focus information (give --csv) for metric-vs-focus plots.</p>")
        sections.append("\n".join(parts))
    problems = "".join(f"<li>{html.escape(p)}</li>" for p in run.problems)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(config.title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}</style></head>
<body><h1>{html.escape(config.title)}</h1>
<p>Means over images, scored exactly as the challenge scores (lower is better for MAE, E_dist, C_dist).</p>
{_html_table(run.metrics)}
{''.join(sections)}
<h2>Problems ({len(run.problems)})</h2><ul>{problems or '<li>none</li>'}</ul>
</body></html>
"""
    index = out / "index.html"
    index.write_text(page)
    return index
