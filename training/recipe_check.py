"""Does a weights folder hold what its recipe says, without training anything?

For the weights folder the recipe's export stages write to (its WEIGHTS variable): the manifest's
routes must be the ones the export stages set, in order (--route replaces, --add-route appends);
each exported checkpoint's spec must be what its training stage makes: architecture, generator
config (family, preset and [model] overrides), organelles, pixel size, window, and an output
calibration exactly when a calibrate stage ran on that run. Each difference names the stage.
Training itself is not reproduced bit for bit by a re-run on another machine (thread timing,
--time-limit), so weights and scores are not compared; what the stages decide is.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from models.registry import config_to_dict, read_spec
from preprocessing.ome_io import MODALITIES, ORGANELLES

from .export import parse_routes
from .recipe import PROJECT_ROOT, Recipe, Stage
from .run_file import parse_run


def _train_stages(recipe: Recipe) -> dict[str, Stage]:
    return {str(Path(s.train["out"])): s for s in recipe.stages if s.train is not None}


def _resolved(stage: Stage):
    """(family, TrainConfig) of a training stage, exactly as lmc-train would resolve its run file."""
    import importlib

    from .options import resolve
    file = parse_run(stage.train, stage.name)
    module = importlib.import_module(f"training.train_{file['family']}")
    family = module.FAMILY(dict(file["model"]))
    return family, resolve(argparse.Namespace(), file, family, check_folders=False)


def expected_routes(exports: list[Stage]) -> dict[tuple[str, str], list[str]]:
    routes: dict[tuple[str, str], list[str]] = {}
    for stage in exports:
        name = stage.args["name"]
        for pair in parse_routes(list(stage.args.get("route", []))):
            routes[pair] = [name]
        for pair in parse_routes(list(stage.args.get("add_route", []))):
            routes.setdefault(pair, []).append(name)
    return routes


def check_weights(recipe: Recipe) -> list[str]:
    # Stages run in the project root, so their relative paths are the root's.
    weights = PROJECT_ROOT / str(recipe.vars.get("WEIGHTS", "weights"))
    exports = [s for s in recipe.stages if s.module == "training.export"
               and (PROJECT_ROOT / str(s.args.get("weights", "weights"))).resolve() == weights.resolve()]
    if not exports:
        return [f"{recipe.path}: no export stage writes to {weights}"]
    manifest_path = weights / "manifest.json"
    if not manifest_path.is_file():
        return [f"{manifest_path}: missing (the recipe's exports have not run)"]
    manifest = json.loads(manifest_path.read_text())
    problems = []
    want = expected_routes(exports)
    for modality in MODALITIES:
        for organelle in ORGANELLES:
            have = manifest["routes"].get(modality, {}).get(organelle)
            if want.get((modality, organelle)) != have:
                problems.append(f"route {modality}/{organelle}: the recipe's exports give {want.get((modality, organelle))}, "
                                f"{manifest_path} has {have}")
    runs = _train_stages(recipe)
    calibrated = {str(Path(s.args["run"])) for s in recipe.stages if s.module == "training.calibrate"}
    seen = set()
    for stage in exports:
        name, run = stage.args["name"], str(Path(stage.args["run"]))
        if name in seen:
            continue
        seen.add(name)
        problems += _check_checkpoint(stage, weights / f"{name}.pt", runs.get(run), run in calibrated)
    return problems


def _check_checkpoint(stage: Stage, path: Path, train_stage: Stage | None, calibrated: bool) -> list[str]:
    where = f"stage {stage.name} ({path.name})"
    if not path.is_file():
        return [f"{where}: {path} is missing"]
    if train_stage is None:
        return [f"{where}: no training stage has out = {stage.args['run']}"]
    spec = read_spec(path)
    family, cfg = _resolved(train_stage)
    expected = {
        "arch": family.arch,
        "config": config_to_dict(asdict(family.model_config(cfg))),
        "organelles": tuple(cfg.organelles),
        "pixel_size_um": cfg.pixel_size_um,
        "window": int(stage.args.get("window", cfg.crop)),
        "calibrated": calibrated and not stage.args.get("no_calibration", False),
    }
    actual = {"arch": spec.arch, "config": spec.config, "organelles": tuple(spec.organelles),
              "pixel_size_um": spec.pixel_size_um, "window": spec.window, "calibrated": bool(spec.output_calibration)}
    return [f"{where}: {key} is {actual[key]!r}, the recipe (stage {train_stage.name}) makes {expected[key]!r}"
            for key in expected if expected[key] != actual[key]]
