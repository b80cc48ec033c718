"""The real-image benchmark's ISL regions: the whole field's predictions scored again on the
development part (left three quarters) and the report part (right quarter), on the real pair."""
import numpy as np
import pytest

from benchmarks.real import data
from benchmarks.real.__main__ import zero_shot_table
from benchmarks.real.zero_shot import zero_shot_regions
from metrics.challenge import score_image


@pytest.fixture(scope="module")
def isl():
    if (missing := data.available()) is not None:
        pytest.skip(missing)
    return data.isl()


def test_regions_split_the_field_at_the_learnability_column(isl):
    width = isl.nucleus.shape[1]
    covered = np.zeros(width, int)
    for columns in data.ISL_REGIONS.values():
        covered[columns] += 1
    assert (covered == 1).all() and data.ISL_REGIONS["right quarter (report)"].start == data.ISL_SPLIT_COLUMN


def test_each_region_scores_the_crop_of_the_whole_field_prediction(isl):
    # Stand-in predictions of two slices: the target itself (perfect), and its left-right mirror.
    perfect, mirrored = isl.nucleus.astype(np.uint16), isl.nucleus[:, ::-1].astype(np.uint16)
    result = {"route": "stand-in", "predictions": [perfect, mirrored]}
    parts = zero_shot_regions(result, data.isl, data.ISL_REGIONS)
    assert [p["image"].split(", ")[-1] for p in parts] == list(data.ISL_REGIONS)
    for part, columns in zip(parts, data.ISL_REGIONS.values()):
        assert len(part["slices"]) == 2 and part["route"] == "stand-in"
        assert part["slices"][0]["shipped"]["PCC"] == pytest.approx(1.0, abs=1e-6)
        # The mirrored field cropped to the region, scored against the region's own target.
        expected = score_image(mirrored[:, columns], isl.nucleus[:, columns], "nucleus")
        assert part["slices"][1]["shipped"]["PCC"] == pytest.approx(expected["PCC"], abs=1e-9)
        assert set(part["slices"][0]) == {"shipped", "constant", "tl_input"}
    table = zero_shot_table(parts)
    assert "left three quarters (development)" in table and "right quarter (report)" in table
    assert table.count("\n") == 2 + 3 * len(parts) - 1
