"""The defect detectors (metrics/defects): each fires on its defect planted in a clean image, and all
stay silent on real and simulated ground truth used as a prediction."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from scipy import ndimage
from test_inference_support import WindowCounter, tl_array, weights_dir, write_tl  # noqa: F401

from inference.geometry import window_edges
from inference.sliding_window import sliding_window_predict
from metrics.__main__ import main
from metrics.challenge import percentile_normalise
from metrics.defects import DefectConfig, WindowGeometry, find_defects
from metrics.defects.grid import map_geometry
from preprocessing.layout import INPUT_SUBDIR, OUTPUT_SUBDIRS
from preprocessing.ome_io import ORGANELLES, read_ome_tiff, write_ome_tiff
from preprocessing.resampling import to_model_grid, to_shape

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT.parent / "shared" / "real"
STUDIES = ROOT / "test" / "studies"
# What today's shipped checkpoints do to an image: 0.2 um grid, 256 windows, divisor 4, overlap 0.25.
SHIPPED = WindowGeometry(pixel_size_um=0.2, window=256, size_divisor=4, overlap=0.25, name="shipped")
CLEAN_GT = STUDIES / "Study_901" / "image_9010000_Nucleus.ome.tiff"     # 512 x 512, 0.0681 um


def clean_prediction() -> tuple[np.ndarray, float]:
    """A clean [0, 1] float prediction (simulated nucleus ground truth) and its pixel size."""
    image = read_ome_tiff(CLEAN_GT)
    return np.clip(percentile_normalise(image.array), 0, 1).astype(np.float32), image.pixel_size_um[0]


def as_uint16(x: np.ndarray) -> np.ndarray:
    """What the container writes for a [0, 1] prediction."""
    return np.rint(np.clip(x, 0, 1) * 65535).astype(np.uint16)


def through_grid(x: np.ndarray, pixel_um: float, plant) -> np.ndarray:
    """The pipeline's resampling: down to the 0.2 um model grid, `plant` a defect there, back."""
    grid = to_model_grid(x, (pixel_um, pixel_um), SHIPPED.pixel_size_um)
    return to_shape(plant(grid.copy()), x.shape)


# --- window geometry, torch-free, against the real sliding window ---

@pytest.mark.parametrize("size", [10, 100, 250, 256, 313, 700, 1031])
def test_window_edges_are_where_the_sliding_window_changes_window(size):
    image = torch.zeros(1, 1, 8, size)
    out = sliding_window_predict(image, WindowCounter(), window=256, overlap=0.25, blend="constant",
                                 batch_size=1, size_divisor=4)[0, 0, 0].numpy()
    changes = [int(i) + 1 for i in np.flatnonzero(np.diff(out) != 0)]
    assert window_edges(size, 256, 4, 0.25) == changes


def test_mapped_edges_are_where_a_grid_step_lands_after_resampling():
    """An edge between grid pixels e-1 and e lands on the image where the resampled step is steepest."""
    shape, pixel = (900, 1300), (0.0681, 0.0681)
    on_image = map_geometry(SHIPPED, shape, pixel)
    grid_shape = to_model_grid(np.zeros(shape, np.float32), pixel, SHIPPED.pixel_size_um).shape
    assert on_image.grid_shape == grid_shape
    for axis in (0, 1):
        grid_edges = window_edges(grid_shape[axis], 256, 4, 0.25)
        assert len(grid_edges) == len(on_image.edges[axis]) > 0
        for grid_edge, image_edge in zip(grid_edges, on_image.edges[axis]):
            step = np.zeros(grid_shape, np.float32)
            step[(slice(grid_edge, None), slice(None))[::1 if axis == 0 else -1]] = 1.0
            profile = to_shape(step, shape).mean(axis=1 - axis)
            steepest = int(np.argmax(np.diff(profile))) + 1
            assert abs(steepest - image_edge) <= 1


# --- saturation ---

def test_saturated_corners_like_the_bright_field_actin_vqgan_are_found():
    x, _ = clean_prediction()
    pred = as_uint16(x * 0.8)
    for ys in (slice(0, 2), slice(-2, None)):          # 2 x 2 blocks at the ceiling in all four corners
        for xs in (slice(0, 2), slice(-2, None)):
            pred[ys, xs] = 65535
    report = find_defects(pred)
    s = report.saturation
    assert (s.corner, s.border, s.interior, s.edge_blobs) == (16, 0, 0, 4)
    assert s.edge_finding and report.flagged == ("saturation",)
    assert report.findings[0].startswith("saturation: 4 saturated blob(s)")
    # A float prediction in [0, 1] has its ceiling at 1.0.
    assert find_defects(pred.astype(np.float32) / 65535).saturation.edge_finding


