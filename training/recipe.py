"""A recipe: every stage that makes a weights folder, in one TOML file, run by one command.

    lmc-recipe weights/recipe.toml --dry-run          the plan: each stage, done or not, its command
    lmc-recipe weights/recipe.toml                     run every stage not done yet (resumes where it stopped)
    lmc-recipe weights/recipe.toml --only p2p-bf       one stage (or several), whatever its state
    lmc-recipe weights/recipe.toml --set DATA=/big     a [vars] value replaced for this call
    lmc-recipe weights/recipe.toml --check             do the shipped weights match the recipe? (no training)

The file holds [vars] (strings and numbers; "{NAME}" in any value is replaced, and a value that
is only "{NAME}" takes the variable's type), `state` (where done-markers go) and [[stage]]
tables, run in order. A stage is either a command, `module` and its `args` (flags as keys:
true -> the bare flag, a list -> the flag per item), or a training run, a `train` table holding
a run file (training/run_file.py: family, TrainConfig fields, [loss], [model]), run as
`python -m training.train FILE --resume`. `foreach = [...]` repeats a stage with "{each}" (lower
case) and "{EACH}" replaced. `why` says what a stage is for; the routing decisions are written
there, beside the exports that make them. A stage is done when its marker holds its current
definition: editing a stage makes it (and only it) pending again.
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .run_file import RunFileError, dump, parse_run, split_run
from .train import flags_of

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


class RecipeError(ValueError):
    """A recipe that cannot be read or planned; the message names the file and the stage."""


@dataclass
class Stage:
    name: str
    why: str
    module: str                                   # python -m MODULE
    args: dict = field(default_factory=dict)      # its flags
    train: dict | None = None                     # a run file's content, for training.train

    def definition(self) -> dict:
        return {"module": self.module, "args": self.args, "train": self.train}


@dataclass
class Recipe:
    path: Path
    vars: dict
    state: Path
    stages: list[Stage]


def _substitute(value, names: dict, where: str):
    if isinstance(value, str):
        whole = _VAR.fullmatch(value)
        if whole and whole[1] in names:
            return names[whole[1]]

        def one(match):
            if match[1] not in names:
                raise RecipeError(f"{where}: unknown variable {{{match[1]}}}")
            return str(names[match[1]])
        return _VAR.sub(one, value)
    if isinstance(value, list):
        return [_substitute(v, names, where) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, names, where) for k, v in value.items()}
    return value


def _check_train(table: dict, where: str) -> None:
    """The run a train stage holds, checked now, so the dry run finds a typo before hours of training."""
    if table.get("family") not in ("pix2pix", "vqgan"):
        raise RecipeError(f"{where}: train.family must be \"pix2pix\" or \"vqgan\"")
    try:
        run = parse_run(table, where)
    except RunFileError as exc:
        raise RecipeError(str(exc)) from exc
    if "out" not in run["train"]:
        raise RecipeError(f"{where}: train.out (the run folder) is missing")


def load_recipe(path: str | Path, overrides: dict[str, str] | None = None) -> Recipe:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise RecipeError(f"{path}: no such recipe") from exc
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise RecipeError(f"{path}: not a readable TOML recipe ({exc})") from exc
    names = dict(data.get("vars", {}))
    for key, value in (overrides or {}).items():
        if key not in names:
            raise RecipeError(f"{path}: --set {key}: no such variable (known: {', '.join(names)})")
        names[key] = type(names[key])(value) if isinstance(names[key], (int, float)) else value
    stages: list[Stage] = []
    for index, table in enumerate(data.get("stage", [])):
        for each in table.get("foreach", [None]):
            scope = {**names, **({"each": str(each).lower(), "EACH": str(each)} if each is not None else {})}
            where = f"{path} stage {index + 1} ({table.get('name', '?')})"
            item = _substitute({k: v for k, v in table.items() if k != "foreach"}, scope, where)
            if "name" not in item or ("module" in item) == ("train" in item):
                raise RecipeError(f"{where}: a stage needs a name and either module (+ args) or train")
            if "train" in item:
                _check_train(item["train"], f"{where} train")
                stage = Stage(item["name"], item.get("why", ""), "training.train", {}, item["train"])
            else:
                stage = Stage(item["name"], item.get("why", ""), item["module"], item.get("args", {}))
            if any(s.name == stage.name for s in stages):
                raise RecipeError(f"{where}: a second stage named {stage.name!r}")
            stages.append(stage)
    state = Path(_substitute(data.get("state", "runs/recipe_state"), names, str(path)))
    return Recipe(path, names, state, stages)


def run_file_of(recipe: Recipe, stage: Stage) -> Path:
    return recipe.state / f"{stage.name}.toml"


def command(recipe: Recipe, stage: Stage) -> list[str]:
    if stage.train is not None:
        return [sys.executable, "-m", "training.train", str(run_file_of(recipe, stage)), "--resume"]
    return [sys.executable, "-m", stage.module, *flags_of(stage.args)]


def _marker(recipe: Recipe, stage: Stage) -> Path:
    return recipe.state / f"{stage.name}.done"


def status(recipe: Recipe, stage: Stage) -> str:
    """done | pending | changed (done before, but its definition is not the one it ran with)."""
    marker = _marker(recipe, stage)
    if not marker.is_file():
        return "pending"
    try:
        ran = json.loads(marker.read_text())
    except ValueError:
        return "changed"
    return "done" if ran == json.loads(json.dumps(stage.definition())) else "changed"


def run_stage(recipe: Recipe, stage: Stage, root: Path = PROJECT_ROOT) -> int:
    recipe.state.mkdir(parents=True, exist_ok=True)
    if stage.train is not None:
        top, tables = split_run(stage.train)
        run_file_of(recipe, stage).write_text(f"# written by lmc-recipe from {recipe.path} stage {stage.name}\n"
                                              + dump(top, tables))
    code = subprocess.run(command(recipe, stage), cwd=root).returncode
    if code == 0:
        _marker(recipe, stage).write_text(json.dumps(stage.definition(), indent=2) + "\n")
    return code


def describe(recipe: Recipe, stages: list[Stage]) -> str:
    lines = [f"{recipe.path}: {len(stages)} stage(s), markers in {recipe.state}"]
    for number, stage in enumerate(stages, 1):
        lines.append(f"{number:3d}. [{status(recipe, stage)}] {stage.name}" + (f": {stage.why}" if stage.why else ""))
        shown = command(recipe, stage)
        lines.append("       " + " ".join(["python", *shown[1:]]))
        if stage.train is not None:
            lines.append("       run file: " + json.dumps(stage.train, sort_keys=False))
    return "\n".join(lines)


def selected(recipe: Recipe, only: list[str] | None, start: str | None) -> list[Stage]:
    names = [s.name for s in recipe.stages]
    for name in (only or []) + ([start] if start else []):
        if name not in names:
            raise RecipeError(f"{recipe.path}: no stage {name!r} (stages: {', '.join(names)})")
    if only:
        return [s for s in recipe.stages if s.name in only]
    return recipe.stages[names.index(start):] if start else recipe.stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lmc-recipe", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    parser.add_argument("--only", nargs="+", default=None, metavar="STAGE", help="run these stages, done or not")
    parser.add_argument("--from", dest="start", default=None, metavar="STAGE",
                        help="start at this stage (stages before it are left as they are)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="VAR=VALUE")
    parser.add_argument("--check", action="store_true",
                        help="compare the weights folder the recipe exports to with what its stages say")
    args = parser.parse_args(argv)
    try:
        overrides = dict(item.split("=", 1) for item in args.overrides)
        recipe = load_recipe(args.recipe, overrides)
        stages = selected(recipe, args.only, args.start)
    except (RecipeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.check:
        from .recipe_check import check_weights
        differences = check_weights(recipe)
        print("\n".join(differences) if differences else f"{recipe.path}: the weights match every export stage")
        return 1 if differences else 0
    if args.dry_run:
        print(describe(recipe, stages))
        return 0
    for stage in stages:
        if args.only is None and status(recipe, stage) == "done":
            print(f"[done] {stage.name}")
            continue
        print(f"[run] {stage.name}: {' '.join(command(recipe, stage)[1:])}", flush=True)
        code = run_stage(recipe, stage)
        if code:
            print(f"error: stage {stage.name} failed (exit {code}); fix it and run the recipe again: it resumes here",
                  file=sys.stderr)
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())

