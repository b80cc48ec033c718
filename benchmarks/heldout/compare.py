"""Two benchmark runs of the same set side by side: what a change of weights or settings did.

    python -m benchmarks.heldout.compare BEFORE/summary.json AFTER/summary.json
        [--modality BF] [--organelle actin] [--resamples 2000]

Both files are WORK/<set>/summary.json of `python -m benchmarks.heldout` (copy the first away
before the second run overwrites it). Images are paired by name; they must be the same set (same
plan fingerprint). Per organelle (and per modality), per metric: both means and the paired
difference after - before with its cluster-bootstrap 95 % interval over studies, and the verdict
("better" / "worse" when the interval excludes zero, in the metric's direction). Then, per
organelle and modality, how many images each defect detector flags, before and after, with the
route each run took. This is the tool for decisions on the development set (routes, weights,
--context); the test set is scored once per shipped version.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from metrics.aggregate import AGGREGATE_ORGANELLES, TL_ORDER
from metrics.bootstrap import N_RESAMPLES, paired_difference
from metrics.challenge import LOWER_IS_BETTER, METRICS_BY_ORGANELLE
from metrics.defects.report import DETECTORS

from .summary import verdict


class CompareError(ValueError):
    """Two summaries that cannot be compared; the message says which file and why."""


def load_images(path: Path) -> tuple[dict, dict[str, dict]]:
    try:
        run = json.loads(Path(path).read_text(encoding="utf-8"))
        return run, {image["name"]: image for image in run["images"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CompareError(f"{path}: not a benchmark summary ({type(exc).__name__}: {exc})") from exc


def paired_images(before: Path, after: Path) -> tuple[list[tuple[dict, dict]], dict, dict]:
    """(before image, after image) pairs by name, and both runs; refuses different sets."""
    run_a, images_a = load_images(before)
    run_b, images_b = load_images(after)
    if run_a.get("plan") != run_b.get("plan") or run_a.get("set") != run_b.get("set"):
        raise CompareError(f"{before} and {after} are different sets "
                           f"({run_a.get('set')} {run_a.get('plan')} vs {run_b.get('set')} {run_b.get('plan')})")
    names = sorted(set(images_a) & set(images_b))
    if not names:
        raise CompareError(f"{before} and {after} share no image")
    return [(images_a[n], images_b[n]) for n in names], run_a, run_b


def metric_rows(pairs: list[tuple[dict, dict]], organelle: str, n_resamples: int = N_RESAMPLES) -> list[dict]:
    """One row per metric for the pairs where both runs scored this organelle."""
    scored = [(a, b) for a, b in pairs if organelle in a["model"] and organelle in b["model"]]
    rows = []
    for metric in METRICS_BY_ORGANELLE[organelle] if scored else ():
        before = [a["model"][organelle][metric] for a, _ in scored]
        after = [b["model"][organelle][metric] for _, b in scored]
        studies = [a["study"] for a, _ in scored]
        interval = paired_difference(after, before, studies, n_resamples=n_resamples)
        rows.append({"organelle": organelle, "metric": metric, "images": len(scored),
                     "studies": len(set(studies)), "before": float(np.nanmean(before)),
                     "after": float(np.nanmean(after)), "difference": interval.mean,
                     "low": interval.low, "high": interval.high,
                     "verdict": verdict(metric, interval.low, interval.high, len(set(studies)))})
    return rows


def defect_rows(pairs: list[tuple[dict, dict]], organelle: str) -> list[dict]:
    """Per modality: images each detector flags for this organelle, before and after."""
    rows = []
    for modality in TL_ORDER:
        group = [(a, b) for a, b in pairs if a["modality"] == modality and organelle in a["defects"]]
        if not group:
            continue
        counts = {side: Counter(d for image in images for d in image["defects"][organelle]["flagged"])
                  for side, images in (("before", [a for a, _ in group]), ("after", [b for _, b in group]))}
        rows.append({"organelle": organelle, "modality": modality, "images": len(group),
                     "route_before": group[0][0]["routes"].get(organelle, "?"),
                     "route_after": group[0][1]["routes"].get(organelle, "?"),
                     **{f"{side}_{d}": counts[side][d] for side in ("before", "after") for d in DETECTORS}})
    return rows


def _format_metric(row: dict) -> str:
    arrow = "↓" if row["metric"] in LOWER_IS_BETTER else "↑"
    return (f"{row['organelle']:<13}{row['metric'] + ' ' + arrow:<9}{row['images']:>4}{row['studies']:>4}  "
            f"{row['before']:8.4f} {row['after']:8.4f} {row['difference']:+8.4f} "
            f"[{row['low']:+.4f}, {row['high']:+.4f}]  {row['verdict']}")


def _format_defects(row: dict) -> str:
    flagged = ", ".join(f"{d} {row[f'before_{d}']}→{row[f'after_{d}']}" for d in DETECTORS
                        if row[f"before_{d}"] or row[f"after_{d}"]) or "none"
    route = row["route_before"] if row["route_before"] == row["route_after"] else \
        f"{row['route_before']} → {row['route_after']}"
    return f"{row['organelle']:<13}{row['modality']:<5}{row['images']:>4}  {route:<40} {flagged}"


def report(pairs: list[tuple[dict, dict]], organelles, modalities, n_resamples: int) -> str:
    lines = []
    for modality in (None, *modalities):
        group = [p for p in pairs if modality is None or p[0]["modality"] == modality]
        if not group:
            continue
        title = "all images" if modality is None else modality
        lines += [f"== {title}: after - before, paired over {len(group)} images (95 % interval over studies)",
                  f"{'organelle':<13}{'metric':<9}{'n':>4}{'st':>4}  {'before':>8} {'after':>8} {'diff':>8}"]
        for organelle in organelles:
            lines += [_format_metric(r) for r in metric_rows(group, organelle, n_resamples)]
        lines.append("")
    lines.append("== images with a defect finding, before → after (detectors: " + ", ".join(DETECTORS) + ")")
    for organelle in organelles:
        lines += [_format_defects(r) for r in defect_rows(pairs, organelle)
                  if not modalities or r["modality"] in modalities]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.heldout.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--modality", action="append", choices=TL_ORDER, default=None,
                        help="also these modalities on their own (repeatable; default all three)")
    parser.add_argument("--organelle", action="append", choices=AGGREGATE_ORGANELLES, default=None,
                        help="only these organelles (repeatable)")
    parser.add_argument("--resamples", type=int, default=N_RESAMPLES)
    args = parser.parse_args(argv)
    try:
        pairs, _, _ = paired_images(args.before, args.after)
    except CompareError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report(pairs, args.organelle or AGGREGATE_ORGANELLES, args.modality or TL_ORDER, args.resamples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
