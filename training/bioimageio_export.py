"""Shipped checkpoints -> BioImage Model Zoo packages (bioimage.io model spec 0.5), one per checkpoint.

    lmc-export --bioimageio --license SPDX-ID [--weights weights/] [--out bioimageio/] [--only NAME]
    python -m training.bioimageio_export --license SPDX-ID ...

One package per checkpoint, not per (modality, organelle) route: a route is a checkpoint plus the
channel it serves, and the manifest points several routes at one checkpoint (p2p_pc_small serves
PC and DIC actin), so a package holds the checkpoint with all its output channels and its README
lists the routes that use each channel. Each zip holds:

- rdf.yaml: input `raw` = one transmitted-light plane on the model's 0.2 µm grid; output
  `prediction` = one channel per organelle in [0, 1];
- weights twice: TorchScript (traced, needs only torch) and the fp32 state dict with a
  self-contained architecture file (the project's model sources embedded, so `models` need not be
  importable where the package is used);
- pre-processing as inference/pipeline.py does it: scale_range with the checkpoint's percentiles
  (p_low -> 0, p_high -> 1, per image, no clipping) then scale_linear 2x - 1 (-> [-1, 1]);
  post-processing: the output range mapped linearly to [0, 1], then clipped;
- a test input (a simulated TL image never used for training: the held-out seed) and the output
  this project's own code computes for it (preprocessing.normalization + the eager model).

What the spec cannot express, and the package therefore leaves out (README of each package):
resampling to 0.2 µm (the axes declare the scale; the caller resamples), our sliding window with
Gaussian blending, and the per-image output calibration (quantile matching / gamma; a monotone
map fitted per organelle, models/calibration.py).

Nothing is downloaded: the sources are the files in weights/ and the simulator. (bioimageio.spec's
own validation sends a HEAD request to the cite URL when it can; offline that only warns.)
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import tifffile
import torch

from models.quantizer import whole_distance_matrix
from models.registry import LoadedCheckpoint, Manifest, load_checkpoint
from preprocessing.normalization import normalise
from preprocessing.resampling import to_model_grid
from synthetic import SimulationConfig, sample_study, simulate_fov

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The held-out simulator seed (test/studies): `python -m synthetic` refuses it, so no training
# run saw these images. Study 990 is outside the held-out studies' 901-903.
TEST_SEED, TEST_STUDY = 900001, 990
# The model files embedded in the architecture file, in import order.
_MODEL_SOURCES = ("shapes", "presets", "norms", "quantizer", "pix2pix", "vqgan", "architectures")
_EMBEDDED_PACKAGE = "lmc_insilico_models"   # must not clash with the real `models`
ARCHITECTURE_FILE = "lmc_architecture.py"
HONEST_NOTE = ("Trained on SIMULATED cells only (this project's simulator, on CPU, for minutes to "
               "hours); it never saw real Light My Cells images and fails on real microscopy: use "
               "it to try the pipeline, not to label real cells.")


def sample_input(spec, modality: str) -> np.ndarray:
    """A window x window float32 TL plane of `modality` on the checkpoint's pixel grid: simulated
    at a real-looking pixel size, resampled by our own code, centre crop."""
    study = sample_study(SimulationConfig(seed=TEST_SEED, modalities=(modality,), profile="v1"),  # as exported
                         TEST_STUDY)
    model_px = spec.pixel_size_um or study.pixel_size_um
    side = int(np.ceil(spec.window * model_px / study.pixel_size_um)) + 16
    study = dataclasses.replace(study, shape=(side, side))
    fov = simulate_fov(study, 0, TEST_SEED, organelles=(), defocus_um=[0.0])
    plane = to_model_grid(fov.tl[0].astype(np.float32), (study.pixel_size_um,) * 2, spec.pixel_size_um)
    top, left = ((n - spec.window) // 2 for n in plane.shape)
    return np.ascontiguousarray(plane[top:top + spec.window, left:left + spec.window])


@torch.inference_mode()
def reference_output(checkpoint: LoadedCheckpoint, image: np.ndarray) -> np.ndarray:
    """[1, C, H, W] in [0, 1] as inference/pipeline.py computes it for one window (before the
    output calibration, which the package leaves out)."""
    spec = checkpoint.spec
    x, _ = normalise(image, spec.input_norm)
    y = checkpoint.model(torch.from_numpy(x)[None, None])
    low, high = spec.output_range
    return ((y - low) / (high - low)).clamp(0.0, 1.0).numpy()


def trace(model: torch.nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    """TorchScript by tracing (scripting fails on the models' Python-side shape checks). The
    quantiser splits its distance matrix into row chunks and a trace freezes their number (a tile
    with more chunks then fails: "Expected 4 elements in a list but found 7"), so it is traced
    with one chunk for any size. That costs N x n_embed floats (256 MB at a 1024² tile), far less
    than the VQGAN's attention at that size."""
    with whole_distance_matrix(model), torch.no_grad(), warnings.catch_warnings():
        # The models' input checks are Python ifs: the trace evaluates them once, for the example,
        # and keeps no check (the rdf's axes say what sizes are valid). Its warnings say just that.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        return torch.jit.trace(model.eval(), example, check_trace=False)


def architecture_source() -> str:
    """One importable file that builds our generators without this project installed: each model
    module's source is embedded and executed as a module of a private package."""
    sources = {}
    for name in _MODEL_SOURCES:
        text = (PROJECT_ROOT / "models" / f"{name}.py").read_text(encoding="utf-8")
        sources[name] = text.replace("from models.", f"from {_EMBEDDED_PACKAGE}.")
    return f'''"""Architecture of the Light My Cells in-silico labelling generators (pix2pix, VQGAN).

Generated by training/bioimageio_export.py from the project's models/ sources, embedded below so
this file needs only torch. `lmc_generator(arch, config)` returns the untrained model that the
state dict of this package fills."""
import sys
import types

_PACKAGE = {_EMBEDDED_PACKAGE!r}
_SOURCES = {sources!r}


def _load():
    if _PACKAGE in sys.modules:
        return sys.modules[_PACKAGE]
    package = types.ModuleType(_PACKAGE)
    package.__path__ = []
    sys.modules[_PACKAGE] = package
    for name, source in _SOURCES.items():
        module = types.ModuleType(f"{{_PACKAGE}}.{{name}}")
        sys.modules[module.__name__] = module   # dataclasses look their module up here
        exec(compile(source, f"<{{_PACKAGE}}/{{name}}.py>", "exec"), module.__dict__)
        setattr(package, name, module)
    return package


def lmc_generator(arch, config):
    return _load().architectures.build_model(arch, config)
'''


def _routes_served(manifest: Manifest, name: str) -> list[str]:
    return [f"{m} -> {o}" for m, by_o in manifest.routes.items() for o, names in by_o.items() if name in names]


def _documentation(name: str, checkpoint: LoadedCheckpoint, routes: list[str]) -> str:
    spec = checkpoint.spec
    low, high = (f'{float(spec.input_norm[k]):g}' for k in ("low", "high"))
    calibrated = ", ".join(sorted(spec.output_calibration)) or "none"
    return f"""# {name}: in-silico labelling on simulated cells

**{HONEST_NOTE}**

Checkpoint `{name}` of the Light My Cells (ISBI 2024) in-silico labelling container: a
{spec.arch} generator that predicts {", ".join(spec.organelles)} fluorescence from one
transmitted-light plane. Checkpoint note: {spec.note}.

The project's README (`project_README.md`, attached) describes the simulator, the training and
the measured scores.

## Routes of the container served by this package

{chr(10).join(f"- {r}" for r in routes) or "- none (not routed in the shipped manifest)"}

(`modality -> organelle`: the container feeds images of that modality to this checkpoint and keeps
that output channel. A channel not listed is predicted too, but the container takes that organelle
from another checkpoint.)

## Input

`raw`: one transmitted-light plane ({", ".join(spec.modalities)} in training), float32, **at
{spec.pixel_size_um} µm per pixel** (resample first; the axes declare this scale). Tiles of
{spec.window} x {spec.window} are what the container runs; any size of {spec.window} + k x
{spec.size_divisor} is accepted. Pre-processing: the image's p{low} -> 0 and p{high} -> 1
(`scale_range`, per image, no clipping), then 2x - 1, i.e. p{low} -> -1 and p{high} -> +1, as
`preprocessing/normalization.py` does.

## Output

`prediction`: channels {list(spec.organelles)}, the model's [{spec.output_range[0]},
{spec.output_range[1]}] mapped to [0, 1] and clipped.

## Not in this package (the spec cannot express it)

- resampling to {spec.pixel_size_um} µm and back to the image's grid;
- the container's sliding window over large images (windows of {spec.window}, Gaussian blending);
  pix2pix uses instance normalisation and the VQGAN attends over the whole tile, so the result
  depends on the tile size;
- the per-image output calibration fitted per organelle (`models/calibration.py`; here: {calibrated}).

The container (`process.py`) does all three, so its files differ from this package's predictions,
most for the organelles with a fitted calibration.

## Validation

- The test output was computed by the project's own code (its normalisation and the eager model)
  on a simulated {spec.modalities[0]} image that no training run saw (held-out simulator seed);
  `bioimageio.core`'s model test reproduces it from the test input with both weight formats.
- The TorchScript weights equal the eager model on that input to < 1e-4.
- Scores: only on simulated held-out images (project README, "Measured"). There is **no**
  validation on real images: on the few real images tried, the shipped weights fail (project
  README, "Real images": nucleus PCC 0.17 to 0.26; on one real field an all-zero image beats
  them on MAE).
"""


def build_package(checkpoint_path: str | Path, out_dir: str | Path, *, license: str,
                  manifest: Manifest | None = None, authors: tuple[str, ...] = ()) -> Path:
    """Write `<out_dir>/<name>.zip` (a bioimage.io model package) for one checkpoint; returns it."""
    from bioimageio.spec import save_bioimageio_package

    checkpoint = load_checkpoint(checkpoint_path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"{checkpoint.name}_") as work:   # copied into the zip
        descr = describe(checkpoint, Path(work), license=license, manifest=manifest, authors=authors)
        return Path(save_bioimageio_package(descr, output_path=out_dir / f"{checkpoint.name}.zip"))


def describe(checkpoint: LoadedCheckpoint, work: Path, *, license: str, manifest: Manifest | None = None,
             authors: tuple[str, ...] = ()):
    """The bioimage.io ModelDescr of one checkpoint, its files written into `work`."""
    from bioimageio.spec.model import v0_5 as bio

    spec, name = checkpoint.spec, checkpoint.name
    image = sample_input(spec, spec.modalities[0])
    expected = reference_output(checkpoint, image)
    example = torch.from_numpy(normalise(image, spec.input_norm)[0])[None, None]
    traced = trace(checkpoint.model, example)
    with torch.no_grad():
        gap = float((traced(example) - checkpoint.model(example)).abs().max())
    if not gap < 1e-4:
        raise RuntimeError(f"{name}: TorchScript differs from the eager model by {gap:g}")
    traced.save(str(work / "weights.torchscript.pt"))
    # A plain fp32 state dict (bioimage.io loads it with weights_only=True and strict keys).
    torch.save({k: v.detach().float() if v.is_floating_point() else v
                for k, v in checkpoint.model.state_dict().items()}, work / "weights.pt")
    (work / ARCHITECTURE_FILE).write_text(architecture_source(), encoding="utf-8")
    np.save(work / "test_input.npy", image[None, None])
    np.save(work / "test_output.npy", expected.astype(np.float32))
    # The same pair as TIFF: the spec's human-readable "sample" (FAIR asks for one; no .npy there).
    tifffile.imwrite(work / "sample_input.tif", image, photometric="minisblack")
    # One grey page per organelle channel, never read as an RGB image.
    tifffile.imwrite(work / "sample_output.tif", np.squeeze(expected[0], axis=0) if len(spec.organelles) == 1
                     else expected[0], photometric="minisblack")
    routes = _routes_served(manifest, name) if manifest else []
    (work / "README.md").write_text(_documentation(name, checkpoint, routes), encoding="utf-8")
    # The project's README under its own name (a second README.md would be renamed README_2.md).
    (work / "project_README.md").write_bytes((PROJECT_ROOT / "README.md").read_bytes())

    def space(axis: str, size) -> dict:
        # 0.2 µm per pixel: the grid the model was trained on (None: trained unresampled).
        return dict(id=bio.AxisId(axis), size=size, unit="micrometer" if spec.pixel_size_um else None,
                    scale=spec.pixel_size_um or 1.0)

    low, high = spec.output_range
    raw = bio.InputTensorDescr(
        id=bio.TensorId("raw"),
        description=f"transmitted light ({'/'.join(spec.modalities)}) at {spec.pixel_size_um} µm/px",
        axes=[bio.BatchAxis(), bio.ChannelAxis(channel_names=[bio.Identifier("transmitted_light")]),
              *(bio.SpaceInputAxis(**space(a, bio.ParameterizedSize(min=spec.window, step=spec.size_divisor)))
                for a in ("y", "x"))],
        test_tensor=bio.FileDescr(source=work / "test_input.npy"),
        sample_tensor=bio.FileDescr(source=work / "sample_input.tif"),
        data=bio.IntervalOrRatioDataDescr(type="float32"),
        preprocessing=[
            bio.EnsureDtypeDescr(kwargs=bio.EnsureDtypeKwargs(dtype="float32")),
            bio.ScaleRangeDescr(kwargs=bio.ScaleRangeKwargs(
                axes=[bio.AxisId("y"), bio.AxisId("x")],     # per image, as our normalise()
                min_percentile=float(spec.input_norm["low"]), max_percentile=float(spec.input_norm["high"]))),
            bio.ScaleLinearDescr(kwargs=bio.ScaleLinearKwargs(gain=2.0, offset=-1.0)),
        ])
    prediction = bio.OutputTensorDescr(
        id=bio.TensorId("prediction"),
        description=f"predicted fluorescence in [0, 1]: {', '.join(spec.organelles)}",
        axes=[bio.BatchAxis(), bio.ChannelAxis(channel_names=[bio.Identifier(o) for o in spec.organelles]),
              *(bio.SpaceOutputAxis(**space(a, bio.SizeReference(tensor_id=bio.TensorId("raw"),
                                                                   axis_id=bio.AxisId(a))))
                for a in ("y", "x"))],
        test_tensor=bio.FileDescr(source=work / "test_output.npy"),
        sample_tensor=bio.FileDescr(source=work / "sample_output.tif"),
        data=bio.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
        postprocessing=[
            bio.ScaleLinearDescr(kwargs=bio.ScaleLinearKwargs(gain=1.0 / (high - low), offset=-low / (high - low))),
            bio.ClipDescr(kwargs=bio.ClipKwargs(min=0.0, max=1.0)),
            bio.EnsureDtypeDescr(kwargs=bio.EnsureDtypeKwargs(dtype="float32")),
        ])
    torch_version = bio.Version(torch.__version__.split("+")[0])
    return bio.ModelDescr(
        name=f"LMC in-silico labelling {name} (simulated)",   # the spec asks for <= 64 characters
        description=(f"{spec.arch} predicting {', '.join(spec.organelles)} from transmitted light. "
                     + HONEST_NOTE)[:1024],
        authors=[bio.Author(name=a) for a in (authors or ("Light My Cells in-silico labelling project",))],
        cite=[bio.CiteEntry(text="Light My Cells challenge (ISBI 2024): in-silico labelling of organelles "
                                 "from transmitted-light images",
                            url="https://lightmycells.grand-challenge.org/")],
        license=license,
        documentation=bio.FileDescr(source=work / "README.md"),
        attachments=[bio.FileDescr(source=work / "project_README.md")],
        tags=["in-silico-labelling", "transmitted-light", "fluorescence", "2d", spec.arch,
              *spec.organelles, "simulated-training-data"],
        inputs=[raw],
        outputs=[prediction],
        weights=bio.WeightsDescr(
            # Traced from the state dict's model: the spec calls that its parent.
            torchscript=bio.TorchscriptWeightsDescr(source=work / "weights.torchscript.pt",
                                                    pytorch_version=torch_version, parent="pytorch_state_dict"),
            pytorch_state_dict=bio.PytorchStateDictWeightsDescr(
                source=work / "weights.pt", pytorch_version=torch_version,
                architecture=bio.ArchitectureFromFileDescr(
                    source=work / ARCHITECTURE_FILE, callable=bio.Identifier("lmc_generator"),
                    kwargs={"arch": spec.arch, "config": spec.config}))),
    )


def export_all(weights: str | Path, out_dir: str | Path, *, license: str, only: list[str] = (),
               authors: tuple[str, ...] = ()) -> list[Path]:
    manifest = Manifest.load(Path(weights) / "manifest.json")
    names = list(only) or list(manifest.checkpoints)
    unknown = [n for n in names if n not in manifest.checkpoints]
    if unknown:
        raise ValueError(f"unknown checkpoints {unknown}; the manifest has {list(manifest.checkpoints)}")
    return [build_package(manifest.checkpoint_path(n), out_dir, license=license, manifest=manifest,
                          authors=authors) for n in names]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", default="weights", help="folder with manifest.json")
    p.add_argument("--out", default="bioimageio", help="where the <checkpoint>.zip packages go")
    p.add_argument("--only", action="append", default=[], help="checkpoint name (repeatable; default: all)")
    p.add_argument("--license", required=True, help="SPDX licence identifier of the weights, e.g. MIT")
    p.add_argument("--author", action="append", default=[], help="author name (repeatable)")
    args = p.parse_args(argv)
    try:
        import bioimageio.spec  # noqa: F401
    except ImportError:
        print("bioimageio export needs bioimageio.spec (pip install -r requirements-dev.txt)", file=sys.stderr)
        return 2
    try:
        paths = export_all(args.weights, args.out, license=args.license, only=args.only,
                           authors=tuple(args.author))
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"bioimageio export failed: {exc}", file=sys.stderr)
        return 2
    for path in paths:
        print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