def test_saturation_judges_where_and_how_much():
    x, _ = clean_prediction()
    pred = as_uint16(x * 0.8)
    on_edge, near_edge = pred.copy(), pred.copy()
    on_edge[0, 0] = 65535              # one pixel on the image edge, as the actin VQGAN's corners often have
    near_edge[10, 10] = 65535          # the single brightest pixel of a smooth structure near the border
    assert find_defects(on_edge).saturation.edge_finding
    s = find_defects(near_edge).saturation
    assert (s.corner, s.blobs, s.edge_blobs, s.finding) == (1, 1, 0, False)
    plateau = pred.copy()
    plateau[200:240, 200:240] = 65535                    # 1600 px > 0.2 % of 512^2 in one blob
    s = find_defects(plateau).saturation
    assert (s.plateau_finding, s.edge_finding, s.largest_blob) == (True, False, 1600)
    spread = pred.copy()                                 # saturation everywhere alike, as on real cells
    rng = np.random.default_rng(0)
    for y, x0 in rng.integers(4, 508, size=(60, 2)):
        spread[y - 2:y + 2, x0 - 2:x0 + 2] = 65535
    s = find_defects(spread).saturation
    assert s.blobs > 0 and s.edge_blobs > 0 and not s.finding


# --- periodic energy ---

def test_checkerboard_of_two_grid_pixels_after_resampling_is_found():
    x, pixel = clean_prediction()
    amplitude = 0.03                                      # 3 % of the range, on the model grid

    def checkerboard(grid):
        yy, xx = np.indices(grid.shape)
        return grid + amplitude * (-1.0) ** (yy + xx)

    planted = find_defects(as_uint16(through_grid(x, pixel, checkerboard)), pixel_size_um=pixel, geometry=SHIPPED)
    clean = find_defects(as_uint16(through_grid(x, pixel, lambda g: g)), pixel_size_um=pixel, geometry=SHIPPED)
    hits = [p for p in planted.periodic.peaks if p.finding]
    assert hits and {p.label for p in hits} == {"2 grid px (shipped)"} and "(f,f)" in {p.vector for p in hits}
    assert "periodic" in planted.flagged and not clean.periodic.finding
    # The period is 2 grid px on the image: 2 x 0.2 / 0.0681 = 5.9 image px.
    assert hits[0].period_px[0] == pytest.approx(2 * 512 / 174)


