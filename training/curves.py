"""Training curves: RUN/train_curves.png drawn from train_log.csv and val_log.csv.

The trainer redraws it at every validation, so a run in progress can be watched without writing a
script: the loss terms (log scale), the learning rate and the validation metrics against the step.
A missing or half-written log draws what there is; a drawing failure is a warning, never a
stopped run (matplotlib is a development dependency, absent from the container).
"""
from __future__ import annotations

import csv
import logging
import math
from pathlib import Path

CURVES = "train_curves.png"
_LOSS_TERMS = {"total": "total", "rec": "L1 term (weighted)", "pcc": "1 - PCC term", "ssim": "1 - SSIM term",
               "codebook": "codebook", "gan_g": "GAN (generator)", "gan_d": "GAN (discriminator)"}
log = logging.getLogger(__name__)


def _read(path: Path) -> list[dict[str, float]]:
    if not path.is_file():
        return []
    rows = []
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            try:
                rows.append({k: float(v) for k, v in row.items() if k and v not in (None, "")})
            except ValueError:
                continue     # a row cut short by a killed run
    return rows


def _series(rows: list[dict[str, float]], key: str) -> tuple[list[float], list[float]]:
    points = [(r["step"], r[key]) for r in rows if key in r and "step" in r and math.isfinite(r[key])]
    return [p[0] for p in points], [p[1] for p in points]


def plot_curves(run: Path) -> Path | None:
    """Draw RUN/train_curves.png; None (after a warning) when it cannot be drawn."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib missing: no %s", CURVES)
        return None
    train, val = _read(run / "train_log.csv"), _read(run / "val_log.csv")
    fig, (loss_ax, lr_ax, val_ax) = plt.subplots(1, 3, figsize=(15, 4), layout="constrained")
    for key, label in _LOSS_TERMS.items():
        steps, values = _series(train, key)
        if steps and any(v > 0 for v in values):
            loss_ax.plot(steps, values, label=label)
    loss_ax.set(xlabel="step", ylabel="training loss (mean per logged interval)", title="losses (lower is better)")
    if loss_ax.lines:
        loss_ax.set_yscale("log")
        loss_ax.legend(fontsize=8)
    steps, values = _series(train, "lr")
    lr_ax.plot(steps, values, color="tab:gray")
    lr_ax.set(xlabel="step", ylabel="generator learning rate", title="schedule")
    metrics = sorted({k for r in val for k in r if k.endswith("/PCC")}) + (["score"] if any("score" in r for r in val) else [])
    for key in metrics:
        steps, values = _series(val, key)
        # Markers as well as lines: a few validations are points, not a trend.
        val_ax.plot(steps, values, marker="o", label=key.replace("/PCC", " PCC"))
    val_ax.set(xlabel="step", ylabel="validation PCC / score (higher is better)", title="validation")
    if val_ax.lines:
        val_ax.legend(fontsize=8)
    fig.suptitle(f"{run.name}: {len(train)} logged intervals, {len(val)} validations")
    target = run / CURVES
    try:
        fig.savefig(target.with_suffix(".partial.png"), dpi=80)
        target.with_suffix(".partial.png").replace(target)
    except OSError as exc:
        log.warning("could not write %s: %s", target, exc)
        return None
    finally:
        plt.close(fig)
    return target
