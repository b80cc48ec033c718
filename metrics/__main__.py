"""python -m metrics {score,rank,baselines,report,defects}: local scoring exactly as the challenge scores.

  score     --pred OUT --gt GT [--csv bestz.csv] [--input TL] [--json metrics.json] [--baselines TL] [--strict]
  rank      NAME=DIR_OR_METRICS_JSON ... [--gt GT] [--csv ...] [--baselines TL] [--json leaderboard.json]
  baselines --input TL --out DIR
  report    --pred OUT --gt GT [--csv ...] [--input TL] [--metrics metrics.json] [--weights DIR] --out REPORT_DIR
  defects   --pred OUT --gt GT [--input TL] [--weights weights] [--json defects.json] [--enforce]

GT is the challenge's flat layout (GT/images/<organelle>-fluorescence-ome-tiff/<name>) or a study
layout root (GT/Study_*/). Exit code 0 when every expected file was found and scored, 1 otherwise
(the tables and files are written either way), 2 for bad arguments. score --strict stops as the
organizers' evaluation does (exit 1, one line naming the file, no metrics.json). `defects` exits 0
unless --enforce is given and a prediction has a finding or cannot be read (then 1).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from .aggregate import read_metrics_json, write_metrics_json
from .baselines import BaselineConfig, write_baselines
from .pairing import Pairing, pair
from .ranking import format_leaderboard, rank_metrics
from .score import ScoreConfig, ScoreRun, default_workers, score_folder, score_pairing
from .strict import EvaluationStopped
from .table import format_comparison, format_summary

_KNOWN_INPUTS = "known-inputs"   # const of a bare --baselines
_FINDING_LINES = 40              # findings `defects` prints; --json keeps every one


def _common(parser: argparse.ArgumentParser, *, gt_required: bool) -> None:
    parser.add_argument("--gt", type=Path, required=gt_required,
                        help="ground truth: challenge layout or study layout root")
    parser.add_argument("--csv", type=Path, help="name,modality,image_z,best_z (default: bestz.csv beside GT)")
    parser.add_argument("--input", type=Path, help="TL inputs: which images to score, their modality metadata")
    parser.add_argument("--workers", type=int, default=default_workers(), help="parallel processes (default %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _config(args) -> ScoreConfig:
    return ScoreConfig(workers=args.workers, progress=not args.quiet)


def _print_problems(problems: list[str], label: str = "") -> None:
    if problems:
        print(f"\n{len(problems)} problem(s){label}:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)


def _baseline_dir(args) -> Path | None:
    """The TL folder given to --baselines; None for a bare --baselines (use the inputs pairing found)."""
    return None if args.baselines in (None, _KNOWN_INPUTS) else Path(args.baselines)


def _score_baselines(pairing: Pairing, gt: Path, csv: Path | None, inputs: Path | None, workdir: Path,
                     config: ScoreConfig) -> dict[str, ScoreRun]:
    """Score the trivial predictions, made from each image's TL input, on exactly the images of `pairing`."""
    names = [r.name for r in pairing.images]
    paths = [r.input_path for r in pairing.images if r.input_path is not None]
    problems = [f"{r.name}: TL input not found, no baseline (give --input)" for r in pairing.images
                if r.input_path is None]
    roots, write_problems = write_baselines(paths, workdir, BaselineConfig())
    _print_problems(problems + write_problems, " making baselines")
    return {b: score_folder(root, gt, csv=csv, inputs=inputs, names=names, config=config)
            for b, root in roots.items()}


def cmd_score(args) -> int:
    config = _config(args)   # forgiving; the baselines (our references, not a submission) always get it
    inputs = args.input or _baseline_dir(args)
    model_config = ScoreConfig(workers=config.workers, progress=config.progress, strict=args.strict)
    try:
        run = score_folder(args.pred, args.gt, csv=args.csv, inputs=inputs, config=model_config)
    except EvaluationStopped as exc:
        print(f"error: {exc} (--strict: no metrics.json written)", file=sys.stderr)
        return 1
    json_path = write_metrics_json(args.json or args.pred / "metrics.json", run.metrics)
    print(format_summary(run.metrics, title=f"{args.pred} ({len(run.pairing.images)} images, "
                                            f"{run.seconds:.1f} s)"))
    if args.baselines:
        with tempfile.TemporaryDirectory(prefix="lmc_baselines_") as tmp:
            workdir = args.baselines_out or Path(tmp)
            baselines = _score_baselines(run.pairing, args.gt, args.csv, inputs, workdir, config)
            for name, b in baselines.items():
                write_metrics_json(json_path.with_name(f"{json_path.stem}.{name}.json"), b.metrics)
        print()
        print(format_comparison({"model": run.metrics, **{n: b.metrics for n, b in baselines.items()}}))
    print(f"\nmetrics.json: {json_path}")
    _print_problems(run.problems)
    return 0 if run.ok else 1


