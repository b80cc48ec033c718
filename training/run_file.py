"""A training run written down: a TOML file whose keys are TrainConfig's fields.

    family = "vqgan"                  # or "pix2pix"
    data = "data/shipped_train"
    out = "runs/vq_nucleus"
    organelles = ["nucleus"]
    steps = 1000
    pixel_size_um = 0.2
    [loss]                            # LossConfig fields
    gan_weight = 0.5
    [model]                           # generator config fields (the flags' --set KEY=VALUE)
    reseed_threshold = 0.9
    [calibrate]                       # optional, after the last step: training.calibrate's flags
    data = "data/shipped_calibration"
    items = 80
    [export]                          # optional, after calibration: training.export's flags
    name = "vq_nucleus_small"
    weights = "weights"
    route = ["PC:nucleus", "DIC:nucleus"]
    half = true

Every value is checked against the field's type here, so a typo or a wrong type is one line naming
the file and the key (with the closest known key), never a traceback in the trainer.
`render` writes the same format from a config, each key with its help as a comment.
"""
from __future__ import annotations

import difflib
import json
import tomllib
import types
import typing
from dataclasses import asdict, fields
from pathlib import Path

from .run_config import LossConfig, TrainConfig

FAMILIES = ("pix2pix", "vqgan")
STEPS_AFTER_TRAINING = ("calibrate", "export")   # tables run by `lmc-train` once the run is complete
_TABLES = ("loss", "model", *STEPS_AFTER_TRAINING)


class RunFileError(ValueError):
    """A run file that cannot be read or holds something that is not a run setting."""


def field_types(cls) -> dict[str, object]:
    return typing.get_type_hints(cls)


def check_value(name: str, value, hint, where: str):
    """`value` as the field's type wants it (lists -> tuples), or RunFileError naming `where`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        if value is None:
            return None
        (hint,) = [a for a in args if a is not type(None)]
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise RunFileError(f"{where}: {name} must be a list, got {value!r}")
        inner = args[0]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(check_value(name, v, inner, where) for v in value)
        if len(value) != len(args):
            raise RunFileError(f"{where}: {name} must hold {len(args)} values, got {value!r}")
        return tuple(check_value(name, v, a, where) for v, a in zip(value, args))
    if hint is bool:
        if not isinstance(value, bool):
            raise RunFileError(f"{where}: {name} must be true or false, got {value!r}")
        return value
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint in (int, str) and isinstance(value, hint) and not isinstance(value, bool):
        return value
    raise RunFileError(f"{where}: {name} must be {getattr(hint, '__name__', hint)}, got {value!r}")


def checked_fields(cls, values: dict, where: str) -> dict:
    """The entries of `values` that are fields of `cls`, type-checked, choices enforced."""
    known = {f.name: f for f in fields(cls)}
    hints = field_types(cls)
    out = {}
    for name, value in values.items():
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=1)
            raise RunFileError(f"{where}: unknown setting {name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        checked = check_value(name, value, hints[name], where)
        choices = known[name].metadata.get("choices")
        if choices and checked is not None:
            for item in checked if isinstance(checked, tuple) else (checked,):
                if item not in choices:
                    raise RunFileError(f"{where}: {name} {item!r} is not one of {list(choices)}")
        out[name] = checked
    return out


def read_run_file(path: str | Path) -> dict:
    """parse_run of a run file's TOML."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise RunFileError(f"{path}: no such run file") from exc
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RunFileError(f"{path}: not a readable TOML run file ({exc})") from exc
    return parse_run(data, str(path))


def split_run(data: dict) -> tuple[dict, dict[str, dict]]:
    """(the top-level keys, family included; the [loss], [model], [calibrate], [export] tables)."""
    return {k: v for k, v in data.items() if k not in _TABLES}, {name: data.get(name, {}) for name in _TABLES}


def parse_run(data: dict, where: str) -> dict:
    """{"family": str | None, "train": {...}, "loss": {...}, "model": {...}, "calibrate": {...},
    "export": {...}} from a run's mapping (a run file, or a recipe's train stage), every
    TrainConfig/LossConfig value checked; `where` names it in the errors."""
    top, tables = split_run(data)
    family = top.pop("family", None)
    if family is not None and family not in FAMILIES:
        raise RunFileError(f"{where}: family {family!r} is not one of {list(FAMILIES)}")
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise RunFileError(f"{where}: [{name}] must be a table")
    return {"family": family, "train": checked_fields(TrainConfig, top, where),
            "loss": checked_fields(LossConfig, tables["loss"], f"{where} [loss]"),
            **{name: tables[name] for name in ("model", *STEPS_AFTER_TRAINING)}}


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)    # ints, and strings as TOML basic strings


def _lines(cls, values: dict) -> list[str]:
    lines = []
    for f in fields(cls):
        if f.name == "loss":
            continue
        help_text = f.metadata.get("help", "")
        value = values[f.name]
        if value is None:           # TOML has no null: an unset setting is shown, commented out
            lines.append(f"# {f.name} = ...   # unset: {help_text}")
        else:
            lines.append(f"{f.name} = {_toml_value(value)}   # {help_text}")
    return lines


def render(family: str, cfg: TrainConfig, model: dict | None = None, after: dict | None = None) -> str:
    """The run file of a resolved config: reading it back gives the same config."""
    values = asdict(cfg)
    out = [f"# A {family} training run: lmc-train THIS_FILE (flags given beside it win).",
           f'family = "{family}"', *_lines(TrainConfig, values), "", "[loss]", *_lines(LossConfig, values["loss"])]
    if model:
        out += ["", "[model]   # generator config fields", *(f"{k} = {_toml_value(v)}" for k, v in model.items())]
    for name, table in (after or {}).items():
        if table:
            out += ["", f"[{name}]", *(f"{k} = {_toml_value(v)}" for k, v in table.items())]
    return "\n".join(out) + "\n"


def dump(top: dict, tables: dict[str, dict] | None = None) -> str:
    """Plain TOML of scalars and lists, then one-level tables: a run file from a recipe's stage."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in top.items() if v is not None]
    for name, table in (tables or {}).items():
        if table:
            lines += ["", f"[{name}]", *(f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None)]
    return "\n".join(lines) + "\n"
