"""Compare a metrics.json (the challenge's layout) with the quality bar in test/thresholds.json.

    python -m scripts.check_thresholds --metrics OUT/metrics.json --thresholds test/thresholds.json \
        [--baseline constant=BASE/constant/metrics.json --baseline tl_input=BASE/tl_input/metrics.json]

thresholds.json (every key optional except where noted; keys starting with "_" are comments):
    {"require_beat_baselines": false,          # true: every metric of every organelle that the
                                                # prediction and a baseline both have must be
                                                # strictly better than that baseline's
     "min": {"nucleus": {"PCC": 0.1, ...}},    # agregate[organelle][metric] >= value
     "max": {"nucleus": {"MAE": 0.5, ...}},    # agregate[organelle][metric] <= value
     "min_at_deviation": {"0": {"nucleus": {"PCC": 0.8}}},   # z_deviation[organelle][dz][metric] >= value
     "enforce_defects": false}                 # true: every organelle x route row of the defect
                                                # scan given by --defects (python -m metrics defects
                                                # --json) must have no finding; a list such as
                                                # ["nonfinite", "saturation"]: no finding of those
                                                # detectors (the rest printed); false: printed only
Organelles are nucleus|mitochondria|tubulin|actin; metrics are PCC, SSIM (all organelles) and MAE,
E_dist, C_dist (nucleus, mitochondria). A threshold whose metric is missing or NaN in metrics.json
fails: a bar that is set must be measured. Unknown keys are an error, so a typo never silently
disables a check. Exit status: 0 all pass, 1 a check failed, 2 unusable files.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from metrics.challenge import LOWER_IS_BETTER, METRICS_BY_ORGANELLE  # noqa: E402
from metrics.defects.report import DETECTORS  # noqa: E402

TOP_LEVEL_KEYS = {"require_beat_baselines", "min", "max", "min_at_deviation", "enforce_defects"}


class ThresholdError(ValueError):
    """A thresholds or metrics file that cannot be used; the message names it and why."""


@dataclass
class Thresholds:
    require_beat_baselines: bool = False
    min: dict[str, dict[str, float]] = field(default_factory=dict)
    max: dict[str, dict[str, float]] = field(default_factory=dict)
    # focus deviation |image_z - best_z| -> organelle -> metric -> lower bound
    min_at_deviation: dict[int, dict[str, dict[str, float]]] = field(default_factory=dict)
    # False: printed only; True: every detector; a tuple of detector names: those.
    enforce_defects: bool | tuple[str, ...] = False

    def enforced_detectors(self) -> tuple[str, ...]:
        if self.enforce_defects is True:
            return DETECTORS
        return tuple(self.enforce_defects) if self.enforce_defects else ()


@dataclass
class Check:
    description: str
    value: float
    passed: bool


def _bounds(raw: object, kind: str, path: Path) -> dict[str, dict[str, float]]:
    if not isinstance(raw, dict):
        raise ThresholdError(f"{path}: '{kind}' must be an object {{organelle: {{metric: number}}}}")
    bounds: dict[str, dict[str, float]] = {}
    for organelle, metrics in raw.items():
        if organelle not in METRICS_BY_ORGANELLE:
            raise ThresholdError(f"{path}: {kind}: unknown organelle {organelle!r}; "
                                 f"expected one of {sorted(METRICS_BY_ORGANELLE)}")
        if not isinstance(metrics, dict):
            raise ThresholdError(f"{path}: {kind}.{organelle} must be an object {{metric: number}}")
        for metric, value in metrics.items():
            if metric not in METRICS_BY_ORGANELLE[organelle]:
                raise ThresholdError(f"{path}: {kind}.{organelle}: {metric!r} is not a metric of {organelle}; "
                                     f"expected one of {list(METRICS_BY_ORGANELLE[organelle])}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ThresholdError(f"{path}: {kind}.{organelle}.{metric} = {value!r} is not a finite number")
        bounds[organelle] = {m: float(v) for m, v in metrics.items()}
    return bounds


def load_thresholds(path: str | os.PathLike) -> Thresholds:
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ThresholdError(f"{path}: cannot read thresholds ({exc})") from exc
    if not isinstance(raw, dict):
        raise ThresholdError(f"{path}: must hold a JSON object")
    unknown = {k for k in raw if not k.startswith("_")} - TOP_LEVEL_KEYS
    if unknown:
        raise ThresholdError(f"{path}: unknown key(s) {sorted(unknown)}; expected {sorted(TOP_LEVEL_KEYS)}")
    beat, enforce = raw.get("require_beat_baselines", False), raw.get("enforce_defects", False)
    if not isinstance(beat, bool):
        raise ThresholdError(f"{path}: require_beat_baselines must be true or false, not {beat!r}")
    if isinstance(enforce, list):
        unknown = [d for d in enforce if d not in DETECTORS]
        if unknown or not enforce:
            raise ThresholdError(f"{path}: enforce_defects: unknown detector(s) {unknown}; "
                                 f"expected some of {list(DETECTORS)}")
        enforce = tuple(enforce)
    elif not isinstance(enforce, bool):
        raise ThresholdError(f"{path}: enforce_defects must be true, false or a list of detectors "
                             f"{list(DETECTORS)}, not {enforce!r}")
    at_deviation = raw.get("min_at_deviation", {})
    if not isinstance(at_deviation, dict):
        raise ThresholdError(f"{path}: 'min_at_deviation' must be an object {{deviation: {{organelle: ...}}}}")
    per_deviation = {}
    for key, bounds in at_deviation.items():
        try:
            deviation = int(key)
        except ValueError:
            raise ThresholdError(f"{path}: min_at_deviation: {key!r} is not a focus deviation (0, 1, ...)") from None
        per_deviation[deviation] = _bounds(bounds, f"min_at_deviation.{key}", path)
    return Thresholds(beat, _bounds(raw.get("min", {}), "min", path), _bounds(raw.get("max", {}), "max", path),
                      per_deviation, enforce)


def load_defect_rows(path: str | os.PathLike) -> list[dict]:
    """The per organelle x route rows of a defects.json (python -m metrics defects --json)."""
    path = Path(path)
    try:
        rows = json.loads(path.read_text())["summary"]
        return [r for r in rows if isinstance(r, dict) and {"organelle", "route", "any", "errors"} <= set(r)]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ThresholdError(f"{path}: cannot read a defect scan ({exc})") from exc


def defect_checks(rows: list[dict], detectors: tuple[str, ...] = DETECTORS) -> list[Check]:
    """One check per organelle x route: no prediction with a finding of `detectors` and none
    unreadable."""
    checks = []
    for r in rows:
        if tuple(detectors) == DETECTORS:
            flagged, what = r["any"], "defect findings"
        else:   # the per-detector columns count images; an image may be flagged by several
            flagged, what = sum(int(r.get(d, 0)) for d in detectors), f"{'/'.join(detectors)} findings"
        checks.append(Check(f"{r['organelle']} {r['route']}: no {what} ({flagged} of {r['images']} "
                            f"predictions flagged, {r['errors']} unreadable)", float(flagged + r["errors"]),
                            flagged == 0 and r["errors"] == 0))
    return checks


def _load_table(path: str | os.PathLike, key: str) -> dict:
    path = Path(path)
    try:
        raw = json.loads(path.read_text())  # json reads the bare NaN the challenge writes
    except (OSError, json.JSONDecodeError) as exc:
        raise ThresholdError(f"{path}: cannot read metrics ({exc})") from exc
    table = raw.get(key) if isinstance(raw, dict) else None
    if not isinstance(table, dict):
        raise ThresholdError(f"{path}: no '{key}' table (is it the challenge's metrics.json?)")
    return table


def load_aggregate(path: str | os.PathLike) -> dict[str, dict[str, float]]:
    """metrics.json's 'agregate' (sic) table: organelle -> metric -> mean."""
    return _load_table(path, "agregate")


