"""The realism report: simulated nuclei and TL beside real references, statistic by statistic.

    python -m synthetic.realism_report [--fields 24] [--profiles v1 lmc] [--real ../shared/real] [--json OUT.json]

Simulated: one in-focus field from each of `--fields` studies (seed REALISM_SEED, studies 701 on,
at most 1024 px a side), its nucleus ground truth and its best-focus TL slice, per simulator profile
(synthetic/profiles.py; a column each: v1, the simulator of the shipped weights, beside lmc, the
calibrated one). Real: the
references in ../shared/real (real/README.md says where each comes from): stardist's DSB 2018
nuclei, the ISL confocal DAPI and phase contrast (pixel size not recorded: 0.4-0.7 µm from the
nuclei's size, 0.55 assumed), the Light My Cells crop (0.4-0.6 µm, 0.5 assumed; 8-bit and
contrast-stretched). Statistics in µm are shown only where a pixel size is known or assumed.
Then the study mix (synthetic/study_profile.py): modality, pixel size, z-slices and label sets of
the real training studies from their file lists, beside the study sampler of each profile and of
new-site. A simulated column is the median over fields with the 25th-75th percentile. The v1
column measures the simulator as it was; lmc's biology was set from these references by hand
(synthetic/profiles.py), nothing is fitted automatically.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

from .config import PROFILES, SimulationConfig
from .fov import simulate_fov
from .realism import noise_fraction, nucleus_statistics
from .study import sample_study
from .study_profile import real_profile, simulated_profile

REALISM_SEED = 41
FIRST_STUDY = 701
DEFAULT_REAL = Path(__file__).resolve().parents[2] / "shared" / "real"
NUCLEUS_ROWS = ("diameter_um", "diameter_px", "brightness_cv", "solidity", "slope_texture", "slope_shape",
                "background_fraction", "q50", "q90", "q99", "nuclei")
# name -> (file under real/, pixel size in µm or None, what the number rests on)
NUCLEUS_REFERENCES = {
    "stardist DSB": ("stardist_nuclei/img2d.tif", None, "pixel size unknown"),
    "ISL DAPI": ("isl_condition_blue/DAPI_CONFOCAL.png", 0.55, "0.55 µm/px assumed (0.4-0.7)"),
    "LMC crop nucleus": ("lmc_crop_biapy/Nucleus_target.png", 0.5, "0.5 µm/px assumed (0.4-0.6), 8-bit"),
}
TL_REFERENCES = {
    "ISL phase z06": "isl_condition_blue/PHASE_CONTRAST_z06.png",
    "LMC crop BF": "lmc_crop_biapy/TL_input.png",
}


def _read(path: Path) -> np.ndarray:
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile
        return tifffile.imread(path).astype(np.float64)
    from PIL import Image
    with Image.open(path) as image:
        return np.asarray(image, dtype=np.float64)


def simulated(fields: int, profile: str = "v1") -> tuple[list[dict], list[float]]:
    """Nucleus statistics and TL noise of one in-focus field per simulated study of `profile`."""
    config = SimulationConfig(studies=fields, seed=REALISM_SEED, first_study=FIRST_STUDY, max_size=1024,
                              profile=profile)
    nuclei, noise = [], []
    for number in range(FIRST_STUDY, FIRST_STUDY + fields):
        study = sample_study(config, number)
        sim = simulate_fov(study, 0, REALISM_SEED, organelles=("nucleus",), defocus_um=[0.0], best_z=0)
        nuclei.append(nucleus_statistics(sim.organelles["nucleus"], study.pixel_size_um))
        noise.append(noise_fraction(sim.tl[0]))
    return nuclei, noise


def _spread(values: list[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return "-"
    q25, q50, q75 = np.percentile(finite, [25, 50, 75])
    return f"{q50:.3g} ({q25:.3g}-{q75:.3g})"


def _value(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.3g}"


def report(fields: int, real: Path, profiles: tuple[str, ...] = ("v1", "lmc")) -> tuple[str, dict]:
    runs = {profile: simulated(fields, profile) for profile in profiles}
    sim_nuclei = {profile: run[0] for profile, run in runs.items()}
    sim_noise = {profile: run[1] for profile, run in runs.items()}
    refs = {name: nucleus_statistics(_read(real / file), pixel) for name, (file, pixel, _) in
            NUCLEUS_REFERENCES.items() if (real / file).is_file()}
    tl_refs = {name: noise_fraction(_read(real / file)) for name, file in TL_REFERENCES.items()
               if (real / file).is_file()}
    columns = " | ".join(f"simulated {p}" for p in profiles)
    lines = [f"Nucleus ground truth: simulated = median (25th-75th percentile) over {fields} fields "
             f"(python -m synthetic.realism_report --fields {fields} --profiles {' '.join(profiles)})", "",
             f"| statistic | {columns} | " + " | ".join(refs) + " |",
             "|---|" + "---|" * (len(profiles) + len(refs))]
    for row in NUCLEUS_ROWS:
        lines.append(f"| {row} | " + " | ".join(_spread([s[row] for s in sim_nuclei[p]]) for p in profiles) + " | "
                     + " | ".join(_value(r[row]) for r in refs.values()) + " |")
    notes = [f"{name}: {NUCLEUS_REFERENCES[name][2]}" for name in refs]
    missing = [name for name in NUCLEUS_REFERENCES if name not in refs] + [n for n in TL_REFERENCES if n not in tl_refs]
    lines += ["", "References: " + "; ".join(notes) + "." if notes else "", ""]
    lines += ["TL noise (sigma / p2-p99.8 range):", "",
              f"| statistic | {columns} | " + " | ".join(tl_refs) + " |",
              "|---|" + "---|" * (len(profiles) + len(tl_refs)),
              "| noise_fraction | " + " | ".join(_spread(sim_noise[p]) for p in profiles) + " | "
              + " | ".join(_value(v) for v in tl_refs.values()) + " |"]
    file_lists = real / "lmc_training_doc" / "FileList"
    mix = {}
    if file_lists.is_dir():
        real_mix = real_profile(file_lists)
        mix = {"real": real_mix.rows(), **{p: simulated_profile(real_mix.studies, REALISM_SEED, profile=p).rows()
                                          for p in PROFILES}}
        lines += ["", f"Study mix: the {real_mix.studies} real training studies (their file lists and "
                  "synthetic/acquisitions.py) beside as many studies of each profile's sampler "
                  "(max_slices unset: the profile's own cap):", "",
                  "| marginal | real | " + " | ".join(PROFILES) + " |", "|---|---|" + "---|" * len(PROFILES),
                  *(f"| {k} | {v} | " + " | ".join(mix[p][k] for p in PROFILES) + " |" for k, v in mix["real"].items())]
    else:
        missing.append("lmc_training_doc/FileList")
    if missing:
        lines += ["", f"Not found under {real}: {', '.join(missing)}."]
    data = {"fields": fields, "seed": REALISM_SEED, "profiles": list(profiles),
            "simulated_nuclei": sim_nuclei, "simulated_tl_noise": sim_noise,
            "real_nuclei": refs, "real_tl_noise": tl_refs, "study_mix": mix}
    return "\n".join(lines), data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fields", type=int, default=24, help="simulated fields (one per study)")
    parser.add_argument("--real", type=Path, default=DEFAULT_REAL, help="the real references folder")
    parser.add_argument("--json", type=Path, default=None, help="also write every number here")
    parser.add_argument("--profiles", nargs="+", choices=PROFILES, default=["v1", "lmc"],
                        help="simulated columns (default: v1 lmc)")
    args = parser.parse_args(argv)
    if args.fields < 1:
        parser.error("--fields must be at least 1")
    text, data = report(args.fields, args.real, tuple(args.profiles))
    print(text)
    if args.json:
        args.json.write_text(json.dumps(data, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
