"""`python -m metrics report` end to end on real files, and the page as headless Chromium shows it.

The data: three TL slices of the held-out studies (one per modality, test/studies) with their real
ground truth; the "predictions" are that ground truth blurred (a plausible, imperfect model), one of
them with a saturated corner planted so the defect section has a finding to list.
"""
from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from metrics.__main__ import main
from metrics.challenge import ALL_METRICS, METRIC_DEFINITIONS
from metrics.report import defects_html, pick_examples
from metrics.report_browser import dump_dom, find_chromium, images_loaded, screenshot
from metrics.report_figures import ExampleRow, Panel, example_figure, focus_figure, scale_bar_um
from metrics.report_provenance import DEFAULT_WEIGHTS, git_commit
from preprocessing.layout import INPUT_SUBDIR, OUTPUT_SUBDIRS
from preprocessing.ome_io import ORGANELLE_FILE_NAMES, ORGANELLES, read_ome_tiff, write_ome_tiff

REPO = Path(__file__).resolve().parent.parent
STUDIES = REPO / "test" / "studies"
SLICES = {"901": "image_9010000_BF_z0.ome.tiff", "902": "image_9020001_PC_z4.ome.tiff",
          "903": "image_9030000_DIC_z0.ome.tiff"}
SATURATED = ("nucleus", "image_9010000_BF_z0.ome.tiff")   # the planted defect


@dataclass
class Report:
    root: Path
    inputs: Path
    pred: Path
    out: Path
    rc: int
    html: str
    text: str           # the page without its tags


def _predictions(pred: Path) -> None:
    """All four outputs per image, as the container writes them: blurred ground truth where there is
    one, else a dark image with a little noise."""
    rng = np.random.default_rng(0)
    for study, name in SLICES.items():
        fov = name.rsplit("_", 2)[0]
        tl = read_ome_tiff(STUDIES / f"Study_{study}" / name)
        for organelle in ORGANELLES:
            gt_path = STUDIES / f"Study_{study}" / f"{fov}_{ORGANELLE_FILE_NAMES[organelle]}.ome.tiff"
            if gt_path.exists():
                array = ndimage.gaussian_filter(read_ome_tiff(gt_path).array, 3).clip(0, 65535).astype(np.uint16)
            else:
                array = rng.integers(0, 50, tl.shape).astype(np.uint16)
            if (organelle, name) == SATURATED:
                array[:40, :40] = 65535
            write_ome_tiff(pred / OUTPUT_SUBDIRS[organelle] / name, array, channel_name=organelle,
                           pixel_size_um=tl.pixel_size_um)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Report:
    root = tmp_path_factory.mktemp("report")
    inputs, pred, out = root / "input", root / "pred", root / "report"
    for study, name in SLICES.items():
        (inputs / INPUT_SUBDIR).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(STUDIES / f"Study_{study}" / name, inputs / INPUT_SUBDIR / name)
    _predictions(pred)
    (pred / "run_info.json").write_text('{"tta": "none", "overlap": 0.5}')
    rc = main(["report", "--pred", str(pred), "--gt", str(STUDIES), "--input", str(inputs),
               "--out", str(out), "--weights", str(DEFAULT_WEIGHTS), "--workers", "1", "--quiet"])
    html = (out / "index.html").read_text(encoding="utf-8")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))
    return Report(root, inputs, pred, out, rc, html, text)


def test_report_runs_and_links_every_figure(report):
    assert report.rc == 0
    for organelle in ORGANELLES:
        for kind in ("examples", "focus"):
            png = report.out / f"{organelle}_{kind}.png"
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert f'src="{png.name}"' in report.html


def test_every_table_has_the_baselines_beside_the_model(report):
    tables = re.findall(r"<table class=scores>.*?</table>", report.html)
    assert len(tables) == 1 + 4   # the organelle means, one per-modality table per organelle
    for table in tables:
        for source in ("model", "baseline: constant 0", "baseline: TL input"):
            assert f"<td>{source}</td>" in table
    # the constant baseline's PCC is exactly 0 (metrics/baselines.py): the rows hold real scores
    assert re.search(r"nucleus \(n=3\)</td><td>baseline: constant 0</td><td>[0-9.]+</td><td>0.0000</td>",
                     report.html)


def test_each_metric_is_defined_with_its_direction(report):
    for metric in ALL_METRICS:
        better = "lower" if metric in ("MAE", "E_dist", "C_dist") else "higher"
        assert f"{metric} ({better} is better): {METRIC_DEFINITIONS[metric]}" in report.text


def test_provenance_names_the_weights_commit_date_and_settings(report):
    digest = hashlib.sha256((DEFAULT_WEIGHTS / "manifest.json").read_bytes()).hexdigest()
    assert f"manifest.json sha256 {digest}" in report.text
    assert f"code commit {git_commit()}" in report.text
    assert re.search(r"report date \(UTC\) \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", report.text)
    assert "setting: tta none" in report.text and "setting: overlap 0.5" in report.text


def test_git_commit_is_unknown_outside_a_checkout(tmp_path):
    assert git_commit(tmp_path) == "unknown"


def test_the_planted_defect_is_listed_and_none_reads_none(report):
    findings = re.search(r"<ul id='findings'>(.*?)</ul>", report.html, re.S)[1]
    organelle, name = SATURATED
    assert re.search(rf"{organelle}/{re.escape(name)} \[[^\]]+\]: saturation", findings)
    assert "<li>none</li>" in defects_html([], "")


