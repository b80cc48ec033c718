"""synthetic/montage.py: the variety view, the scale bars and titles that stay off the images."""
from __future__ import annotations

import math

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import pytest
from matplotlib.patches import Rectangle

from preprocessing.ome_io import ORGANELLES
from synthetic.montage import (
    SCALE_BAR_FRACTION,
    focus_figure,
    main,
    render,
    row_label,
    scale_bar_um,
    variety_figure,
    variety_rows,
)


@pytest.mark.parametrize("pixel_nm, width_px", [(43, 96), (43, 512), (60, 512), (100, 512), (110, 2048),
                                                (162, 1024), (200, 300), (325, 512), (454, 512), (650, 512),
                                                (650, 2048), (100, 150), (65, 240)])
def test_scale_bar_is_a_round_length_of_15_to_30_percent_of_the_width(pixel_nm, width_px):
    width_um = width_px * pixel_nm / 1000
    length = scale_bar_um(width_um)
    low, high = SCALE_BAR_FRACTION
    assert low * width_um <= length * (1 + 1e-9) and length <= high * width_um * (1 + 1e-9)
    mantissa = length / 10 ** math.floor(math.log10(length))
    assert any(math.isclose(mantissa, m) for m in (1, 2, 2.5, 5)), length


def test_scale_bar_prefers_1_2_5_and_refuses_nonsense():
    assert scale_bar_um(512 * 0.1) == 10
    assert scale_bar_um(512 * 0.65) == 50
    assert scale_bar_um(15.0) == 2.5      # no 1-2-5 length lies in 2.25-4.5 µm
    with pytest.raises(ValueError):
        scale_bar_um(0.0)


def _intersects(a, b, tol: float = 0.5) -> bool:
    return a.x0 + tol < b.x1 and b.x0 + tol < a.x1 and a.y0 + tol < b.y1 and b.y0 + tol < a.y1


def assert_readable(fig) -> int:
    """Titles, row labels and the suptitle lie inside the figure and overlap no image and no other
    title; every image has one scale bar, 15-30 % of its width. Returns the number of image panels."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    imaged = [ax for ax in fig.axes if ax.images]
    images = [(ax, ax.images[0].get_window_extent(renderer)) for ax in imaged]
    texts = [fig._suptitle] + [t for ax in fig.axes for t in (ax.title, ax.yaxis.label)]
    texts = [t for t in texts if t is not None and t.get_text()]
    extents = [t.get_window_extent(renderer) for t in texts]
    page = fig.bbox
    for text, extent in zip(texts, extents):
        assert page.x0 - 0.5 <= extent.x0 and extent.x1 <= page.x1 + 0.5, f"{text.get_text()!r} is cut off"
        assert page.y0 - 0.5 <= extent.y0 and extent.y1 <= page.y1 + 0.5, f"{text.get_text()!r} is cut off"
        for _, image in images:
            assert not _intersects(extent, image), f"{text.get_text()!r} overlaps an image"
    for i in range(len(extents)):
        for j in range(i + 1, len(extents)):
            assert not _intersects(extents[i], extents[j]), (texts[i].get_text(), texts[j].get_text())
    for ax in imaged:
        bars = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_gid() == "scale_bar"]
        labels = [t.get_text() for t in ax.texts if t.get_gid() == "scale_bar_label"]
        assert len(bars) == 1 and len(labels) == 1
        width_px = ax.images[0].get_array().shape[1]
        low, high = SCALE_BAR_FRACTION   # data coordinates are pixels: the bar's width is in pixels
        assert low * width_px * (1 - 1e-6) <= bars[0].get_width() <= high * width_px * (1 + 1e-6)
        assert labels[0].endswith(" µm")
    return len(imaged)


@pytest.fixture(scope="module")
def lmc_rows():
    return variety_rows(seed=0, size=96, studies=4, profile="lmc")


def test_variety_rows_show_different_studies(lmc_rows):
    studies = [row.study for row in lmc_rows]
    assert [s.number for s in studies] == [1, 2, 3, 4]
    assert len({s.pixel_size_um for s in studies}) >= 2
    assert len({s.modality for s in studies}) >= 2
    for row in lmc_rows:
        assert row.fov.tl.shape == (1, 96, 96)                      # bounded by --size, in focus
        assert set(row.fov.organelles) == set(row.study.organelles)
        assert min(row.full_shape) >= 512                           # the study's real image size
        label = row_label(row)
        assert row.study.modality in label and f"{row.study.pixel_size_um * 1000:.0f} nm/px" in label
        assert f"{row.study.optics.na_objective:.2f}" in label and "×" in label and "nuclei" in label
    assert len({row_label(r) for r in lmc_rows}) == 4


def test_variety_figure_is_readable_and_has_a_bar_per_image(monkeypatch, lmc_rows):
    import synthetic.montage as montage

    monkeypatch.setattr(montage, "variety_rows", lambda *a, **k: lmc_rows)
    fig = variety_figure(seed=0, size=96, studies=4, profile="lmc")
    try:
        assert len(fig.axes) == 4 * (1 + len(ORGANELLES))
        n_images = assert_readable(fig)
        assert n_images == sum(1 + len(r.study.organelles) for r in lmc_rows)
        blanks = [t.get_text() for ax in fig.axes if not ax.images for t in ax.texts]
        assert blanks and all("not labelled" in t for t in blanks)
        # Each row's bar is its own: the bar's length in µm follows that row's pixel size.
        for r, row in enumerate(lmc_rows):
            ax = fig.axes[r * (1 + len(ORGANELLES))]
            label = next(t.get_text() for t in ax.texts if t.get_gid() == "scale_bar_label")
            assert float(label.split()[0]) == scale_bar_um(96 * row.study.pixel_size_um)
    finally:
        plt.close(fig)


def test_focus_view_is_readable():
    fig = focus_figure(seed=2, size=96, deviation=3)
    try:
        assert assert_readable(fig) == 6 + len(ORGANELLES)
    finally:
        plt.close(fig)


def test_command_line_writes_the_variety_view_of_the_expected_size(tmp_path, capsys):
    out = tmp_path / "m.png"
    assert main(["--out", str(out), "--size", "64", "--studies", "2", "--profile", "low-mag", "--seed", "3"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    fig = variety_figure(seed=3, size=64, studies=2, profile="low-mag")
    expected = tuple(round(v) for v in fig.get_size_inches()[::-1] * fig.dpi)
    plt.close(fig)
    image = mpimg.imread(out)
    assert image.shape[:2] == expected
    assert image[..., :3].std() > 0.05
    # render's own default stays the focus view (existing callers); studies=N is the variety view.
    assert mpimg.imread(render(tmp_path / "f.png", seed=2, size=64, deviation=2)).shape[1] > 1000
