"""python -m benchmarks.real [--weights DIR] [--steps N] [--seed S] [--work DIR] [--tta MODE] [--pictures PNG] [--crop-only]

Two tables on the real images of ../shared/real (read its README):
1. zero-shot: the shipped weights' nucleus on every slice of the ISL phase-contrast stack (against
   its confocal DAPI) and on the Light My Cells bright-field crop (against its nucleus target),
   with both baselines; the assumed pixel sizes are printed (the files record none), and the crop
   is also scored at two other assumed sizes to show how much the assumption matters; then the
   ISL field's two regions (data.ISL_REGIONS, the learnability split): choices between candidate
   weights are made on its left three quarters, and its right quarter and the crop are reported;
2. learnability: pix2pix small trained on the left three quarters of the ISL field, from scratch
   and warm-started from the shipped PC pix2pix at the same step budget, scored on the right
   quarter beside the baselines and the shipped weights' zero-shot prediction of that quarter.
`--crop-only` reads only the crop (table 1 without the ISL field): the check for a change of
bright-field routes, whose output on the ISL phase-contrast field cannot differ.
Exit 0, or 1 with one line when ../shared/real is absent. Writes WORK/summary.json, and with
--pictures PNG the zero-shot predictions to look at (benchmarks/real/pictures.py).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from inference.settings import TTA_MODES, InferenceSettings

METRICS = ("MAE", "PCC", "SSIM", "E_dist", "C_dist")
LMC_SENSITIVITY_UM = (0.3, 0.6)


def _means(slices: list[dict], source: str) -> dict[str, float]:
    return {m: float(np.mean([s[source][m] for s in slices])) for m in METRICS}


def _row(label: str, slices: list[dict], source: str) -> str:
    means = _means(slices, source)
    pccs = [s[source]["PCC"] for s in slices]
    spread = f" ({min(pccs):.3f} to {max(pccs):.3f})" if len(slices) > 1 else ""
    cells = [f"{means['MAE']:.4f}", f"{means['PCC']:.3f}{spread}", f"{means['SSIM']:.3f}",
             f"{means['E_dist']:.1f}", f"{means['C_dist']:.3f}"]
    return "| " + " | ".join([label, *cells]) + " |"


HEADER = ("| {} | MAE ↓ | PCC ↑ (min to max over slices) | SSIM ↑ | E_dist ↓ | C_dist ↓ |\n"
          "|---|---|---|---|---|---|")


def zero_shot_table(results: list[dict]) -> str:
    lines = [HEADER.format("image (assumed pixel size), source")]
    for r in results:
        what = f"{r['image']} ({r['pixel_size_um']} µm, {len(r['slices'])} slice(s))"
        lines.append(_row(f"{what}: shipped {r['route']}", r["slices"], "shipped"))
        lines.append(_row(f"{what}: constant", r["slices"], "constant"))
        lines.append(_row(f"{what}: TL input", r["slices"], "tl_input"))
    return "\n".join(lines)


def learnability_table(result: dict) -> str:
    labels = {"scratch": f"pix2pix small from scratch, {result['steps']} steps",
              "warm": f"pix2pix small warm-started from {result['warm_start']}, {result['steps']} steps",
              "shipped": f"shipped weights zero-shot ({result['route']})",
              "constant": "constant", "tl_input": "TL input"}
    lines = [HEADER.format(f"ISL right quarter ({len(result['slices'])} slices), source")]
    lines += [_row(labels[s], result["slices"], s) for s in labels]
    warm_wins = sum(s["warm"]["PCC"] > s["scratch"]["PCC"] for s in result["slices"])
    lines.append(f"\nwarm start > scratch on PCC in {warm_wins} of {len(result['slices'])} slices")
    return "\n".join(lines)


def run(args) -> dict:
    from models.registry import Manifest, ModelStore
    from preprocessing.atomic_write import write_json

    from . import data
    from .learnability import WARM_START, Recipe, predict_run, train_run, write_training_fields
    from .zero_shot import score_sources, zero_shot, zero_shot_regions

    settings = InferenceSettings(tta=args.tta)
    manifest = Manifest.load(args.weights / "manifest.json")
    store = ModelStore(manifest, device=settings.torch_device())
    start = time.perf_counter()
    pairs = [data.lmc_crop()] if args.crop_only else [data.isl(), data.lmc_crop()]
    results = [zero_shot(pair, manifest, store, settings) for pair in pairs]
    results += [zero_shot(data.lmc_crop(p), manifest, store, settings) for p in LMC_SENSITIVITY_UM]
    out = {"tta": args.tta, "zero_shot": [{k: v for k, v in r.items() if k != "predictions"} for r in results]}
    if not args.crop_only:
        out["isl_regions"] = zero_shot_regions(results[0], data.isl, data.ISL_REGIONS)
    if args.pictures is not None:
        from .pictures import write_zero_shot_pictures
        out["pictures"] = str(write_zero_shot_pictures(results[:len(pairs)], pairs, args.pictures))

    if not (args.skip_learnability or args.crop_only):
        recipe = Recipe(steps=args.steps, seed=args.seed)
        right = slice(data.ISL_SPLIT_COLUMN, None)
        test = data.isl(right)
        runs = args.work / f"isl_steps{recipe.steps}_seed{recipe.seed}"
        with tempfile.TemporaryDirectory(prefix="lmc_isl_train_") as tmp:
            fields = write_training_fields(data.isl(slice(0, data.ISL_SPLIT_COLUMN)), Path(tmp))
            scratch = train_run(fields, runs / "scratch", recipe)
            warm = train_run(fields, runs / "warm", recipe, init_from=args.weights / f"{WARM_START}.pt")
        predictions = {"scratch": predict_run(scratch, test, settings), "warm": predict_run(warm, test, settings),
                       "shipped": [p[:, right] for p in results[0]["predictions"]]}
        slices = [score_sources({k: v[i] for k, v in predictions.items()}, tl, test.nucleus)
                  for i, tl in enumerate(test.tl)]
        out["learnability"] = {"steps": recipe.steps, "seed": recipe.seed, "warm_start": WARM_START,
                               "route": results[0]["route"], "split_column": data.ISL_SPLIT_COLUMN,
                               "slices": slices}
    out["seconds"] = round(time.perf_counter() - start, 1)
    write_json(args.work / "summary.json", out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.real", description=__doc__.split("\n\n")[1],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--weights", type=Path, default=Path("weights"))
    parser.add_argument("--work", type=Path, default=Path("data/real_benchmark"), help="runs and summary.json")
    parser.add_argument("--tta", choices=TTA_MODES, default=InferenceSettings().tta)
    parser.add_argument("--steps", type=int, default=300, help="training steps of each learnability run")
    parser.add_argument("--seed", type=int, default=0, help="seed of both learnability runs")
    parser.add_argument("--skip-learnability", action="store_true", help="only the zero-shot table")
    parser.add_argument("--crop-only", action="store_true",
                        help="only the Light My Cells BF crop (no ISL field, no learnability)")
    parser.add_argument("--pictures", type=Path, default=None,
                        help="also write the zero-shot predictions beside TL and target to this PNG")
    args = parser.parse_args(argv)
    from .data import available
    if (missing := available()) is not None:
        print(f"benchmarks.real: {missing}", file=sys.stderr)
        return 1
    out = run(args)
    print("zero-shot, nucleus (the pixel sizes are assumptions; see benchmarks/real/data.py):")
    print(zero_shot_table(out["zero_shot"]))
    if "isl_regions" in out:
        print("\nthe ISL field by region (decide on the development part, report the other):")
        print(zero_shot_table(out["isl_regions"]))
    if "learnability" in out:
        print("\nlearnability, nucleus on the ISL field's right quarter (never trained on):")
        print(learnability_table(out["learnability"]))
    print(f"\n{out['seconds']:.0f} s; TTA {out['tta']}; {args.work / 'summary.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
