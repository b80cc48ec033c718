"""The training command line, generated from TrainConfig and LossConfig (training/run_config.py).

    lmc-train RUN.toml [--flag ...]              the family named in the run file
    lmc-train-pix2pix [RUN.toml] [--flag ...]    python -m training.train_pix2pix
    lmc-train-vqgan [RUN.toml] --organelle X     python -m training.train_vqgan

Every field has a flag (--<field-name>, or the field's "flag" metadata: --pixel-size,
--time-limit); booleans get --x / --no-x; --quiet hides the progress bar; --set KEY=VALUE overrides
a generator config field. A value is taken, first that says it: the flag, the run file, the
family's default (its papers' optimiser and loss settings, Family.defaults), the dataclass
default. `--print-config` prints the resolved run as a run file and stops, so any command can
become a file. User mistakes end in one line (SystemExit), never a traceback.
"""
from __future__ import annotations

import argparse
import ast
import sys
import typing
from dataclasses import asdict, fields
from pathlib import Path

from .run_config import LossConfig, TrainConfig
from .run_file import STEPS_AFTER_TRAINING, RunFileError, check_value, field_types, read_run_file, render
from .run_guard import RunFolderError
from .store import StoreError
from .trainer import RunResult, train

LOSS_PREFIX = "loss__"      # argparse dest of a LossConfig field


def _pair(text: str) -> tuple[float, float]:
    parts = text.replace(",", " ").split()
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected two numbers like 0.5,0.999, got {text!r}")
    return float(parts[0]), float(parts[1])


