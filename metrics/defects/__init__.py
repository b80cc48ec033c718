"""Defect detectors: what a person sees in a prediction and the challenge's metrics miss.

`find_defects(pred, gt=..., pixel_size_um=..., geometry=...)` runs every detector on one image
(non-finite values, saturation, periodic energy, seam steps, invented bright spots) and returns a
DefectReport; `scan_predictions` does it for a prediction folder, with each image's route, and
`summarise` counts the images with findings per organelle and route. Thresholds: DefectConfig.
numpy and scipy only; torch is imported only to read a weights folder's manifest.
"""
from .config import DefectConfig
from .grid import WindowGeometry
from .report import DETECTORS, DefectReport, find_defects
from .scan import DefectRecord, SummaryRow, format_table, scan_predictions, summarise, write_defects_json

__all__ = ["DETECTORS", "DefectConfig", "DefectRecord", "DefectReport", "SummaryRow", "WindowGeometry",
           "find_defects", "format_table", "scan_predictions", "summarise", "write_defects_json"]
