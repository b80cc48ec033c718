"""Scan a prediction folder: every predicted organelle of every image, with its route and report.

Pairing (metrics.pairing) finds the ground truth (flat or study layout) and the TL inputs. The route
is what process.py would have run: the manifest's checkpoints for the modality in the TL input's OME
metadata (the manifest's fallback when it is missing), joined by "+". Its window geometry comes from
each checkpoint's spec and the default overlap; specs are read without building any model.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile

from metrics.pairing import pair
from preprocessing.atomic_write import write_json
from preprocessing.ome_io import (
    ORGANELLES,
    OmeReadError,
    parse_ome_metadata,
    read_ome_tiff,
    read_series,
    squeeze_singletons,
)

from .config import DefectConfig
from .grid import WindowGeometry
from .report import DETECTORS, DefectReport, find_defects

NO_ROUTE = "?"   # the route of a prediction scanned without weights


@dataclass
class DefectRecord:
    name: str
    organelle: str
    modality: str | None          # the modality whose route made it
    route: str                    # checkpoint names joined by "+", or NO_ROUTE
    prediction: Path
    has_gt: bool
    report: DefectReport | None   # None when the file could not be checked
    error: str | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "organelle": self.organelle, "modality": self.modality,
                "route": self.route, "prediction": str(self.prediction), "has_gt": self.has_gt,
                "error": self.error, "report": self.report.to_json() if self.report else None}


def read_prediction(path: Path) -> tuple[np.ndarray, tuple[float, float] | None]:
    """The stored plane, in its own dtype and with any NaN kept (read_ome_tiff refuses those), and
    its pixel size."""
    data, axes, ome_xml = read_series(path)
    plane, _ = squeeze_singletons(data, axes)
    if plane.ndim != 2:
        raise OmeReadError(f"{path}: not one 2D plane (shape {data.shape}, axes {axes})")
    return plane, parse_ome_metadata(ome_xml)[1]


def _header(path: Path | None) -> tuple[str | None, tuple[float, float] | None]:
    """(modality, pixel size) from a TL file's OME-XML; (None, None) when absent or unreadable."""
    if path is None:
        return None, None
    try:
        with tifffile.TiffFile(path) as tif:
            return parse_ome_metadata(tif.ome_metadata)
    except Exception:   # the metadata is a hint here; the prediction is what is checked
        return None, None


class Routes:
    """Route names and window geometries from a weights folder's manifest (specs only)."""

    def __init__(self, weights_dir: str | os.PathLike, overlap: float | None = None):
        from inference.settings import InferenceSettings
        from models.manifest import Manifest  # torch: only when routes are asked for

        self.manifest = Manifest.load(Path(weights_dir) / "manifest.json", check_hashes=False)
        self.overlap = InferenceSettings().overlap if overlap is None else overlap

    def route(self, modality: str | None, organelle: str) -> tuple[str, str, list[WindowGeometry]]:
        used, _ = self.manifest.effective_modality(modality)
        names = self.manifest.resolve(used, organelle)
        geometries = [WindowGeometry.from_spec(self.manifest.spec(n), self.overlap, n) for n in names]
        return used, "+".join(names), geometries


def scan_predictions(pred_root: str | os.PathLike, gt_root: str | os.PathLike,
                     inputs: str | os.PathLike | None = None, weights_dir: str | os.PathLike | None = None,
                     *, config: DefectConfig = DefectConfig(), overlap: float | None = None,
                     progress: bool = False) -> list[DefectRecord]:
    """A DefectRecord per predicted (image, organelle); missing predictions are the scorer's to
    report (python -m metrics score), not a defect.

    Without `weights_dir` the route is unknown: periods are looked for on the image's own grid and
    seams are not checked. A file that cannot be read gets a record with its error; the scan goes on.
    """
    pairing = pair(pred_root, gt_root, inputs=inputs)
    routes = Routes(weights_dir, overlap) if weights_dir is not None else None
    jobs = [(r, o) for r in pairing.images for o in ORGANELLES if o in r.predictions]
    if progress:
        from tqdm import tqdm
        jobs = tqdm(jobs, desc="defects", unit="file")
    headers: dict[Path | None, tuple] = {}
    records = []
    for image, organelle in jobs:
        if image.input_path not in headers:
            headers[image.input_path] = _header(image.input_path)
        modality, pixel_size = headers[image.input_path]
        if image.input_path is None:   # no TL file to read: the best guess (CSV, study, name)
            modality = image.modality
        route, geometries = NO_ROUTE, []
        if routes is not None:
            modality, route, geometries = routes.route(modality, organelle)
        path = image.predictions[organelle]
        gt_path = image.ground_truth.get(organelle)
        record = DefectRecord(image.name, organelle, modality, route, path, gt_path is not None, None)
        try:
            pred, pred_pixel = read_prediction(path)
            gt = read_ome_tiff(gt_path).array if gt_path is not None else None
            record.report = find_defects(pred, gt=gt, pixel_size_um=pixel_size or pred_pixel,
                                         geometry=geometries, organelle=organelle, config=config)
        except (OmeReadError, ValueError) as err:
            record.error = str(err) if str(path) in str(err) else f"{path}: {err}"
        records.append(record)
    return records


@dataclass
class SummaryRow:
    organelle: str
    route: str
    images: int = 0
    with_gt: int = 0
    errors: int = 0
    any: int = 0
    nonfinite: int = 0
    saturation: int = 0
    periodic: int = 0
    seams: int = 0
    spots: int = 0


def summarise(records: Iterable[DefectRecord]) -> list[SummaryRow]:
    """Images with a finding, per detector, per organelle x route (organelles in challenge order)."""
    rows: dict[tuple[str, str], SummaryRow] = {}
    for r in records:
        row = rows.setdefault((r.organelle, r.route), SummaryRow(r.organelle, r.route))
        row.images += 1
        row.with_gt += r.has_gt
        if r.report is None:
            row.errors += 1
            continue
        flagged = r.report.flagged
        row.any += bool(flagged)
        for name in flagged:
            setattr(row, name, getattr(row, name) + 1)
    return sorted(rows.values(), key=lambda row: (ORGANELLES.index(row.organelle), row.route))


def format_table(rows: list[SummaryRow]) -> str:
    header = ["organelle", "route", "images", "gt", *DETECTORS, "any", "errors"]
    cells = [[r.organelle, r.route, *(str(getattr(r, k)) for k in header[2:3]), str(r.with_gt),
              *(str(getattr(r, k)) for k in [*DETECTORS, "any", "errors"])] for r in rows]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]
    line = lambda cs: "  ".join(c.ljust(w) if i < 2 else c.rjust(w)   # noqa: E731
                                for i, (c, w) in enumerate(zip(cs, widths)))
    total = sum(r.any for r in rows)
    return "\n".join([f"images with a finding, per detector ({total} of {sum(r.images for r in rows)} "
                      "predictions flagged)", line(header), line(["-" * w for w in widths]),
                      *(line(c) for c in cells)])


def defects_json(records: list[DefectRecord], config: DefectConfig = DefectConfig()) -> dict:
    return {"config": dataclasses.asdict(config),
            "summary": [dataclasses.asdict(row) for row in summarise(records)],
            "records": [r.to_json() for r in records]}


def write_defects_json(path: str | os.PathLike, records: list[DefectRecord],
                       config: DefectConfig = DefectConfig()) -> Path:
    """Strict JSON (no NaN tokens), written atomically."""
    return write_json(Path(path), defects_json(records, config))
