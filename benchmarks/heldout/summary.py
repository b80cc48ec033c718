"""From per-image records to the report's numbers: means, paired intervals, ceilings, speed.

For every group of images (all, per modality, per focus deviation) and every organelle and metric:
the model's mean, both baselines' means, which baseline is better there (by its mean, in the
metric's direction), the cluster-bootstrap interval of mean(model - better baseline) with studies
as clusters, a verdict ("better" / "worse" when the interval excludes zero, else "within noise"),
and the ceilings' means on the same images.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from metrics.aggregate import AGGREGATE_ORGANELLES, TL_ORDER
from metrics.bootstrap import N_RESAMPLES, paired_difference
from metrics.challenge import LOWER_IS_BETTER, METRICS_BY_ORGANELLE

from .evaluate import ImageRecord

BASELINE_NAMES = ("constant", "tl_input")
# Below this many studies a cluster bootstrap has too few clusters to mean anything.
MIN_STUDIES_FOR_VERDICT = 5


def _mean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def verdict(metric: str, low: float, high: float, studies: int = MIN_STUDIES_FOR_VERDICT) -> str:
    if studies < MIN_STUDIES_FOR_VERDICT:
        return f"too few studies ({studies})"
    if not (np.isfinite(low) and np.isfinite(high)):
        return "n/a"
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    low, high = sorted((sign * low, sign * high))
    return "better" if low > 0 else "worse" if high < 0 else "within noise"


def _better_baseline(metric: str, means: dict[str, float]) -> str:
    key = (lambda b: means[b]) if metric in LOWER_IS_BETTER else (lambda b: -means[b])
    return min((b for b in BASELINE_NAMES if np.isfinite(means[b])), key=key, default=BASELINE_NAMES[0])


def organelle_rows(records: list[ImageRecord], organelle: str, *, n_resamples: int = N_RESAMPLES,
                   seed: int = 0) -> dict[str, dict]:
    """metric -> row for the images of `records` that have this organelle's ground truth."""
    scored = [r for r in records if organelle in r.model]
    if not scored:
        return {}
    clusters = [r.study for r in scored]
    rows = {}
    for metric in METRICS_BY_ORGANELLE[organelle]:
        model = [r.model[organelle][metric] for r in scored]
        base = {b: [r.baselines[b][organelle][metric] for r in scored] for b in BASELINE_NAMES}
        means = {b: _mean(v) for b, v in base.items()}
        better = _better_baseline(metric, means)
        interval = paired_difference(model, base[better], clusters, n_resamples=n_resamples, seed=seed)
        ceilings = {c: _mean([r.ceilings[c][organelle][metric] for r in scored])
                    for c in scored[0].ceilings}
        rows[metric] = {"n": len(scored), "studies": len(set(clusters)), "model": _mean(model), **means,
                        "better_baseline": better, "difference": interval.to_json(),
                        "verdict": verdict(metric, interval.low, interval.high, interval.n_clusters),
                        "ceilings": ceilings}
    return rows


def group_table(records: list[ImageRecord], **kwargs) -> dict[str, dict]:
    return {o: rows for o in AGGREGATE_ORGANELLES if (rows := organelle_rows(records, o, **kwargs))}


def speed(records: list[ImageRecord]) -> dict:
    """Wall seconds per image (one process.py run each) by modality, and in all."""
    timed = [r for r in records if r.seconds is not None]
    out = {}
    for label, group in [("all", timed), *((m, [r for r in timed if r.modality == m]) for m in TL_ORDER)]:
        if group:
            s = np.array([r.seconds for r in group])
            mpx = np.array([r.shape[0] * r.shape[1] / 1e6 for r in group])
            out[label] = {"images": len(group), "total_s": float(s.sum()), "median_s": float(np.median(s)),
                          "max_s": float(s.max()), "s_per_megapixel": float(s.sum() / mpx.sum())}
    return out


GROUND_TRUTH_ROW = "ground truth (control)"


def _count(cell: dict, flagged: list[str]) -> None:
    cell["images"] += 1
    cell["with findings"] += bool(flagged)
    for detector in flagged:
        cell[detector] += 1


def defect_counts(records: list[ImageRecord]) -> dict[str, dict[str, dict]]:
    """organelle -> "route (modality)" -> {"images": n, "with findings": n, detector: images}."""
    table: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(int)))
    for r in records:
        for organelle in AGGREGATE_ORGANELLES:
            if organelle not in r.defects:
                continue
            _count(table[organelle][f"{r.routes.get(organelle, '?')} ({r.modality})"],
                   r.defects[organelle].get("flagged", []))
    # The control: each field's ground truth, once per field (its slices share it).
    fields: set = set()
    for r in records:
        for organelle, flagged in r.gt_defects.items():
            if (r.field_key, organelle) in fields:
                continue
            fields.add((r.field_key, organelle))
            _count(table[organelle][GROUND_TRUTH_ROW], flagged)
    return {o: {route: dict(c) for route, c in sorted(routes.items())} for o, routes in table.items()}


def summarise(records: list[ImageRecord], *, n_resamples: int = N_RESAMPLES, seed: int = 0) -> dict:
    kw = {"n_resamples": n_resamples, "seed": seed}
    deviations = sorted({r.deviation for r in records if r.deviation is not None})
    return {
        "images": len(records), "studies": len({r.study for r in records}),
        "bootstrap": {"resamples": n_resamples, "level": 0.95, "clusters": "studies", "seed": seed},
        "overall": group_table(records, **kw),
        "by_modality": {m: group_table([r for r in records if r.modality == m], **kw) for m in TL_ORDER
                        if any(r.modality == m for r in records)},
        "by_deviation": {d: group_table([r for r in records if r.deviation == d], **kw) for d in deviations},
        "defects": defect_counts(records),
        "speed": speed(records),
    }
