"""One image's defect report: every detector run on one prediction, findings as one-line strings."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .config import DefectConfig
from .grid import WindowGeometry, map_geometry
from .nonfinite import NonFiniteResult, count_nonfinite, finite_copy
from .periodic import PeriodicResult, PeriodTarget, check_periodic
from .saturation import SaturationResult, check_saturation
from .seams import SeamResult, check_seams
from .spots import SpotResult, check_spots

DETECTORS = ("nonfinite", "saturation", "periodic", "seams", "spots")


@dataclass(frozen=True)
class DefectReport:
    shape: tuple[int, int]
    dtype: str
    nonfinite: NonFiniteResult
    saturation: SaturationResult
    periodic: PeriodicResult
    seams: SeamResult | None        # None: no window geometry given
    spots: SpotResult | None        # None: no ground truth, or an organelle spots are not judged for

    def results(self) -> dict:
        return {name: getattr(self, name) for name in DETECTORS}

    @property
    def flagged(self) -> tuple[str, ...]:
        """The detectors with a finding."""
        return tuple(n for n, r in self.results().items() if r is not None and r.finding)

    @property
    def findings(self) -> list[str]:
        return [line for r in self.results().values() if r is not None for line in r.findings()]

    def to_json(self) -> dict:
        out = {"shape": list(self.shape), "dtype": self.dtype, "flagged": list(self.flagged),
               "findings": self.findings}
        for name, result in self.results().items():
            out[name] = None if result is None else _plain(dataclasses.asdict(result))
        return out


def _plain(value):
    """JSON-safe: tuples as lists, non-finite floats as None (strict parsers refuse NaN/inf)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _as_geometries(geometry: WindowGeometry | Sequence[WindowGeometry] | None) -> list[WindowGeometry]:
    if geometry is None:
        return []
    return [geometry] if isinstance(geometry, WindowGeometry) else list(geometry)


def period_targets(shape: tuple[int, int], pixel_size_um: tuple[float, float] | None,
                   geometries: list[WindowGeometry], config: DefectConfig) -> list[PeriodTarget]:
    """The model periods of every checkpoint, and its window step, in image pixels (without a
    geometry: the model periods on the image's own grid, which is what inference uses when the
    pixel size is unknown)."""
    targets: dict[tuple[float, float], PeriodTarget] = {}

    def add(label: str, period: tuple[float, float]) -> None:
        key = tuple(round(p, 3) for p in period)
        targets.setdefault(key, PeriodTarget(label, period))   # type: ignore[arg-type]

    if not geometries:
        for p in config.model_periods_grid:
            add(f"{p} px", (float(p), float(p)))
    for geometry in geometries:
        on_image = map_geometry(geometry, shape, pixel_size_um)
        ry, rx = on_image.image_px_per_grid_px
        tag = f" ({geometry.name})" if geometry.name else ""
        for p in config.model_periods_grid:
            add(f"{p} grid px{tag}", (p * ry, p * rx))
        sy, sx = on_image.window_step_image_px
        if sy is not None or sx is not None:   # an axis with one window has no window period
            add(f"window step{tag}", (sy or math.inf, sx or math.inf))
    return list(targets.values())


def _seams(x: np.ndarray, pixel_size_um, geometries: list[WindowGeometry], config: DefectConfig) -> SeamResult:
    edges = []
    for geometry in geometries:
        on_image = map_geometry(geometry, x.shape, pixel_size_um)
        lags = tuple(max(1, round(r)) for r in on_image.image_px_per_grid_px)
        edges.extend(check_seams(x, on_image.edges, lags, config).edges)   # type: ignore[arg-type]
    unique = {(e.axis, e.position): e for e in edges}
    return SeamResult(tuple(unique[k] for k in sorted(unique)))


def find_defects(pred: np.ndarray, *, gt: np.ndarray | None = None,
                 pixel_size_um: float | tuple[float, float] | None = None,
                 geometry: WindowGeometry | Sequence[WindowGeometry] | None = None,
                 organelle: str | None = None, config: DefectConfig = DefectConfig()) -> DefectReport:
    """Run every detector on one 2D prediction (as stored: its dtype sets the saturation ceiling).

    `pixel_size_um`: the image's (y, x) pixel size or one number (spot areas; mapping the model grid);
    `geometry`: the checkpoint(s) of the prediction's route (periods and seams on their grid);
    `gt`: the ground truth, for the invented-spot detector, which runs when `organelle` is None or
    one of `config.spot_organelles`.
    """
    pred = np.asarray(pred)
    if pred.ndim != 2:
        raise ValueError(f"expected a 2D prediction, got shape {pred.shape}")
    if gt is not None and np.shape(gt) != pred.shape:
        raise ValueError(f"prediction shape {pred.shape} differs from the ground truth's {np.shape(gt)}")
    if isinstance(pixel_size_um, (int, float)):
        pixel_size_um = (float(pixel_size_um), float(pixel_size_um))
    geometries = _as_geometries(geometry)
    x = finite_copy(pred)
    judge_spots = gt is not None and (organelle is None or organelle in config.spot_organelles)
    spot_pixel = math.sqrt(pixel_size_um[0] * pixel_size_um[1]) if pixel_size_um else None
    return DefectReport(
        shape=pred.shape, dtype=str(pred.dtype),
        nonfinite=count_nonfinite(pred),
        saturation=check_saturation(pred, config),
        periodic=check_periodic(x, period_targets(pred.shape, pixel_size_um, geometries, config), config),
        seams=_seams(x, pixel_size_um, geometries, config) if geometries else None,
        spots=check_spots(x, finite_copy(gt), spot_pixel, config) if judge_spots else None)