def load_deviations(path: str | os.PathLike) -> dict[int, dict[str, dict[str, float]]]:
    """metrics.json's 'z_deviation' table regrouped as deviation -> organelle -> metric -> mean."""
    by_deviation: dict[int, dict[str, dict[str, float]]] = {}
    for organelle, per_deviation in _load_table(path, "z_deviation").items():
        for deviation, metrics in per_deviation.items():
            by_deviation.setdefault(int(deviation), {})[organelle] = metrics
    return by_deviation


def _value(table: dict, organelle: str, metric: str) -> float:
    value = table.get(organelle, {}).get(metric)
    return float(value) if isinstance(value, (int, float)) else math.nan


def evaluate(aggregate: dict, thresholds: Thresholds,
             baselines: dict[str, dict] | None = None,
             deviations: dict[int, dict] | None = None) -> list[Check]:
    """Every check the thresholds ask for, in a stable order."""
    checks: list[Check] = []
    for deviation, bounds in sorted(thresholds.min_at_deviation.items()):
        table = (deviations or {}).get(deviation, {})
        for organelle, metrics in bounds.items():
            for metric, bound in metrics.items():
                value = _value(table, organelle, metric)
                note = "" if math.isfinite(value) else " (not measured)"
                checks.append(Check(f"{organelle} {metric} at focus deviation {deviation} >= {bound:g}{note}",
                                    value, value >= bound))
    for kind, bounds in (("min", thresholds.min), ("max", thresholds.max)):
        for organelle, metrics in bounds.items():
            for metric, bound in metrics.items():
                value = _value(aggregate, organelle, metric)
                op = ">=" if kind == "min" else "<="
                passed = (value >= bound) if kind == "min" else (value <= bound)  # NaN fails both
                note = "" if math.isfinite(value) else " (not measured)"
                checks.append(Check(f"{organelle} {metric} {op} {bound:g}{note}", value, passed))
    if thresholds.require_beat_baselines:
        if not baselines:
            checks.append(Check("require_beat_baselines: no baseline metrics given", math.nan, False))
        for name, table in (baselines or {}).items():
            for organelle, metrics in table.items():
                for metric, base in metrics.items():
                    base = float(base) if isinstance(base, (int, float)) else math.nan
                    if not math.isfinite(base):
                        continue  # nothing to beat (e.g. SSIM of two constant images)
                    value = _value(aggregate, organelle, metric)
                    lower = metric in LOWER_IS_BETTER
                    passed = (value < base) if lower else (value > base)
                    op = "<" if lower else ">"
                    checks.append(Check(f"{organelle} {metric} {op} baseline {name} ({base:.4g})", value, passed))
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", required=True, type=Path)
    parser.add_argument("--thresholds", required=True, type=Path)
    parser.add_argument("--baseline", action="append", default=[], metavar="NAME=METRICS_JSON")
    parser.add_argument("--defects", type=Path, help="defects.json of python -m metrics defects: "
                                                     "checked when enforce_defects is true, else printed")
    args = parser.parse_args(argv)
    try:
        thresholds = load_thresholds(args.thresholds)
        aggregate = load_aggregate(args.metrics)
        deviations = load_deviations(args.metrics) if thresholds.min_at_deviation else None
        baselines = {}
        for item in args.baseline:
            name, sep, path = item.partition("=")
            if not sep:
                raise ThresholdError(f"--baseline {item!r}: expected NAME=METRICS_JSON")
            baselines[name] = load_aggregate(path)
        rows = load_defect_rows(args.defects) if args.defects else []
    except ThresholdError as exc:
        print(f"check_thresholds: {exc}", file=sys.stderr)
        return 2
    checks = evaluate(aggregate, thresholds, baselines, deviations)
    enforced = thresholds.enforced_detectors()
    if enforced:
        if args.defects is None:
            checks.append(Check("enforce_defects: no defect scan given (--defects)", math.nan, False))
        checks += defect_checks(rows, enforced)
    if enforced != DETECTORS:
        for check in defect_checks(rows):
            print(f"  INFO  {check.description} (not enforced: "
                  f"{'enforce_defects is false' if not enforced else 'enforced: ' + ', '.join(enforced)})")
    failed = [c for c in checks if not c.passed]
    for check in checks:
        print(f"  {'PASS' if check.passed else 'FAIL'}  {check.description}: {check.value:.4f}")
    if failed:
        print(f"check_thresholds: FAILED: {len(failed)} of {len(checks)} check(s) below the bar "
              f"in {args.thresholds}", file=sys.stderr)
        return 1
    print(f"check_thresholds: OK: {len(checks)} check(s) passed"
          + ("" if checks else " (no thresholds set)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
