"""python -m benchmarks.heldout [--set quick|development|test] [--work DIR] [--weights DIR] ...

The held-out benchmark: simulated studies drawn from seeds that training and calibration refuse
(synthetic/seeds.py), predicted by the real container path (process.py, one run per image), scored
by the challenge's scorer beside both baselines and the ceilings, with paired bootstrap intervals
over studies, and scanned for visible defects. `--set quick` (the default) is a fixed subset of the
development set (about 30 images, every organelle, modality and deviation) for use while
developing; `development` (160 images, 64 studies) is for decisions; `test` (160 images, 64 other
studies) is scored once per shipped version, and its table is the README's.
Writes WORK/<set>/summary.json; prints the tables (`--markdown` for the README).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from inference.settings import BLEND_MODES, TTA_MODES, InferenceSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.heldout", description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--set", dest="set_name", default="quick", choices=("quick", "development", "test"))
    parser.add_argument("--modality", choices=("BF", "PC", "DIC"), default=None,
                        help="only this modality's studies of the set (WORK/<set>-<modality>/): "
                             "a decision about one modality's routes at a fraction of the cost")
    parser.add_argument("--work", type=Path, default=Path("data/benchmark"), help="where sets and predictions live")
    parser.add_argument("--weights", type=Path, default=Path("weights"), help="folder with manifest.json")
    parser.add_argument("--tta", choices=TTA_MODES, default=InferenceSettings().tta)
    parser.add_argument("--blend", choices=BLEND_MODES, default=InferenceSettings().blend,
                        help="process.py's window blending")
    parser.add_argument("--workers", type=int, default=2, help="scoring processes")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    parser.add_argument("--plan", action="store_true", help="print the set's composition and stop")
    parser.add_argument("--report", action="store_true",
                        help="print the tables of the last run (WORK/<set>/summary.json) and stop")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    from .run import BenchmarkOptions, folder_name, resolve, run_benchmark
    from .tables import report_text

    if args.plan:
        from .describe import describe_plan
        parts = [p for p in ("quick subset" if args.set_name == "quick" else None,
                             f"{args.modality} studies" if args.modality else None) if p]
        print(describe_plan(*resolve(args.set_name, args.modality), part=", ".join(parts)))
        return 0
    if args.report:
        import json
        name = folder_name(args.set_name, args.modality)
        path = args.work / name / "summary.json"
        if not path.is_file():
            print(f"benchmarks.heldout: no run of the {name} set yet ({path} is missing)", file=sys.stderr)
            return 1
        result = json.loads(path.read_text())
        print(report_text(result["summary"], f"{name} set (seed {result['seed']}, TTA {result['tta']}, "
                                             f"commit {result['commit']})", args.markdown))
        return 0
    options = BenchmarkOptions(args.set_name, args.work, args.weights, args.tta, args.workers,
                               args.resamples, not args.quiet, args.modality, args.blend)
    from metrics.strict import EvaluationStopped

    try:
        result = run_benchmark(options)
    except (ValueError, RuntimeError, FileNotFoundError, EvaluationStopped) as exc:
        print(f"benchmarks.heldout: {exc}", file=sys.stderr)
        return 1
    print(report_text(result["summary"], f"{result['set']} set (seed {result['seed']})", args.markdown))
    print(f"\n{result['wall_seconds']:.0f} s in all on {result['machine']}; "
          f"per-image records: {args.work / result['set'] / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
