"""What ./test.sh does around the run itself: stage the held-out studies, then check, score and judge.

    python -m scripts.smoke prepare     check STUDIES, its bestz.csv and THRESHOLDS; empty WORK; stage
                                        STUDIES as the challenge's flat input folder WORK/input
                                        (scripts/stage_inputs.py); print WORK, absolute, on stdout
    python -m scripts.smoke run-local   python process.py on WORK/input -> WORK/output (no Docker)
    python -m scripts.smoke verify --mode MODE --run-seconds N --elapsed N
        check every output in WORK/output (scripts/check_outputs.py: four folders, same names, same
        shapes, OME-XML with the input's pixel size); score them (python -m metrics score --strict,
        beside the baselines: metrics.json and metrics.<baseline>.json); scan for visible defects
        (python -m metrics defects: defects.json); compare with THRESHOLDS (scripts/check_thresholds.py,
        which documents the file); then print "test.sh: PASSED (...)". N: the run's seconds, and the
        seconds test.sh had spent before verify.

Environment (defaults in brackets): STUDIES [test/studies], THRESHOLDS [test/thresholds.json],
WORK [build/test-run], WEIGHTS [weights] (the manifest whose routes the defect scan reports).
Progress goes to stderr as "test.sh: == step"; the first failure stops with one line
"test.sh: FAILED: what failed" and exit status 1 (2 for bad arguments); the tool a step runs prints
its own details before that line. Run it from the repository root, as test.sh does.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository's packages importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from preprocessing.layout import INPUT_SUBDIR  # noqa: E402
from preprocessing.ome_io import list_tiffs  # noqa: E402
from scripts.check_thresholds import ThresholdError, Thresholds, load_thresholds  # noqa: E402
from scripts.stage_inputs import StagingError, stage_inputs  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PROG = "test.sh"   # the messages are test.sh's: this module is its body


class SmokeFailure(Exception):
    """A step of the smoke run failed; the message says which and why, in one line."""


@dataclass(frozen=True)
class Paths:
    """Where the smoke run reads and writes; WORK/input and WORK/output are test.sh's too."""
    studies: Path
    thresholds: Path
    work: Path
    weights: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Paths:
        return cls(Path(env.get("STUDIES") or "test/studies"), Path(env.get("THRESHOLDS") or "test/thresholds.json"),
                   Path(env.get("WORK") or "build/test-run").absolute(), Path(env.get("WEIGHTS") or "weights"))

    @property
    def csv(self) -> Path:
        return self.studies / "bestz.csv"

    @property
    def stage(self) -> Path:
        return self.work / "input"

    @property
    def tl(self) -> Path:
        return self.stage / INPUT_SUBDIR

    @property
    def out(self) -> Path:
        return self.work / "output"


def step(message: str) -> None:
    print(f"{PROG}: == {message}", file=sys.stderr, flush=True)


def run(command: list[str], failure: str) -> None:
    """Run one tool of the sequence (its output goes straight through); SmokeFailure(failure) if it fails."""
    sys.stdout.flush()
    if subprocess.run(command).returncode != 0:
        raise SmokeFailure(failure)


def _thresholds(paths: Paths) -> Thresholds:
    try:
        return load_thresholds(paths.thresholds)
    except ThresholdError as exc:
        raise SmokeFailure(str(exc)) from None


def prepare(paths: Paths) -> int:
    """Check the inputs of the run, empty WORK and stage the studies; returns the number staged."""
    if not paths.studies.is_dir():
        raise SmokeFailure(f"no held-out studies at {paths.studies} (Study_*/ folders with TL and organelle files)")
    if not paths.csv.is_file():
        raise SmokeFailure(f"no focus table {paths.csv} (columns name,modality,image_z,best_z)")
    if not paths.thresholds.is_file():
        raise SmokeFailure(f"no thresholds file {paths.thresholds}")
    _thresholds(paths)   # a typo in the bar fails now, not after the run
    try:
        if paths.work.exists():
            shutil.rmtree(paths.work)
        paths.out.mkdir(parents=True)
    except OSError as exc:
        raise SmokeFailure(f"cannot empty WORK {paths.work} ({exc})") from None
    step(f"staging {paths.studies} as the challenge's input folder")
    try:
        staged = stage_inputs(paths.studies, paths.stage)
    except (StagingError, ValueError) as exc:
        raise SmokeFailure(f"could not stage inputs from {paths.studies}: {exc}") from None
    # The container's user is not the owner: folders must be world-readable (files are hard links
    # to the studies and keep their own modes).
    for folder in [paths.stage, *(p for p in paths.stage.rglob("*") if p.is_dir())]:
        folder.chmod(folder.stat().st_mode | 0o555)
    print(f"{PROG}: staged {len(staged)} TL images in {paths.tl}", file=sys.stderr)
    return len(staged)