def test_eight_pixel_blocks_are_found_in_the_edges_spectrum():
    """Blocks of 8 grid px with random offsets: no peak in the image's spectrum, but their borders
    repeat every 8 grid px, and a train of borders has its harmonics at 4 and 2 grid px too."""
    x, pixel = clean_prediction()
    rng = np.random.default_rng(1)

    def blocks(grid):
        h, w = grid.shape
        offsets = rng.uniform(-0.03, 0.03, size=(-(-h // 8), -(-w // 8)))
        return grid + np.kron(offsets, np.ones((8, 8)))[:h, :w]

    report = find_defects(as_uint16(through_grid(x, pixel, blocks)), pixel_size_um=pixel, geometry=SHIPPED)
    hits = [p for p in report.periodic.peaks if p.finding]
    assert hits and all(p.signal == "edges" for p in hits)
    assert {p.label for p in hits} <= {f"{n} grid px (shipped)" for n in (2, 4, 8)}
    assert not find_defects(as_uint16(through_grid(x, pixel, lambda g: g)), pixel_size_um=pixel,
                            geometry=SHIPPED).periodic.finding


def test_flat_images_have_no_periodic_finding():
    assert find_defects(np.full((256, 256), 7, np.uint16)).periodic.peaks[0].share == 0.0
    noise = np.random.default_rng(3).normal(1000, 3, size=(512, 512))     # a flat field with camera noise
    report = find_defects(np.rint(noise).astype(np.uint16), pixel_size_um=0.1, geometry=SHIPPED)
    assert not report.periodic.finding and report.flagged == ()


# --- seams ---

def test_step_at_a_window_seam_is_found():
    x, pixel = clean_prediction()
    big = np.pad(x, ((0, 512), (0, 512)), mode="reflect")          # 1024^2: several windows
    on_image = map_geometry(SHIPPED, big.shape, (pixel, pixel))
    grid_edge = window_edges(on_image.grid_shape[1], 256, 4, 0.25)[0]

    def step(grid):
        grid[:, grid_edge:] += 0.05                                # 5 % of the range past the edge
        return grid

    planted = find_defects(as_uint16(through_grid(big, pixel, step)), pixel_size_um=pixel, geometry=SHIPPED)
    clean = find_defects(as_uint16(through_grid(big, pixel, lambda g: g)), pixel_size_um=pixel, geometry=SHIPPED)
    hits = [e for e in planted.seams.edges if e.finding]
    assert [(e.axis, e.position) for e in hits] == [("column", on_image.edges[1][0])]
    assert hits[0].step == pytest.approx(0.05, rel=0.3)
    assert not clean.seams.finding and len(clean.seams.edges) == len(planted.seams.edges) > 2
    assert find_defects(big).seams is None                       # no geometry: not judged


# --- invented bright spots ---

def test_bright_spots_planted_where_the_ground_truth_is_dark_are_found():
    gt = read_ome_tiff(CLEAN_GT)
    x, pixel = clean_prediction()
    dark = ndimage.distance_transform_edt(ndimage.gaussian_filter(x, 3) < 0.05) > 20   # far from nuclei
    candidates = np.argwhere(dark[20:-20, 20:-20]) + 20
    centres: list[tuple[int, int]] = []
    for y, x0 in candidates[np.random.default_rng(2).permutation(len(candidates))]:
        if all(abs(y - a) + abs(x0 - b) > 40 for a, b in centres):
            centres.append((int(y), int(x0)))
        if len(centres) == 5:
            break
    yy, xx = np.indices(x.shape)
    planted = x.copy()
    for y, x0 in centres:
        planted += 0.8 * np.exp(-((yy - y) ** 2 + (xx - x0) ** 2) / (2 * 4.0 ** 2))
    report = find_defects(as_uint16(planted), gt=gt.array, pixel_size_um=pixel)
    found = sorted((s.y, s.x) for s in report.spots.invented)
    assert len(found) == 5 and all(abs(a - c) + abs(b - d) <= 2 for (a, b), (c, d) in zip(found, sorted(centres)))
    assert all(0.1 <= s.area_um2 <= 10 for s in report.spots.invented)
    assert "spots" in report.flagged
    assert not find_defects(as_uint16(x), gt=gt.array, pixel_size_um=pixel).spots.finding
    # Spots are judged for the nucleus only (a misplaced mitochondrion is an error, not an artefact).
    assert find_defects(as_uint16(planted), gt=gt.array, organelle="mitochondria").spots is None


# --- non-finite values ---

def test_nan_and_inf_are_counted_and_the_rest_is_still_checked():
    x, _ = clean_prediction()
    x *= 0.8                                             # nothing at the ceiling but the corner
    x[10, 10], x[20, 20], x[30, 30] = np.nan, np.inf, -np.inf
    x[:2, :2] = 1.0
    report = find_defects(x)
    assert (report.nonfinite.nan, report.nonfinite.posinf, report.nonfinite.neginf) == (1, 1, 1)
    assert report.flagged == ("nonfinite", "saturation")
    text = json.dumps(report.to_json(), allow_nan=False)          # strict JSON, no NaN tokens
    assert json.loads(text)["nonfinite"] == {"nan": 1, "posinf": 1, "neginf": 1}


# --- silence on real and simulated ground truth ---

REAL_FILES = ["stardist_nuclei/img2d.tif", "isl_condition_blue/DAPI_CONFOCAL.png",
              "isl_condition_blue/MAP2_CONFOCAL.png", "isl_condition_blue/NFH_CONFOCAL.png",
              "lmc_crop_biapy/Nucleus_target.png"]


def read_real(name: str) -> np.ndarray:
    path = REAL / name
    if not path.is_file():
        pytest.skip(f"{path} not found: the real-image checks need ../shared/real (see its README.md)")
    if path.suffix == ".png":
        from PIL import Image
        return np.asarray(Image.open(path))
    return tifffile.imread(path)


@pytest.mark.parametrize("name", REAL_FILES)
@pytest.mark.parametrize("pixel_um", [None, 0.1])     # no pixel size recorded: as found, and assumed 0.1 um
def test_detectors_are_silent_on_real_ground_truth(name, pixel_um):
    gt = read_real(name)
    report = find_defects(gt, gt=gt, pixel_size_um=pixel_um, geometry=SHIPPED)
    assert report.flagged == (), report.findings
    if pixel_um is not None:
        blurred = ndimage.gaussian_filter(gt.astype(np.float64), 1.0)
        assert not find_defects(blurred, gt=gt, pixel_size_um=pixel_um).spots.finding


def test_real_confocal_saturation_is_counted_but_not_a_finding():
    """ISL DAPI saturates on 0.3 % of its pixels, some near the border, all over the field."""
    s = find_defects(read_real("isl_condition_blue/DAPI_CONFOCAL.png")).saturation
    assert s.total > 0.002 * 1024 ** 2 and s.edge_blobs > 0
    assert s.edge_density_ratio < DefectConfig().edge_density_ratio and not s.finding


@pytest.mark.parametrize("path", sorted(p for p in STUDIES.glob("Study_*/image_*.ome.tiff")
                                        if not p.name.split("_")[-2].startswith(("BF", "PC", "DIC"))),
                         ids=lambda p: p.name)
def test_detectors_are_silent_on_the_simulated_ground_truth(path):
    gt = read_ome_tiff(path)
    raw = tifffile.imread(path).squeeze()
    report = find_defects(raw, gt=gt.array, pixel_size_um=gt.pixel_size_um, geometry=SHIPPED)
    assert report.flagged == (), report.findings


# --- the CLI ---

def _write_case(root: Path) -> tuple[Path, Path, Path]:
    """Two BF images with ground truth for every organelle; predictions are the ground truth itself,
    except image B's actin, which gets saturated corners."""
    truth = read_ome_tiff(CLEAN_GT).array[100:228, 100:228]
    gt, pred, inputs = root / "gt", root / "pred", root / INPUT_SUBDIR
    inputs.mkdir(parents=True)
    for name in ("a.ome.tiff", "b.ome.tiff"):
        write_tl(inputs / name, tl_array((128, 128)), modality="BF", pixel_size_um=(0.1, 0.1))
        for organelle in ORGANELLES:
            plane = truth.astype(np.uint16)
            write_ome_tiff(gt / OUTPUT_SUBDIRS[organelle] / name, plane, channel_name=organelle,
                           pixel_size_um=(0.1, 0.1))
            if name == "b.ome.tiff" and organelle == "actin":
                plane = plane.copy()
                plane[:2, :2] = plane[:2, -2:] = 65535
            write_ome_tiff(pred / OUTPUT_SUBDIRS[organelle] / name, plane, channel_name=organelle,
                           pixel_size_um=(0.1, 0.1))
    return pred, gt, root


def test_cli_prints_the_table_writes_json_and_enforces(tmp_path, weights_dir, capsys):  # noqa: F811
    (tmp_path / "case").mkdir()
    pred, gt, inputs = _write_case(tmp_path / "case")
    out = tmp_path / "defects.json"
    args = ["defects", "--pred", str(pred), "--gt", str(gt), "--input", str(inputs),
            "--weights", str(weights_dir), "--json", str(out), "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "organelle" in printed and "p2p+vq" in printed          # BF nucleus: the ensemble route
    assert "actin/b.ome.tiff [p2p]: saturation" in printed
    data = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"non-strict JSON: {c}"))
    rows = {(r["organelle"], r["route"]): r for r in data["summary"]}
    assert rows[("actin", "p2p")]["saturation"] == 1 and rows[("actin", "p2p")]["images"] == 2
    assert rows[("nucleus", "p2p+vq")]["any"] == 0 and rows[("nucleus", "p2p+vq")]["with_gt"] == 2
    assert len(data["records"]) == 8 and data["config"]["plateau_fraction"] == 0.002
    record = next(r for r in data["records"] if r["name"] == "b.ome.tiff" and r["organelle"] == "actin")
    assert record["modality"] == "BF" and record["report"]["flagged"] == ["saturation"]
    assert record["report"]["seams"] is not None                  # the route's geometry was used
    assert main(args + ["--enforce"]) == 1


def test_cli_enforce_passes_clean_predictions_and_reports_unreadable_files(tmp_path, weights_dir, capsys):  # noqa: F811
    (tmp_path / "case").mkdir()
    pred, gt, inputs = _write_case(tmp_path / "case")
    actin_b = pred / OUTPUT_SUBDIRS["actin"] / "b.ome.tiff"
    a = read_ome_tiff(gt / OUTPUT_SUBDIRS["actin"] / "b.ome.tiff").array.astype(np.uint16)
    write_ome_tiff(actin_b, a, channel_name="actin", pixel_size_um=(0.1, 0.1))   # now clean
    args = ["defects", "--pred", str(pred), "--gt", str(gt), "--input", str(inputs),
            "--weights", str(weights_dir), "--quiet", "--enforce"]
    assert main(args) == 0
    actin_b.write_bytes(b"not a tiff")
    assert main(args) == 1
    captured = capsys.readouterr()
    assert f"{actin_b}: unreadable TIFF" in captured.err
    assert main(["defects", "--pred", str(pred), "--gt", str(tmp_path / "missing")]) == 2
