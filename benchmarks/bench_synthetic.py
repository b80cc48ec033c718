"""Seconds to simulate one 1024×1024 field of view with its z-stack and organelles.

    python -m benchmarks.bench_synthetic [--repeats 3] [--size 1024] [--slices 11] [--compare-size 2048]

Prints the time of each stage (phantom, TL z-stack, fluorescence) and of the whole FOV, per
modality (profile v1), then the whole FOV of `--compare-size`² pixels with `--slices` slices and
3 organelles per profile side by side (v1, lmc; synthetic/profiles.py), each at its own study 1's
pixel size and cell line; all as the median over repeats: wall-clock seconds and CPU seconds of
this process (all threads). On a shared machine the CPU figure is the fairer one: wall time includes waiting for
cores that other processes hold. Writing files is not included (tifffile's cost, not ours).
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from preprocessing.ome_io import MODALITIES
from synthetic.camera import expose_stack, illumination_field
from synthetic.config import PROFILES, SimulationConfig
from synthetic.fluorescence import fluorescence_images
from synthetic.fov import simulate_fov
from synthetic.optics import tl_intensity
from synthetic.phantom import make_phantom
from synthetic.study import sample_study


class _Timing:
    def __init__(self, wall: float, cpu: float):
        self.wall, self.cpu = wall, cpu

    def __format__(self, spec: str) -> str:
        return f"{self.wall:6.3f} s wall {self.cpu:6.3f} s cpu"


def _median_seconds(fn, repeats: int) -> _Timing:
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return _Timing(float(np.median(walls)), float(np.median(cpus)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--slices", type=int, default=11, help="z-slices of the stack (default 11, the most)")
    parser.add_argument("--compare-size", type=int, default=2048, help="side of the per-profile comparison")
    parser.add_argument("--profiles", nargs="+", default=["v1", "lmc"], choices=PROFILES)
    args = parser.parse_args()
    config = SimulationConfig(seed=123, shapes=((args.size, args.size),), profile="v1")
    base = sample_study(config, 1)
    base = dataclasses.replace(base, organelles=("nucleus", "mitochondria", "tubulin"))
    defocus = (np.arange(args.slices) - args.slices // 2) * base.z_step_um
    print(f"{args.size}x{args.size} FOV, {args.slices} z-slices, 3 organelles, "
          f"median of {args.repeats} (pixel {base.pixel_size_um * 1000:.0f} nm)")
    rng = np.random.default_rng(0)
    phantom = make_phantom(base.shape, base.pixel_size_um, base.cell_line, rng)
    t_phantom = _median_seconds(lambda: make_phantom(base.shape, base.pixel_size_um, base.cell_line, rng),
                                args.repeats)
    t_fluo = _median_seconds(lambda: fluorescence_images({o: phantom.organelles[o] for o in base.organelles},
                                                         base.channels, base.pixel_size_um, rng,
                                                         crop=phantom.crop), args.repeats)
    print(f"  phantom                        {t_phantom}")
    print(f"  fluorescence (3 organelles)    {t_fluo}")
    for modality in MODALITIES:
        study = dataclasses.replace(base, optics=dataclasses.replace(base.optics, modality=modality))
        lamp = illumination_field(study.shape, 0.2, rng)

        def tl_stack():
            light = tl_intensity(phantom.phase(study.optics.wavelength_um), phantom.absorption, defocus,
                                 study.optics, study.pixel_size_um)
            return expose_stack((phantom.fov(p) * lamp for p in light), study.tl_camera, rng)

        t_tl = _median_seconds(tl_stack, args.repeats)
        t_all = _median_seconds(lambda: simulate_fov(study, 0, 7, defocus_um=defocus), args.repeats)
        t_typical = _median_seconds(lambda: simulate_fov(study, 0, 7), args.repeats)
        n_typical = simulate_fov(study, 0, 7).tl.shape[0]
        print(f"  {modality:3s} TL stack + camera         {t_tl}")
        print(f"  {modality:3s} whole FOV, {args.slices} slices     {t_all}")
        print(f"  {modality:3s} whole FOV, drawn {n_typical:2d} slices {t_typical}")
    compare_profiles(args.compare_size, args.slices, args.repeats, tuple(args.profiles))


def compare_profiles(size: int, slices: int, repeats: int, profiles: tuple[str, ...]) -> None:
    """Whole-FOV seconds per modality and profile, the same modality imposed on each profile's study 1."""
    studies = {}
    for profile in profiles:
        study = sample_study(SimulationConfig(seed=123, shapes=((size, size),), profile=profile), 1)
        studies[profile] = dataclasses.replace(study, organelles=("nucleus", "mitochondria", "tubulin"))
    print(f"{size}x{size} FOV, {slices} z-slices, 3 organelles, median of {repeats}, per profile ("
          + ", ".join(f"{p} {s.pixel_size_um * 1000:.0f} nm" for p, s in studies.items()) + ")")
    for modality in MODALITIES:
        cells = []
        for profile, base in studies.items():
            study = dataclasses.replace(base, optics=dataclasses.replace(base.optics, modality=modality))
            defocus = (np.arange(slices) - slices // 2) * study.z_step_um
            cells.append(f"{profile} {_median_seconds(lambda: simulate_fov(study, 0, 7, defocus_um=defocus), repeats)}")
        print(f"  {modality:3s} " + " | ".join(cells))


if __name__ == "__main__":
    main()