def _load_entry(spec: str, args, config: ScoreConfig) -> tuple[str, dict]:
    if "=" not in spec:
        raise SystemExit(f"rank: expected NAME=DIR or NAME=metrics.json, got {spec!r}")
    name, raw = spec.split("=", 1)
    path = Path(raw)
    if path.is_file():
        return name, read_metrics_json(path)
    if not path.is_dir():
        raise SystemExit(f"rank: {path} is neither a prediction folder nor a metrics.json")
    if args.gt is None:
        raise SystemExit("rank: --gt is needed to score prediction folders")
    run = score_folder(path, args.gt, csv=args.csv, inputs=args.input or _baseline_dir(args), config=config)
    _print_problems(run.problems, f" in {name}")
    return name, run.metrics


def cmd_rank(args) -> int:
    config = _config(args)
    named = dict(_load_entry(spec, args, config) for spec in args.entries)
    if args.baselines:
        if args.gt is None:
            raise SystemExit("rank: --gt is needed with --baselines")
        inputs = args.input or _baseline_dir(args)
        # The baselines are scored on the images the first prediction folder is scored on.
        folders = [Path(s.split("=", 1)[1]) for s in args.entries if Path(s.split("=", 1)[1]).is_dir()]
        with tempfile.TemporaryDirectory(prefix="lmc_baselines_") as tmp:
            reference = pair(folders[0] if folders else Path(tmp) / "none", args.gt, csv=args.csv, inputs=inputs)
            for name, run in _score_baselines(reference, args.gt, args.csv, inputs, Path(tmp), config).items():
                named[f"baseline:{name}"] = run.metrics
    board = rank_metrics(named)
    print(format_leaderboard(board))
    if args.json:
        write_metrics_json(args.json, board.to_json())
        print(f"\nleaderboard: {args.json}")
    return 0


def cmd_baselines(args) -> int:
    roots, problems = write_baselines(args.input, args.out, BaselineConfig(constant_value=args.constant_value))
    for name, root in roots.items():
        print(f"{name}: {root}")
    _print_problems(problems)
    return 0 if not problems else 1


def _report_defects(args, weights: Path | None) -> tuple[list | None, str]:
    """The defect scan for the report: (records, note); records None when it could not run."""
    from .defects.scan import scan_predictions  # numpy/scipy work, torch for the routes

    note = "" if weights else "routes unknown (no manifest.json in --weights): no seam check"
    try:
        return scan_predictions(args.pred, args.gt, inputs=args.input, weights_dir=weights,
                                progress=not args.quiet), note
    except (OSError, ValueError) as exc:   # a broken manifest must not lose the rest of the report
        return None, f"the defect scan stopped: {exc}"


def cmd_report(args) -> int:
    from .report import ReportConfig, ReportInputs, write_report  # matplotlib only when a report is asked for
    from .report_provenance import DEFAULT_WEIGHTS, collect, read_settings

    if not args.pred.is_dir():
        raise ValueError(f"--pred {args.pred}: not a folder")
    if args.weights is not None and not args.weights.is_dir():
        raise ValueError(f"--weights {args.weights}: not a folder")
    read_settings(args.pred)   # a broken run_info.json stops the report before minutes of scoring
    weights = args.weights or DEFAULT_WEIGHTS
    config = _config(args)
    pairing = pair(args.pred, args.gt, csv=args.csv, inputs=args.input)
    if args.metrics:
        run = ScoreRun(metrics=read_metrics_json(args.metrics), pairing=pairing, errors=[], seconds=0.0)
    else:
        run = score_pairing(pairing, config)
    extra = ReportInputs()
    if any(r.input_path is not None for r in pairing.images):
        with tempfile.TemporaryDirectory(prefix="lmc_baselines_") as tmp:
            extra.baselines = {n: b.metrics for n, b in
                               _score_baselines(pairing, args.gt, args.csv, args.input, Path(tmp), config).items()}
    else:
        extra.baselines_note = "no TL inputs found: give --input"
    has_manifest = (weights / "manifest.json").is_file()
    extra.defects, extra.defects_note = _report_defects(args, weights if has_manifest else None)
    extra.provenance = collect(args.pred, weights, {
        "predictions": str(args.pred), "ground truth": str(args.gt),
        "focus CSV": str(args.csv) if args.csv else "bestz.csv beside the ground truth, if any",
        "TL inputs": str(args.input) if args.input else "found in the study layout, if any",
        "images scored": str(len(pairing.images))})
    index = write_report(run, args.out, ReportConfig(), extra)
    print(f"report: {index}")
    _print_problems(run.problems)
    return 0 if run.ok else 1