def test_bad_arguments_are_one_line_errors(report, tmp_path, capsys):
    rc = main(["report", "--pred", str(tmp_path / "none"), "--gt", str(STUDIES), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and "--pred" in err and "not a folder" in err
    rc = main(["report", "--pred", str(report.pred), "--gt", str(STUDIES), "--out", str(tmp_path / "r"),
               "--weights", str(tmp_path / "nope"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and "--weights" in err and "not a folder" in err
    bad = tmp_path / "pred"
    shutil.copytree(report.pred, bad)
    (bad / "run_info.json").write_text("[1, 2]")
    rc = main(["report", "--pred", str(bad), "--gt", str(STUDIES), "--input", str(report.inputs),
               "--out", str(tmp_path / "r"), "--workers", "1", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.count("\n") == 0 and "run_info.json: expected a JSON object" in err


def test_focus_plot_has_labels_counts_and_no_lines():
    points = [("BF", 0, {"PCC": 0.9, "SSIM": 0.5}), ("BF", 0, {"PCC": 0.8, "SSIM": 0.4}),
              ("PC", 3, {"PCC": 0.6, "SSIM": 0.3})]
    fig = focus_figure("tubulin", points, {"constant": [(0, {"PCC": 0.0, "SSIM": 0.7}), (3, {"PCC": 0.0, "SSIM": 0.6})]})
    axes = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_ylabel() for ax in axes] == ["PCC (higher is better)", "SSIM (higher is better)"]
    for ax in axes:
        joined = [line for line in ax.get_lines() if line.get_linestyle() not in ("None", "none", "")
                  and len(line.get_xdata()) > 1]
        assert joined == []
        counts = sorted(t.get_text() for t in ax.texts)
        assert counts == ["n=1", "n=2"]
    assert focus_figure("tubulin", [("BF", None, {"PCC": 1.0, "SSIM": 1.0})]) is None


def test_example_montage_has_scale_and_colour_bars_and_titles_off_the_images():
    rng = np.random.default_rng(0)
    image = lambda: Panel(rng.random((200, 300)), 0.1)  # noqa: E731   30 µm wide
    rows = [ExampleRow(f"row {i}\nscores", image(), image(), image()) for i in range(2)]
    fig = example_figure("nucleus", rows)
    fig.canvas.draw()
    bars = [a for ax in fig.axes for a in ax.artists if "SizeBar" in type(a).__name__]
    assert len(bars) == 8   # every panel of both rows
    assert scale_bar_um(30.0) == 5
    colourbars = [ax for ax in fig.axes if not ax.images and ax.get_xlabel()]
    assert sorted(ax.get_xlabel() for ax in colourbars) == ["absolute error (normalised)"] + ["normalised intensity"] * 3
    titled = [ax for ax in fig.axes if ax.images and ax.get_ylabel()]
    assert [ax.get_ylabel() for ax in titled] == ["row 0\nscores", "row 1\nscores"]
    for ax in titled:
        assert ax.yaxis.label.get_window_extent().x1 <= ax.get_window_extent().x0, "a row title overlaps its image"


def test_spread_maps_get_their_own_column_and_colour_bar():
    rng = np.random.default_rng(1)
    image = lambda: Panel(rng.random((40, 60)), 0.2)  # noqa: E731
    rows = [ExampleRow("with spread", image(), image(), image(), Panel(rng.random((40, 60)) * 0.1, 0.2)),
            ExampleRow("without", image(), image(), image(), None)]
    fig = example_figure("tubulin", rows)
    fig.canvas.draw()
    assert [ax.get_title() for ax in fig.axes[:5]][-1] == "spread over TTA views / models"
    labels = [ax.get_xlabel() for ax in fig.axes if not ax.images and ax.get_xlabel()]
    assert "std over views ([0, 1] prediction scale)" in labels
    assert "not available" in [t.get_text() for t in fig.axes[9].texts]     # the row without a map says so


def test_pick_examples_labels_two_images_best_and_worst():
    assert [p[0] for p in pick_examples([("a", 0.9), ("b", 0.1)])] == ["best", "worst"]
    assert [p[0] for p in pick_examples([("a", 0.9), ("b", 0.5), ("c", 0.1)])] == ["best", "median", "worst"]


@pytest.mark.skipif(find_chromium() is None, reason="no chromium binary on PATH (apt-get install chromium)")
def test_page_in_headless_chromium(report):
    dom = dump_dom(report.out / "index.html")
    loaded, total = images_loaded(dom)
    assert total == 8 and loaded == total
    for src in re.findall(r'<img src="([^"]+)"', dom):
        assert (report.out / src).is_file()
    assert "Means per organelle" in dom and "<td>baseline: TL input</td>" in dom
    shot = screenshot(report.out / "index.html", report.root / "shot.png", (1000, 1400))
    from PIL import Image
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("L"))
    assert pixels.shape == (1400, 1000)
    assert pixels.std() > 10 and (pixels < 128).mean() > 0.01   # text, tables and images, not a blank page


def test_browser_check_says_when_there_is_no_chromium(monkeypatch, tmp_path):
    monkeypatch.setenv("CHROMIUM", "no-such-browser")
    assert find_chromium() is None
    with pytest.raises(FileNotFoundError, match="no chromium binary"):
        dump_dom(tmp_path / "index.html")