def run_local(paths: Paths) -> None:
    """process.py on the staged inputs, in this Python, as the container's entrypoint would run it."""
    step(f"running process.py on {len(list_tiffs(paths.tl))} inputs (no Docker)")
    sys.stdout.flush()
    rc = subprocess.run([sys.executable, str(REPO / "process.py"), "--input", str(paths.tl),
                         "--output", str(paths.out)]).returncode
    if rc != 0:
        raise SmokeFailure(f"process.py exited with status {rc}")


def score(paths: Paths) -> None:
    """metrics.json, and metrics.<baseline>.json beside it for the baselines (constant image, TL input)."""
    step(f"scoring against {paths.studies}, with the baselines")
    # --strict: stop as the organizers' evaluation stops (metrics/README.md, "Strict mode").
    run([sys.executable, "-m", "metrics", "score", "--pred", str(paths.out), "--gt", str(paths.studies),
         "--csv", str(paths.csv), "--input", str(paths.tl), "--json", str(paths.out / "metrics.json"),
         "--quiet", "--baselines", str(paths.tl), "--strict"],
        "the scorer failed or found unscorable files (python -m metrics score)")
    metrics = paths.out / "metrics.json"
    if not metrics.is_file() or metrics.stat().st_size == 0:
        raise SmokeFailure(f"the scorer wrote no {metrics}")


def baseline_args(paths: Paths) -> list[str]:
    """--baseline NAME=metrics.NAME.json for check_thresholds, for every baseline the scorer wrote."""
    found = sorted(paths.out.glob("metrics.*.json"))
    if not found:
        raise SmokeFailure("require_beat_baselines is set but the scorer wrote no baseline metrics")
    return [arg for path in found
            for arg in ("--baseline", f"{path.name.removeprefix('metrics.').removesuffix('.json')}={path}")]


def scan_defects(paths: Paths) -> None:
    """What a person would see and the metrics miss (saturated corners, checkerboards, seams,
    invented spots, NaN), with the routes the manifest gives each modality; fails only the run
    where the thresholds set enforce_defects (check_thresholds decides)."""
    step("scanning every prediction for visible defects (python -m metrics defects)")
    run([sys.executable, "-m", "metrics", "defects", "--pred", str(paths.out), "--gt", str(paths.studies),
         "--input", str(paths.tl), "--weights", str(paths.weights), "--json", str(paths.out / "defects.json"),
         "--quiet"], "the defect scan could not run")


def compare(paths: Paths) -> None:
    """The bar: test/thresholds.json's minima, maxima, baselines (when required) and defects."""
    baselines = baseline_args(paths) if _thresholds(paths).require_beat_baselines else []
    step(f"comparing with {paths.thresholds}")
    run([sys.executable, "-m", "scripts.check_thresholds", "--metrics", str(paths.out / "metrics.json"),
         "--thresholds", str(paths.thresholds), *baselines, "--defects", str(paths.out / "defects.json")],
        f"metrics below the bar in {paths.thresholds} (or unusable files, see above)")


def verify(paths: Paths, mode: str, run_seconds: int, elapsed: int) -> None:
    """The sequence after the run, stopping at the first failure; the PASSED line when all hold."""
    started = time.monotonic()
    step("checking outputs")
    run([sys.executable, "-m", "scripts.check_outputs", "--input", str(paths.stage), "--pred", str(paths.out)],
        "outputs missing or invalid (listed above)")
    score(paths)
    scan_defects(paths)
    compare(paths)
    total = elapsed + round(time.monotonic() - started)
    print(f"{PROG}: PASSED ({mode}: {len(list_tiffs(paths.tl))} inputs, run {run_seconds}s, total {total}s; "
          f"outputs and metrics.json in {paths.out})", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("prepare", help="check the inputs, stage STUDIES into WORK/input, print WORK")
    commands.add_parser("run-local", help="process.py on WORK/input -> WORK/output")
    check = commands.add_parser("verify", help="check, score, scan and compare WORK/output")
    check.add_argument("--mode", required=True, help="how the outputs were made (docker, local), for the summary")
    check.add_argument("--run-seconds", type=int, default=0, help="how long the run took")
    check.add_argument("--elapsed", type=int, default=0, help="seconds test.sh spent before verify")
    args = parser.parse_args(argv)
    paths = Paths.from_env()
    try:
        if args.command == "prepare":
            prepare(paths)
            print(paths.work)
        elif args.command == "run-local":
            run_local(paths)
        else:
            verify(paths, args.mode, args.run_seconds, args.elapsed)
    except SmokeFailure as exc:
        print(f"{PROG}: FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