def cmd_defects(args) -> int:
    from .defects.scan import format_table, scan_predictions, summarise, write_defects_json  # numpy/scipy work

    records = scan_predictions(args.pred, args.gt, inputs=args.input, weights_dir=args.weights,
                               progress=not args.quiet)
    print(format_table(summarise(records)))
    flagged = [r for r in records if r.report is not None and r.report.flagged]
    unreadable = [r for r in records if r.report is None]
    lines = [f"  {r.organelle}/{r.name} [{r.route}]: {line}" for r in flagged for line in r.report.findings]
    if lines:
        print(f"\n{len(flagged)} prediction(s) with findings:")
        print("\n".join(lines[:_FINDING_LINES]))
        if len(lines) > _FINDING_LINES:
            print(f"  ... and {len(lines) - _FINDING_LINES} more (all of them: --json)")
    if args.json:
        print(f"\ndefects: {write_defects_json(args.json, records)}")
    _print_problems([r.error for r in unreadable], " (files not checked)")
    return 1 if args.enforce and (flagged or unreadable) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m metrics", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("score", help="score one prediction folder, write metrics.json, print tables")
    p.add_argument("--pred", type=Path, required=True, help="prediction root (images/<organelle>-fluorescence-ome-tiff/)")
    _common(p, gt_required=True)
    p.add_argument("--json", type=Path, help="where to write metrics.json (default PRED/metrics.json)")
    p.add_argument("--baselines", nargs="?", const=_KNOWN_INPUTS, metavar="INPUT_DIR",
                   help="also score the constant and TL-input baselines made from these TL inputs "
                        "(bare --baselines: the inputs found by --input or in the study layout)")
    p.add_argument("--baselines-out", type=Path, help="keep the baseline predictions here (default: temporary)")
    p.add_argument("--strict", action="store_true",
                   help="stop as the organizers' evaluation does (missing prediction, shape mismatch in a plain "
                        "tifffile read, NaN/inf, image not in the CSV): exit 1, no metrics.json")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("rank", help="rank several prediction folders / metrics.json files")
    p.add_argument("entries", nargs="+", metavar="NAME=PATH")
    _common(p, gt_required=False)
    p.add_argument("--baselines", nargs="?", const=_KNOWN_INPUTS, metavar="INPUT_DIR",
                   help="rank the baselines too (bare: inputs found by --input or in the study layout)")
    p.add_argument("--json", type=Path, help="write the leaderboard here")
    p.set_defaults(func=cmd_rank)

    p = sub.add_parser("baselines", help="write constant and TL-input predictions in the output layout")
    p.add_argument("--input", type=Path, required=True, help="TL input folder")
    p.add_argument("--out", type=Path, required=True, help="writes OUT/constant/ and OUT/tl_input/")
    p.add_argument("--constant-value", type=int, default=0)
    p.set_defaults(func=cmd_baselines)

    p = sub.add_parser("report", help="PNG grids, metric-vs-focus plots and index.html")
    p.add_argument("--pred", type=Path, required=True)
    _common(p, gt_required=True)
    p.add_argument("--metrics", type=Path, help="reuse this metrics.json instead of scoring again")
    p.add_argument("--out", type=Path, required=True, help="report folder")
    p.add_argument("--weights", type=Path, help="weights folder: manifest.json hash in the provenance, routes "
                                                "for the defect scan (default: the project's weights/)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("defects", help="saturation, periodic patterns, seams, invented spots, NaN per prediction")
    p.add_argument("--pred", type=Path, required=True)
    p.add_argument("--gt", type=Path, required=True, help="ground truth: challenge layout or study layout root")
    p.add_argument("--input", type=Path, help="TL inputs: which images to check, their modality and pixel size")
    p.add_argument("--weights", type=Path, help="weights folder: each prediction's route and window geometry "
                                                "(without it periods are looked for on the image grid, no seams)")
    p.add_argument("--json", type=Path, help="write the summary and every report here")
    p.add_argument("--enforce", action="store_true", help="exit 1 when any prediction has a finding")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_defects)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
