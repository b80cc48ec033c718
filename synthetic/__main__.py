"""python -m synthetic --out DIR --studies N --seed S [--profile lmc|v1|new-site|low-mag] [--fovs-per-study K]
[--max-size PX] [--max-slices N] [--quiet]"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .config import DEFAULT_PROFILE, PROFILES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synthetic",
                                     description="Write simulated Light My Cells studies (TL z-stacks + "
                                                 "fluorescence ground truth) in the data set's layout.")
    parser.add_argument("--out", required=True, type=Path, help="output root (Study_<n>/ folders + bestz.csv)")
    parser.add_argument("--studies", type=int, default=4, help="number of studies (default 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--first-study", type=int, default=1, help="number of the first study (default 1)")
    parser.add_argument("--fovs-per-study", type=int, default=None,
                        help="fields of view per study (default: 2..6, drawn per study)")
    parser.add_argument("--max-size", type=int, default=None,
                        help="crop image height and width to at most PX (e.g. 512 for fast CPU training)")
    parser.add_argument("--max-slices", type=int, default=None,
                        help="z-slices per FOV at most (default: the profile's, v1 11, the others 33)")
    parser.add_argument("--modalities", nargs="+", default=None, choices=("BF", "PC", "DIC"),
                        help="restrict the studies' modalities (default: all three)")
    parser.add_argument("--profile", choices=PROFILES, default=DEFAULT_PROFILE,
                        help=f"what to simulate (default {DEFAULT_PROFILE}: calibrated to the real studies; "
                             "v1: the simulator of the shipped weights and benchmark sets; new-site: "
                             "acquisitions outside the real set; low-mag: 10x-20x objectives at 0.3-0.65 µm "
                             "pixels, half of them 8-bit TL), synthetic/profiles.py")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    from .config import SimulationConfig
    from .generate import generate_studies
    from .seeds import refuse_reserved

    try:
        refuse_reserved(args.seed)
    except ValueError as exc:
        parser.error(str(exc))

    kwargs = {} if args.modalities is None else {"modalities": tuple(args.modalities)}
    try:
        config = SimulationConfig(studies=args.studies, seed=args.seed, first_study=args.first_study,
                                  fovs_per_study=args.fovs_per_study, max_size=args.max_size,
                                  max_slices=args.max_slices, quiet=args.quiet,
                                  profile=args.profile, **kwargs)
    except ValueError as exc:
        parser.error(str(exc))
    start = time.perf_counter()
    fovs = generate_studies(args.out, config)
    n_tl = sum(len(f.slices) for f in fovs)
    n_gt = sum(len(f.ground_truth) for f in fovs)
    if not args.quiet:
        print(f"wrote {len(fovs)} fields of view ({n_tl} TL slices, {n_gt} ground-truth images) "
              f"to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
