"""A shipped pix2pix checkpoint with transposed-conv upsampling -> the same generator with resize
or bilinear upsampling (models/pix2pix.py), as the warm start of a run that re-learns its decoders.

    python -m training.convert_upsampling --source weights/p2p_pc_small.pt --out runs/p2p_pc_resize_init.pt
    python -m training.convert_upsampling --source weights/p2p_bf_small.pt --out runs/p2p_bf_bilinear_init.pt --upsample bilinear

The conversion (`models.pix2pix.resize_state_from_transpose`) matches the two only for smooth
inputs: the transposed convs' parity pattern, the checkerboard itself, is what it drops, so the
converted model is a starting point for training, never a model to ship as it is. Its note says so.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from models.pix2pix import UPSAMPLING, Pix2PixConfig, Pix2PixGenerator, resize_state_from_transpose

RESIZE_MODES = tuple(mode for mode in UPSAMPLING if mode != "transpose")


def convert(source: Path, out: Path, upsample: str = "resize") -> str:
    """Write the converted checkpoint (`upsample`: "resize" or "bilinear", which share one state
    layout); returns its sha256. ValueError naming `source` if it is not a transpose-upsampling
    pix2pix."""
    if upsample not in RESIZE_MODES:
        raise ValueError(f"upsample must be one of {RESIZE_MODES}, got {upsample!r}")
    checkpoint = load_checkpoint(source)
    spec = checkpoint.spec
    if spec.arch != "pix2pix" or spec.config.get("upsample", "transpose") != "transpose":
        raise ValueError(f"{source}: not a pix2pix with transposed-conv upsampling "
                         f"({spec.arch}, upsample {spec.config.get('upsample')})")
    config = Pix2PixConfig(**{**spec.config, "upsample": upsample})
    model = Pix2PixGenerator(config)
    model.load_state_dict(resize_state_from_transpose(checkpoint.model.float().state_dict(), checkpoint.model.config))
    new_spec = dataclasses.replace(
        spec, config=dataclasses.asdict(config), output_calibration={},
        note=f"warm start only: {source.name} with its transposed convs turned into {upsample} convs "
             f"(training/convert_upsampling.py); not trained since. Source: {spec.note}")
    return save_checkpoint(out, model, new_spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.convert_upsampling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True, type=Path, help="a shipped pix2pix checkpoint (weights/<name>.pt)")
    parser.add_argument("--out", required=True, type=Path, help="where to write the converted checkpoint")
    parser.add_argument("--upsample", choices=RESIZE_MODES, default="resize",
                        help="nearest ×2 (resize) or bilinear ×2, each then a 3×3 conv (default resize)")
    args = parser.parse_args(argv)
    try:
        digest = convert(args.source, args.out, args.upsample)
    except (CheckpointError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} (sha256 {digest[:12]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
