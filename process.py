"""Grand-challenge entry point: every TL OME-TIFF in the input folder -> four organelle OME-TIFFs.

    python process.py [--input DIR] [--output DIR] [--weights DIR] [--overlap F] [--tta MODE] ...

Writes OUTPUT/images/<organelle>-fluorescence-ome-tiff/<input name> (uint16, the input's pixel
size, channel named after the organelle) for every readable input. One bad file is reported with
its name and reason and never stops the others; the exit code is 0 only if every input succeeded
and no entry that looked like an input was dropped. `--input` may also name one file.
The four outputs of an input appear together or not at all; input problems are one log line each,
never a traceback (README "Inputs" has the rules).
Heavy modules (torch, the models) are imported inside main() so `--help` answers instantly.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from inference.settings import BLEND_MODES, TTA_MODES, InferenceSettings

DEFAULT_INPUT = "/input/images/organelles-transmitted-light-ome-tiff"
DEFAULT_OUTPUT = "/output"
DEFAULT_WEIGHTS = str(Path(__file__).resolve().parent / "weights")
# Grand-challenge extracts an algorithm's uploaded model tarball here (export.sh --model makes one):
# weights updated without rebuilding the image win over the baked-in ones.
PLATFORM_MODEL_DIR = Path("/opt/ml/model")
log = logging.getLogger("process")


def default_weights() -> str:
    """LMC_WEIGHTS, else the platform's model folder when it holds a manifest.json (at its top or
    in weights/), else the weights baked in beside this file."""
    if os.environ.get("LMC_WEIGHTS"):
        return os.environ["LMC_WEIGHTS"]
    for folder in (PLATFORM_MODEL_DIR, PLATFORM_MODEL_DIR / "weights"):
        if (folder / "manifest.json").is_file():
            return str(folder)
    return DEFAULT_WEIGHTS


def build_parser() -> argparse.ArgumentParser:
    d = InferenceSettings()
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--input", default=os.environ.get("LMC_INPUT", DEFAULT_INPUT),
                   help="folder of TL images (.tif/.tiff, also .png, .jpg, ...) or one file (env LMC_INPUT)")
    p.add_argument("--output", default=os.environ.get("LMC_OUTPUT", DEFAULT_OUTPUT),
                   help="output root; organelle folders go under images/ (env LMC_OUTPUT)")
    p.add_argument("--weights", default=default_weights(),
                   help="folder with manifest.json and checkpoints (default: env LMC_WEIGHTS, else "
                        f"{PLATFORM_MODEL_DIR} when it holds a manifest.json, else the baked-in weights/)")
    p.add_argument("--overlap", type=float, default=d.overlap, help="window overlap in [0, 1)")
    p.add_argument("--tta", choices=TTA_MODES, default=d.tta, help="test-time augmentation")
    p.add_argument("--blend", choices=BLEND_MODES, default=d.blend, help="window blending")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="forward samples per model call")
    p.add_argument("--window", type=int, default=None, help="window size (default: each checkpoint's)")
    p.add_argument("--context", type=int, default=d.context,
                   help="mirrored context around the image, in model pixels (its borders seen like its interior)")
    p.add_argument("--device", default=None, help="torch device (default: cuda when available)")
    p.add_argument("--no-amp", action="store_true", help="fp32 on CUDA instead of fp16 autocast")
    p.add_argument("--backend", choices=("auto", "torch", "onnx"), default=os.environ.get("LMC_BACKEND", "torch"),
                   help="what runs the generators: PyTorch, ONNX Runtime on the CPU (inference/onnx_backend.py; "
                        "1.3-1.8x faster per image here), or auto: ONNX Runtime on the CPU when it is installed, "
                        "else torch (the container's choice; env LMC_BACKEND)")
    p.add_argument("--modality", default=None, metavar="NAME",
                   help="BF, PC or DIC (or a spelling such as 'phase contrast'): fills in or replaces "
                        "the files' modality metadata")
    p.add_argument("--pixel-size", type=float, default=None, metavar="UM",
                   help="pixel size in µm: fills in or replaces the files' pixel size")
    p.add_argument("--plane", type=int, default=None, metavar="INDEX",
                   help="for z-stacks and time series: the plane to use (0-based; default the middle one)")
    p.add_argument("--uncertainty", action="store_true",
                   help="also write per-pixel spread maps (std over TTA views and ensemble members) to "
                        "OUTPUT/uncertainty/<organelle>-spread/, float32")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def metadata_overrides(args) -> tuple[str | None, float | None] | None:
    """(modality, pixel size) from --modality/--pixel-size, checked; None after a one-line error."""
    from inference.inputs import checked_modality, checked_pixel_size
    if args.plane is not None and args.plane < 0:
        log.error("--plane must be 0 or more, got %d", args.plane)
        return None
    try:
        return (None if args.modality is None else checked_modality(args.modality, "--modality"),
                None if args.pixel_size is None else checked_pixel_size(args.pixel_size, "--pixel-size"))
    except ValueError as exc:
        log.error("%s", exc)
        return None


def write_outputs(prediction, image, output_root: Path) -> list[Path]:
    """The four outputs of one input (and its four spread maps when the prediction has them),
    together or not at all (preprocessing/output_group.py)."""
    from preprocessing.layout import OUTPUT_SUBDIRS, SPREAD_SUBDIRS
    from preprocessing.ome_io import ORGANELLE_FILE_NAMES, output_name, output_pixel_size, to_uint16, write_ome_tiff
    from preprocessing.output_group import write_together
    for note in output_pixel_size(image.pixel_size_um)[2]:   # said once for the four, naming the input
        log.warning("%s: %s", image.path.name, note)

    def writer(array, channel_name):
        return lambda tmp: write_ome_tiff(tmp, array, channel_name=channel_name,
                                          pixel_size_um=image.pixel_size_um, warn=False)
    name = output_name(image.path)
    files = [(output_root / OUTPUT_SUBDIRS[o] / name,
              writer(to_uint16(prediction.organelles[o] * 65535.0), ORGANELLE_FILE_NAMES[o])) for o in OUTPUT_SUBDIRS]
    if prediction.spread is not None:   # float32 in prediction units ([0, 1] scale), no rounding
        files += [(output_root / SPREAD_SUBDIRS[o] / name,
                   writer(prediction.spread[o], f"{ORGANELLE_FILE_NAMES[o]} spread")) for o in SPREAD_SUBDIRS]
    return write_together(files)


def process_file(path: Path, manifest, store, settings: InferenceSettings, output_root: Path,
                 overrides: tuple[str | None, float | None] = (None, None), plane: int | None = None,
                 spread: bool = False) -> bool:
    """Predict and write one file; log its line. False (after logging why) when it failed."""
    from inference.inputs import load_input, override_metadata
    from preprocessing.ome_io import OmeReadError
    from preprocessing.output_group import DiskFullError
    start = time.perf_counter()
    try:
        image, notes = load_input(path, plane)
    except OmeReadError as exc:
        log.error("FAILED %s", exc)
        return False
    except Exception as exc:  # an input problem the reader did not foresee: still one line, no traceback
        log.error("FAILED %s: cannot read (%s: %s)", path, type(exc).__name__, exc)
        return False
    for note in notes:
        log.warning("%s: %s", path.name, note)
    override_metadata(image, *overrides)
    from inference.pipeline import predict_image
    try:
        prediction = predict_image(image, manifest, store, settings, spread=spread)
        write_outputs(prediction, image, output_root)
    except DiskFullError as exc:
        log.error("FAILED %s: %s; none of its four outputs was written", path, exc)
        return False
    except Exception as exc:  # one bad file must never stop the others
        log.error("FAILED %s: %s: %s; none of its four outputs was written", path, type(exc).__name__, exc)
        return False
    for note in prediction.warnings:
        log.warning("%s: %s", path.name, note)
    modality = prediction.modality + (" (fallback)" if prediction.fallback else "")
    log.info("%s: %dx%d modality=%s models=%s inference %.2fs total %.2fs", path.name, *image.shape,
             modality, ",".join(prediction.models_used), prediction.seconds, time.perf_counter() - start)
    return True


def find_inputs(input_path: Path) -> tuple[list[Path], list[str]] | None:
    """(files to process, names of entries dropped); None after a one-line error. A file given as
    --input is processed alone; every folder entry that is not processed is named in the log."""
    from preprocessing.input_listing import list_inputs
    if input_path.is_file():
        return [input_path], []
    if not input_path.exists():
        log.error("input %s does not exist", input_path)
        return None
    if not input_path.is_dir():
        log.error("input %s is neither a folder nor a regular file", input_path)
        return None
    try:
        files, skipped = list_inputs(input_path)
    except OSError as exc:
        log.error("cannot list the input folder %s: %s", input_path, exc.strerror or exc)
        return None
    for entry in skipped:
        (log.error if entry.dropped else log.warning)("skipped %s: %s", entry.name, entry.reason)
    return files, [e.name for e in skipped if e.dropped]


def prepare_outputs(output_root: Path, spread: bool = False) -> bool:
    """Output folders made, a killed run's temporary files removed, writability probed: all
    before any inference, so an unwritable folder costs no model time. False after logging why."""
    from preprocessing.layout import OUTPUT_SUBDIRS, SPREAD_SUBDIRS
    from preprocessing.output_group import check_writable, remove_leftovers
    subdirs = list(OUTPUT_SUBDIRS.values()) + (list(SPREAD_SUBDIRS.values()) if spread else [])
    folders = [output_root / sub for sub in subdirs]
    problems = [p for p in (check_writable(f) for f in folders) if p]
    if problems:
        log.error("output folder not writable: %s", "; ".join(problems))
        return False
    removed = remove_leftovers(folders)
    if removed:
        log.warning("removed %d temporary file(s) left by an interrupted run", len(removed))
    return True


def cuda_missing(settings: InferenceSettings) -> bool:
    """--device cuda on a machine without CUDA: said once, before any image is read."""
    if not (settings.device or "").startswith("cuda"):
        return False
    import torch
    if torch.cuda.is_available():
        return False
    log.error("--device %s requested but CUDA is not available here (torch %s); use --device cpu or "
              "leave --device out", settings.device, torch.__version__)
    return True


RUN_INFO = "run_info.json"    # read by `python -m metrics report` (metrics/report_provenance.py)


def chosen_backend(backend: str, settings: InferenceSettings) -> str:
    """auto -> onnx on the CPU when ONNX Runtime is installed, else torch (CUDA keeps torch)."""
    if backend != "auto":
        return backend
    from inference.onnx_backend import available
    return "onnx" if settings.torch_device().type == "cpu" and available() else "torch"


def backend_missing(backend: str, settings: InferenceSettings) -> bool:
    """--backend onnx without onnxruntime, or on a CUDA device: said once, before any image is read."""
    if backend != "onnx":
        return False
    from inference.onnx_backend import BackendUnavailable, require_runtime
    try:
        require_runtime()
    except BackendUnavailable as exc:
        log.error("%s", exc)
        return True
    if settings.torch_device().type != "cpu":
        log.error("--backend onnx runs on the CPU; leave it out for --device %s", settings.device or "cuda")
        return True
    return False


def log_environment(settings: InferenceSettings, weights: Path, args, output_root: Path) -> None:
    """One log line that makes a run self-describing (what ran where, with which weights), and the
    same facts with every setting in OUTPUT/run_info.json, beside the challenge's folders."""
    import dataclasses

    import torch

    from models.registry import sha256_file
    from preprocessing.atomic_write import write_json
    device = settings.torch_device()
    gpu = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    cuda = torch.version.cuda if torch.cuda.is_available() else "not available"
    manifest_hash = sha256_file(weights / "manifest.json")
    log.info("torch %s, CUDA %s, device %s%s, %d thread(s), backend %s; weights %s (manifest sha256 %s)",
             torch.__version__, cuda, device, gpu, torch.get_num_threads(), args.backend, weights, manifest_hash[:12])
    info = {**dataclasses.asdict(settings), "device": str(device), "backend": args.backend,
            "modality_override": args.modality,
            "pixel_size_override_um": args.pixel_size, "plane": args.plane, "uncertainty": args.uncertainty,
            "weights": str(weights), "manifest_sha256": manifest_hash, "torch": torch.__version__, "cuda": cuda,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        write_json(output_root / RUN_INFO, info)
    except OSError as exc:     # provenance is worth a warning, never an image
        log.warning("could not write %s: %s", output_root / RUN_INFO, exc)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from inference.allocator import keep_freed_memory
    keep_freed_memory()     # large window buffers are reused, not re-faulted per batch
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    # tifffile logs its fallbacks at ERROR even for files it then reads; the reader captures them
    # (preprocessing/ome_io.read_tiff) and this is the net for any read outside it.
    logging.getLogger("tifffile").setLevel(logging.CRITICAL)
    try:
        settings = InferenceSettings(overlap=args.overlap, blend=args.blend, tta=args.tta,
                                     batch_size=args.batch_size, device=args.device,
                                     amp=not args.no_amp, window=args.window, context=args.context)
    except ValueError as exc:
        log.error("bad setting: %s", exc)
        return 2
    overrides = metadata_overrides(args)
    if overrides is None:
        return 2
    if cuda_missing(settings):
        return 2
    args.backend = chosen_backend(args.backend, settings)
    if backend_missing(args.backend, settings):
        return 2
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    from models.registry import Manifest, ModelStore

    input_path, output_root, weights = Path(args.input), Path(args.output), Path(args.weights)
    found = find_inputs(input_path)
    if found is None:
        return 1
    files, dropped = found
    if not files:
        log.error("no input images (.tif/.tiff, .png, .jpg, ...) in %s", input_path)
        return 1
    if not prepare_outputs(output_root, args.uncertainty):
        return 1
    try:
        manifest = Manifest.load(weights / "manifest.json")
    except Exception as exc:  # without models nothing can be written: say why and stop
        log.error("cannot load weights from %s: %s", weights, exc)
        return 1
    store = ModelStore(manifest, device=settings.torch_device())
    if args.backend == "onnx":
        from inference.onnx_backend import OnnxModelStore, default_cache
        store = OnnxModelStore(store, cache=default_cache())
    log_environment(settings, weights, args, output_root)
    start, failed = time.perf_counter(), []
    with logging_redirect_tqdm():
        for path in tqdm(files, desc="images", unit="img", disable=args.quiet):
            if not process_file(path, manifest, store, settings, output_root, overrides, args.plane,
                                args.uncertainty):
                failed.append(path.name)
    log.info("%d/%d image(s) written to %s in %.1fs on %s", len(files) - len(failed), len(files),
             output_root, time.perf_counter() - start, settings.torch_device())
    if failed:
        log.error("%d input(s) failed: %s", len(failed), ", ".join(failed))
    if dropped:
        log.error("%d entr%s looked like input(s) but could not be read: %s", len(dropped),
                  "y" if len(dropped) == 1 else "ies", ", ".join(dropped))
    return 1 if failed or dropped else 0


if __name__ == "__main__":
    sys.exit(main())
