"""The few file operations a recipe (training/recipe.py) needs between its real commands.

    python -m training.recipe_tools --remove --path DIR
    python -m training.recipe_tools --keep-studies-with --source DIR --into DIR --organelle actin
    python -m training.recipe_tools --copy-folder --source DIR --to DIR [--reroute 'BF:tubulin,BF:actin=p2p_bf_small']
    python -m training.recipe_tools --clear-weights --weights DIR

(flags, not subcommands, so a recipe writes each as one args table: { remove = true, path = ... }).

Each is idempotent, so a recipe stage interrupted half-way can simply run again.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from models.registry import read_partial_manifest
from preprocessing.ome_io import ORGANELLE_FILE_NAMES

from .export import MANIFEST, parse_routes, write_routes


def keep_studies_with(source: Path, into: Path, organelle: str) -> list[str]:
    """Move every Study_* of `source` that has ground truth for `organelle` into `into`; then
    remove `source`. Actin is rare (27 fields in 3 real studies) and the sampler can only balance
    what exists, so extra studies are simulated and only the labelled ones kept."""
    pattern = f"*_{ORGANELLE_FILE_NAMES[organelle]}.ome.tiff"
    moved = []
    into.mkdir(parents=True, exist_ok=True)
    for study in sorted(source.glob("Study_*")) if source.is_dir() else []:
        if any(study.glob(pattern)):
            target = into / study.name
            shutil.rmtree(target, ignore_errors=True)
            shutil.move(str(study), target)
            moved.append(study.name)
    shutil.rmtree(source, ignore_errors=True)
    return moved


def reroute(weights: Path, assignments: list[str]) -> None:
    """'PAIRS=CHECKPOINT' each ('BF:tubulin,BF:actin=p2p_bf_small'): in weights/manifest.json those
    pairs now use that checkpoint alone; checkpoints no route uses any more leave the manifest.
    For copies of the weights whose other routes are cheap, so that one organelle's route can be
    read in minutes (predictions of one organelle do not depend on another's route). ValueError
    naming the assignment if it is malformed or the checkpoint is not in the manifest."""
    path = weights / MANIFEST
    data = read_partial_manifest(path)
    for text in assignments:
        pairs, sep, name = text.rpartition("=")
        if not sep or name not in data["checkpoints"]:
            raise ValueError(f"--reroute {text!r}: expected PAIRS=CHECKPOINT with a checkpoint of {path}")
        try:
            targets = parse_routes([pairs])
        except ValueError as exc:
            raise ValueError(f"--reroute {text!r}: {exc}") from None
        for modality, organelle in targets:
            data["routes"].setdefault(modality, {})[organelle] = [name]
    write_routes(path, data)


def clear_weights(weights: Path) -> None:
    """An export from scratch: the manifest and every checkpoint go (other files stay)."""
    for path in [weights / "manifest.json", *weights.glob("*.pt")]:
        path.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    for name in ("remove", "keep-studies-with", "copy-folder", "clear-weights"):
        action.add_argument(f"--{name}", action="store_true")
    for name in ("path", "source", "into", "to", "weights"):
        parser.add_argument(f"--{name}", type=Path)
    parser.add_argument("--organelle", choices=tuple(ORGANELLE_FILE_NAMES))
    parser.add_argument("--reroute", action="append", default=[], metavar="PAIRS=CHECKPOINT",
                        help="with --copy-folder: route these pairs of the copy to that checkpoint")
    args = parser.parse_args(argv)
    needs = {"remove": ("path",), "keep_studies_with": ("source", "into", "organelle"),
             "copy_folder": ("source", "to"), "clear_weights": ("weights",)}
    (chosen,) = [name for name in needs if getattr(args, name)]
    missing = [f"--{n}" for n in needs[chosen] if getattr(args, n) is None]
    if missing:
        parser.error(f"--{chosen.replace('_', '-')} needs {' '.join(missing)}")
    if chosen == "remove":
        shutil.rmtree(args.path, ignore_errors=True)
    elif chosen == "keep_studies_with":
        moved = keep_studies_with(args.source, args.into, args.organelle)
        print(f"kept {len(moved)} studies with {args.organelle}: {', '.join(moved) or 'none'}")
    elif chosen == "copy_folder":
        if not args.source.is_dir():
            print(f"error: {args.source} is not a folder", file=sys.stderr)
            return 1
        shutil.rmtree(args.to, ignore_errors=True)
        shutil.copytree(args.source, args.to)
        try:
            if args.reroute:
                reroute(args.to, args.reroute)
        except ValueError as exc:     # no half-made copy that could be mistaken for the asked one
            shutil.rmtree(args.to, ignore_errors=True)
            print(f"error: {exc}", file=sys.stderr)
            return 1
    else:
        clear_weights(args.weights)
    return 0


if __name__ == "__main__":
    sys.exit(main())