def _override(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key.strip(), value


def _plain(hint):
    """The type inside `X | None`."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if type(None) in typing.get_args(hint) and len(args) == 1 else hint


def _add_field(group, f, hint, dest: str, shown_default) -> None:
    flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
    help_text = f"{f.metadata.get('help', '')} (default: {shown_default})"
    common = dict(dest=dest, default=argparse.SUPPRESS, help=help_text)
    metavar = f.name.upper()
    hint = _plain(hint)
    choices = f.metadata.get("choices")
    if hint is bool:
        group.add_argument(flag, action=argparse.BooleanOptionalAction, **common)
    elif typing.get_origin(hint) is tuple and typing.get_args(hint)[-1] is Ellipsis:
        group.add_argument(flag, nargs="+", choices=choices, metavar=None if choices else metavar, **common)
    elif typing.get_origin(hint) is tuple:
        group.add_argument(flag, type=_pair, metavar="A,B", **common)
    else:
        group.add_argument(flag, type=hint, choices=choices, metavar=None if choices else metavar, **common)


def build_parser(description: str, family=None) -> argparse.ArgumentParser:
    """Flags for every TrainConfig and LossConfig field; the defaults shown are `family`'s."""
    shown = effective_defaults(family, {})
    p = argparse.ArgumentParser(description=description)
    p.add_argument("run_file", nargs="?", default=None, metavar="RUN.toml",
                   help="a run file (training/run_file.py); flags given beside it win")
    hints = field_types(TrainConfig)
    for f in fields(TrainConfig):
        if f.name not in ("loss", "progress"):
            _add_field(p, f, hints[f.name], f.name, shown[f.name])
    p.add_argument("--quiet", dest="progress", action="store_false", default=argparse.SUPPRESS,
                   help="no progress bar (the summary is printed anyway)")
    p.add_argument("--set", dest="overrides", type=_override, action="append", default=[],
                   metavar="KEY=VALUE", help="override a generator config field (e.g. ngf=48)")
    p.add_argument("--print-config", action="store_true", help="print the resolved run as a run file and stop")
    group = p.add_argument_group("loss")
    loss_hints = field_types(LossConfig)
    for f in fields(LossConfig):
        _add_field(group, f, loss_hints[f.name], LOSS_PREFIX + f.name, shown["loss"][f.name])
    return p


def effective_defaults(family, chosen: dict) -> dict:
    """TrainConfig's defaults as a dict, with the family's own where it has them, given what the
    user `chosen` so far (the VQGAN's lr depends on preset and organelle)."""
    base = asdict(TrainConfig())
    if family is None:
        return base
    merged = {**base, **{k: v for k, v in chosen.items() if k != "loss"}}
    own = family.defaults(merged)
    base.update({k: v for k, v in own.items() if k != "loss"})
    base["loss"] = {**base["loss"], **own.get("loss", {})}
    return base


def resolve(args: argparse.Namespace, file: dict | None, family, check_folders: bool = True) -> TrainConfig:
    """TrainConfig from flags over the run file over the family's defaults over the dataclass's.
    `check_folders`: the data and store folders must exist (not for a recipe's --check)."""
    given = {k: v for k, v in vars(args).items() if k in {f.name for f in fields(TrainConfig)}}
    hints = field_types(TrainConfig)
    given = {k: check_value(k, list(v) if isinstance(v, list) else v, hints[k], "flags") for k, v in given.items()}
    given_loss = {k[len(LOSS_PREFIX):]: v for k, v in vars(args).items() if k.startswith(LOSS_PREFIX)}
    chosen = {**(file or {}).get("train", {}), **given}
    loss = {**(file or {}).get("loss", {}), **given_loss}
    values = {**effective_defaults(family, chosen), **chosen}
    values["loss"] = LossConfig(**{**values["loss"], **loss})
    cfg = TrainConfig(**values)
    if check_folders:
        _check_run(cfg)
    return cfg


def _check_run(cfg: TrainConfig) -> None:
    if cfg.out is None:
        raise SystemExit("error: no run folder: give --out or `out` in the run file")
    if cfg.data is None and cfg.store is None:
        raise SystemExit("error: give --data, --store, or both")
    for flag, value in (("--data", cfg.data), ("--store", cfg.store)):
        if value is not None and not Path(value).is_dir():
            raise SystemExit(f"error: {flag} {value} is not a folder")


def parse(argv: list[str] | None, family_factory, description: str, extra=None):
    """(TrainConfig, family, run file tables) from a command line. `family_factory(overrides)`
    builds the family; `extra(parser)` adds family-specific flags (the VQGAN's --organelle)."""
    parser = build_parser(description, family_factory({}))
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    try:
        file = read_run_file(args.run_file) if args.run_file else None
    except RunFileError as exc:
        raise SystemExit(f"error: {exc}") from exc
    overrides = {**(file or {}).get("model", {}), **dict(args.overrides)}
    family = family_factory(overrides)
    try:
        cfg = resolve(args, file, family)
        family.model_config(cfg)          # a generator that cannot be built is a user mistake too
    except (RunFileError, ValueError, TypeError) as exc:
        raise SystemExit(f"error: {exc}") from exc
    after = {name: (file or {}).get(name, {}) for name in STEPS_AFTER_TRAINING}
    if cfg.pixel_size_um is None and not args.print_config:
        # The dataclass keeps native as the default (a run file cannot write "none"), so say it.
        print("note: training at each image's native pixel size; the shipped weights were trained on a "
              "0.2 µm grid (--pixel-size 0.2, pixel_size_um = 0.2 in a run file)", file=sys.stderr)
    if args.print_config:
        print(render(family.arch, cfg, overrides, after), end="")
        raise SystemExit(0)
    return cfg, family, after


def train_and_report(cfg: TrainConfig, family) -> RunResult:
    """Run one training command and print the one-line summary both families share."""
    try:
        result = train(cfg, family)
    except (StoreError, RunFolderError) as exc:   # a store or run folder that does not fit: one line
        raise SystemExit(f"error: {exc}") from exc
    # The summary is printed even with --quiet (which only hides the progress bar).
    print(f"stopped at step {result.step}; best validation score {result.best_score:.4f}; "
          f"{result.samples_per_s:.1f} samples/s; run in {result.out}")
    return result
