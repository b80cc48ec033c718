"""metrics.json layout (keys, nesting, NaN, empty organelles) and the challenge's ranking."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from metrics.aggregate import build_metrics, read_metrics_json, write_metrics_json
from metrics.ranking import rank_criterion, rank_metrics
from metrics.table import format_comparison, format_summary


def _nuc(v: float) -> dict:
    return {"PCC": v, "SSIM": v / 2, "MAE": 1 - v, "E_dist": 10 * (1 - v), "C_dist": (1 - v) / 3}


def _results() -> list[dict]:
    return [
        {"image_name": "a.tiff", "nucleus": _nuc(0.8), "mitochondria": {}, "tubulin": {"PCC": 0.5, "SSIM": 0.4},
         "actin": {}},
        {"image_name": "b.tiff", "nucleus": _nuc(0.6), "mitochondria": _nuc(0.3), "tubulin": {}, "actin": {}},
        {"image_name": "c.tiff", "nucleus": _nuc(0.4), "mitochondria": {}, "tubulin": {}, "actin": {}},
    ]


MODALITY = {"a.tiff": "BF", "b.tiff": "BF", "c.tiff": "PC"}
DEVIATION = {"a.tiff": 0, "b.tiff": 2, "c.tiff": 0}


def test_layout_and_means():
    m = build_metrics(_results(), MODALITY, DEVIATION)
    assert list(m) == ["results", "agregate", "transmitted_light", "z_deviation"]
    # agregate: only organelles with a score; the challenge's metric names per organelle
    assert set(m["agregate"]) == {"nucleus", "mitochondria", "tubulin"}
    assert list(m["agregate"]["nucleus"]) == ["MAE", "PCC", "SSIM", "E_dist", "C_dist"]
    assert list(m["agregate"]["tubulin"]) == ["PCC", "SSIM"]
    assert m["agregate"]["nucleus"]["PCC"] == pytest.approx(np.mean([0.8, 0.6, 0.4]))
    assert m["agregate"]["mitochondria"]["E_dist"] == pytest.approx(7.0)
    # transmitted_light: every modality x organelle x metric, NaN where none
    assert list(m["transmitted_light"]) == ["BF", "DIC", "PC"]
    for tl in ("BF", "DIC", "PC"):
        assert list(m["transmitted_light"][tl]) == ["nucleus", "mitochondria", "actin", "tubulin"]
    assert m["transmitted_light"]["BF"]["nucleus"]["PCC"] == pytest.approx(0.7)
    assert m["transmitted_light"]["PC"]["nucleus"]["PCC"] == pytest.approx(0.4)
    assert all(math.isnan(v) for v in m["transmitted_light"]["DIC"]["nucleus"].values())
    assert math.isnan(m["transmitted_light"]["PC"]["tubulin"]["SSIM"])
    # z_deviation: organelle -> deviation -> metric
    assert m["z_deviation"]["nucleus"][0]["PCC"] == pytest.approx(0.6)
    assert m["z_deviation"]["nucleus"][2]["PCC"] == pytest.approx(0.6)
    assert list(m["z_deviation"]["mitochondria"]) == [2]
    assert "actin" not in m["z_deviation"]


def test_json_roundtrip_keeps_nan_and_empty_organelles(tmp_path):
    m = build_metrics(_results(), MODALITY, DEVIATION)
    path = write_metrics_json(tmp_path / "metrics.json", m)
    text = path.read_text()
    assert "NaN" in text                      # json.dumps' token, as the challenge writes it
    raw = json.loads(text)
    assert raw["results"][0]["actin"] == {} and raw["results"][2]["mitochondria"] == {}
    assert set(raw["z_deviation"]["nucleus"]) == {"0", "2"}   # string keys in the file
    back = read_metrics_json(path)
    assert set(back["z_deviation"]["nucleus"]) == {0, 2}
    assert back["agregate"] == m["agregate"]


def test_unknown_focus_counts_only_in_agregate():
    m = build_metrics(_results(), {"a.tiff": "BF"}, {"a.tiff": 1})
    assert m["agregate"]["nucleus"]["PCC"] == pytest.approx(0.6)
    assert m["transmitted_light"]["BF"]["nucleus"]["PCC"] == pytest.approx(0.8)
    assert m["z_deviation"]["nucleus"] == {1: _nuc(0.8)}


def test_tables_show_every_organelle():
    m = build_metrics(_results(), MODALITY, DEVIATION)
    text = format_summary(m, title="t")
    for word in ("nucleus", "mitochondria", "tubulin", "actin", "|dz|=2", "PC", "0.6000"):
        assert word in text
    assert "model" in format_comparison({"model": m, "constant": m})


def _zdev(values: dict[tuple[str, int, str], float]) -> dict:
    z: dict = {}
    for (organelle, dev, metric), v in values.items():
        z.setdefault(organelle, {}).setdefault(dev, {})[metric] = v
    return {"results": [], "agregate": {}, "z_deviation": z}


def test_rank_criterion_directions_ties_and_nan():
    assert list(rank_criterion([0.2, 0.9, 0.5], "PCC")) == [3, 1, 2]      # higher is better
    assert list(rank_criterion([0.2, 0.9, 0.5], "MAE")) == [1, 3, 2]      # lower is better
    assert list(rank_criterion([0.5, 0.5, 0.1], "SSIM")) == [1, 1, 3]     # ties share the best rank
    assert list(rank_criterion([math.nan, 0.1, 0.3], "PCC")) == [3, 2, 1]  # NaN last


def test_ranking_on_a_constructed_example():
    # A is best on PCC, worst on MAE; B is second on both; C has no tubulin at all.
    a = _zdev({("nucleus", 0, "PCC"): 0.9, ("nucleus", 0, "MAE"): 0.30, ("tubulin", 1, "PCC"): 0.7})
    b = _zdev({("nucleus", 0, "PCC"): 0.8, ("nucleus", 0, "MAE"): 0.10, ("tubulin", 1, "PCC"): 0.6})
    c = _zdev({("nucleus", 0, "PCC"): 0.1, ("nucleus", 0, "MAE"): 0.05})
    board = rank_metrics({"A": a, "B": b, "C": c})
    assert board.criteria == [("nucleus", 0, "MAE"), ("nucleus", 0, "PCC"), ("tubulin", 1, "PCC")]
    ranks = {e.name: e.ranks for e in board.entries}
    assert ranks["A"] == {("nucleus", 0, "MAE"): 3, ("nucleus", 0, "PCC"): 1, ("tubulin", 1, "PCC"): 1}
    assert ranks["B"] == {("nucleus", 0, "MAE"): 2, ("nucleus", 0, "PCC"): 2, ("tubulin", 1, "PCC"): 2}
    assert ranks["C"] == {("nucleus", 0, "MAE"): 1, ("nucleus", 0, "PCC"): 3, ("tubulin", 1, "PCC"): 3}
    assert [(e.name, e.position) for e in board.entries] == [("A", 1), ("B", 2), ("C", 3)]
    assert board.entries[0].average_rank == pytest.approx(5 / 3)
    assert board.entries[1].average_rank == pytest.approx(2.0)
    assert board.entries[2].average_rank == pytest.approx(7 / 3)
    tied = rank_metrics({"X": a, "Y": a})
    assert [(e.name, e.position, e.average_rank) for e in tied.entries] == [("X", 1, 1.0), ("Y", 1, 1.0)]
    js = board.to_json()
    assert js["leaderboard"][0]["ranks"]["nucleus/0/PCC"] == 1
