"""`lmc-train RUN.toml`: one declarative run, trained (or resumed), then calibrated and exported.

    lmc-train runs/vq_nucleus.toml                    train as the file says
    lmc-train runs/vq_nucleus.toml --resume           continue it (any flag wins over the file)
    lmc-train runs/vq_nucleus.toml --print-config     the resolved run, as a run file
    lmc-train-vqgan --data D --out O --organelle nucleus --print-config > run.toml   a command -> a file

The file names its family (pix2pix or vqgan; --family when it does not); its keys are
TrainConfig's fields (training/run_file.py). Validation runs during training as configured. When
the run has reached its last step, the file's [calibrate] table runs training.calibrate on it and
its [export] table runs training.export (their flags, written as keys), in that order; a run
stopped early (--stop-after, --time-limit) leaves both for the resume that completes it.
"""
from __future__ import annotations

import argparse
import sys

from .run_file import FAMILIES, RunFileError, read_run_file

_FAMILY_MODULES = {"pix2pix": "training.train_pix2pix", "vqgan": "training.train_vqgan"}


def flags_of(table: dict) -> list[str]:
    """A TOML table as command-line flags: key -> --key (underscores as dashes), true -> the bare
    flag, false -> nothing, a list -> the flag once per item."""
    argv: list[str] = []
    for key, value in table.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, list):
            for item in value:
                argv += [flag, str(item)]
        else:
            argv += [flag, str(value)]
    return argv


def _family(argv: list[str]) -> tuple[str, list[str]]:
    """The family (from --family, else the run file) and the rest of the command line."""
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--family", choices=FAMILIES, default=None)
    peek.add_argument("run_file", nargs="?", default=None)
    known, rest = peek.parse_known_args(argv)
    family = known.family
    if family is None and known.run_file:
        try:
            family = read_run_file(known.run_file)["family"]
        except RunFileError as exc:
            raise SystemExit(f"error: {exc}") from exc
    if family is None:
        raise SystemExit("error: which family? give a run file with family = \"pix2pix\" or \"vqgan\", "
                         "or --family")
    return family, ([known.run_file] if known.run_file else []) + rest


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv in (["-h"], ["--help"]):
        parser = argparse.ArgumentParser(prog="lmc-train", description=__doc__,
                                         formatter_class=argparse.RawDescriptionHelpFormatter,
                                         epilog="Every training flag: lmc-train RUN.toml --help, "
                                                "lmc-train-pix2pix --help, lmc-train-vqgan --help")
        parser.add_argument("run_file", metavar="RUN.toml")
        parser.add_argument("--family", choices=FAMILIES, help="when the run file does not name it")
        parser.parse_args(argv)    # prints the help (exit 0), or says the run file is missing (exit 2)
    family, rest = _family(argv)
    import importlib

    from .options import parse, train_and_report
    module = importlib.import_module(_FAMILY_MODULES[family])
    extra = getattr(module, "add_organelle_flag", None)
    cfg, fam, after = parse(rest, module.FAMILY, module.__doc__.split("\n\n")[0], extra=extra)
    result = train_and_report(cfg, fam)
    if result.step < cfg.steps:
        if any(after.values()):
            print(f"run stopped at step {result.step} of {cfg.steps}: "
                  f"{' and '.join(k for k, v in after.items() if v)} wait for the resume that completes it")
        return 0
    from . import calibrate, export
    for name, step in (("calibrate", calibrate), ("export", export)):
        if after.get(name):
            command = ["--run", str(cfg.out), *flags_of(after[name])]
            print(f"{name}: python -m training.{name} {' '.join(command)}")
            code = step.main(command)
            if code:
                return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
