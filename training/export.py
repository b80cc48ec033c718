"""A trained run -> a self-describing checkpoint in weights/ and its routes in weights/manifest.json.

    python -m training.export --run RUN_DIR --name p2p_bf --weights weights/ --route 'BF:*'
    python -m training.export --run RUN_DIR --name vq_nucleus --route '*:nucleus' --half

    lmc-export --bioimageio --license SPDX-ID     # BioImage Model Zoo packages of weights/ (training/bioimageio_export.py)

--route MODALITY:ORGANELLE (comma-separated, repeatable; '*' = all) points those pairs at this
checkpoint, replacing what they had; --add-route appends it instead (an ensemble average). Other
checkpoints and routes in the manifest are kept. A checkpoint no route uses any more is dropped
from the manifest (its file stays). The manifest is written through models.registry.write_manifest
(hashes + full validation) once all 12 (modality, organelle) pairs resolve; until then it is
written as it stands and the missing pairs are listed, so several exports can build it up.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from models.registry import read_partial_manifest, save_checkpoint, sha256_file, write_manifest
from preprocessing.atomic_write import write_json
from preprocessing.ome_io import MODALITIES, ORGANELLES

from .runs import load_run

MANIFEST = "manifest.json"
CALIBRATION_FILE = "calibration.json"   # written by training.calibrate into the run folder


def parse_routes(texts: list[str]) -> list[tuple[str, str]]:
    """'BF:nucleus,PC:*' -> [(BF, nucleus), (PC, nucleus), (PC, mitochondria), ...]."""
    pairs: list[tuple[str, str]] = []
    for text in texts:
        for item in filter(None, (t.strip() for t in text.split(","))):
            if item.count(":") != 1:
                raise ValueError(f"route {item!r}: expected MODALITY:ORGANELLE (either may be '*')")
            modality, organelle = (p.strip() for p in item.split(":"))
            modality = modality.upper()
            if modality != "*" and modality not in MODALITIES:
                raise ValueError(f"route {item!r}: unknown modality; expected one of {MODALITIES} or *")
            if organelle != "*" and organelle not in ORGANELLES:
                raise ValueError(f"route {item!r}: unknown organelle; expected one of {ORGANELLES} or *")
            for m in (MODALITIES if modality == "*" else (modality,)):
                for o in (ORGANELLES if organelle == "*" else (organelle,)):
                    if (m, o) not in pairs:
                        pairs.append((m, o))
    return pairs


def read_calibration(path: Path, step: int) -> dict:
    """organelle -> parameters from a training.calibrate result, which must be of this very step."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        fitted_step = int(data["step"])
        params = {o: dict(r["params"]) for o, r in data["organelles"].items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a readable calibration ({type(exc).__name__}: {exc})") from exc
    if fitted_step != step:
        raise ValueError(f"{path}: fitted on the checkpoint of step {fitted_step}, but the exported "
                         f"one is of step {step}; run python -m training.calibrate again")
    return params


def missing_pairs(routes: dict) -> list[str]:
    return [f"{m}:{o}" for m in MODALITIES for o in ORGANELLES if not routes.get(m, {}).get(o)]


def export_run(run: str | Path, name: str, weights: str | Path, *, routes: list[tuple[str, str]] = (),
               add_routes: list[tuple[str, str]] = (), which: str = "best", half: bool = False,
               window: int | None = None, note: str | None = None,
               fallback_modality: str | None = None, calibration: str | Path | None = "auto",
               ) -> tuple[Path, list[str]]:
    """Write weights/<name>.pt and update weights/manifest.json; returns (checkpoint, missing pairs).

    `calibration`: a training.calibrate result whose output calibration goes into the spec;
    "auto" takes RUN/calibration.json when it exists, None exports without one."""
    run, weights = Path(run), Path(weights)
    loaded = load_run(run, which, window=window, note=note)    # best.pt, or last.pt of a run too short to validate
    source, state, spec = loaded.path, loaded.state, loaded.spec
    if calibration == "auto":
        calibration = run / CALIBRATION_FILE if (run / CALIBRATION_FILE).exists() else None
    if calibration is not None:
        spec.output_calibration = read_calibration(Path(calibration), int(state["step"]))
    for m, o in list(routes) + list(add_routes):
        if o not in spec.organelles:
            raise ValueError(f"route {m}:{o}: {source} predicts only {spec.organelles}")
    weights.mkdir(parents=True, exist_ok=True)
    file = f"{name}.pt"
    save_checkpoint(weights / file, loaded.model, spec, half=half)

    manifest_path = weights / MANIFEST
    data = read_partial_manifest(manifest_path)
    data["checkpoints"][name] = {"file": file, "sha256": sha256_file(weights / file)}
    for m, o in routes:
        data["routes"].setdefault(m, {})[o] = [name]
    for m, o in add_routes:
        names = data["routes"].setdefault(m, {}).setdefault(o, [])
        if name not in names:
            names.append(name)
    if fallback_modality:
        data["fallback_modality"] = fallback_modality
    return weights / file, write_routes(manifest_path, data, keep=name)


def write_routes(manifest_path: Path, data: dict, keep: str | None = None) -> list[str]:
    """Write `data` (read_partial_manifest's layout, routes edited) to `manifest_path`; returns the
    pairs still missing. Checkpoints no route uses leave it (except `keep`, just exported). Once
    every pair resolves it is validated, hashes included, before it replaces the old one."""
    used = {n for by_o in data["routes"].values() for names in by_o.values() for n in names}
    data["checkpoints"] = {n: e for n, e in data["checkpoints"].items() if n in used or n == keep}
    missing = missing_pairs(data["routes"])
    if missing:
        write_json(manifest_path, data)
    else:
        write_manifest(manifest_path, {n: e["file"] for n, e in data["checkpoints"].items()},
                       data["routes"], fallback_modality=data["fallback_modality"])
    return missing


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--bioimageio" in argv:   # a different job (packaging shipped weights), its own options
        from .bioimageio_export import main as bioimageio_main
        return bioimageio_main([a for a in argv if a != "--bioimageio"])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bioimageio", action="store_true",
                   help="instead: write BioImage Model Zoo packages of the shipped weights "
                        "(lmc-export --bioimageio --help)")
    p.add_argument("--run", required=True, help="training run folder (best.pt / last.pt)")
    p.add_argument("--name", required=True, help="checkpoint name: weights/<NAME>.pt")
    p.add_argument("--weights", default="weights", help="weights folder holding manifest.json")
    p.add_argument("--route", action="append", default=[], help="MODALITY:ORGANELLE pairs to replace")
    p.add_argument("--add-route", action="append", default=[], help="pairs to append to (ensemble)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best")
    p.add_argument("--half", action="store_true", help="store weights as float16 (half the size)")
    p.add_argument("--window", type=int, default=None, help="preferred inference window")
    p.add_argument("--note", default=None)
    p.add_argument("--fallback-modality", choices=MODALITIES, default=None)
    p.add_argument("--calibration", default="auto",
                   help="training.calibrate result to put in the spec (default: RUN/calibration.json if any)")
    p.add_argument("--no-calibration", action="store_true", help="export without output calibration")
    args = p.parse_args(argv)
    try:
        path, missing = export_run(args.run, args.name, args.weights, routes=parse_routes(args.route),
                                   add_routes=parse_routes(args.add_route), which=args.checkpoint,
                                   half=args.half, window=args.window, note=args.note,
                                   fallback_modality=args.fallback_modality,
                                   calibration=None if args.no_calibration else args.calibration)
    except (ValueError, FileNotFoundError) as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    if missing:
        print(f"manifest incomplete, not yet loadable: no route for {', '.join(missing)}")
    else:
        print(f"manifest {Path(args.weights) / MANIFEST} complete and validated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
