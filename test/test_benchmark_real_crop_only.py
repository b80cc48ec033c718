"""`python -m benchmarks.real --crop-only`: the shipped weights on the real Light My Cells crop
alone (the check for a bright-field route change), its summary and its printed table."""
import json

import pytest

from benchmarks.real import data
from benchmarks.real.__main__ import LMC_SENSITIVITY_UM, main
from metrics.baselines import baseline_arrays
from metrics.challenge import score_image


def test_crop_only_scores_the_crop_at_each_assumed_size_and_skips_the_isl_field(tmp_path, capsys):
    if (missing := data.available()) is not None:
        pytest.skip(missing)
    assert main(["--crop-only", "--tta", "none", "--work", str(tmp_path),
                 "--pictures", str(tmp_path / "crop.png")]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert "isl_regions" not in summary and "learnability" not in summary
    crop = data.lmc_crop()
    rows = summary["zero_shot"]
    assert [r["pixel_size_um"] for r in rows] == [crop.pixel_size_um, *LMC_SENSITIVITY_UM]
    assert all(r["image"] == crop.name and len(r["slices"]) == 1 for r in rows)
    scores = rows[0]["slices"][0]
    assert set(scores) == {"shipped", "constant", "tl_input"}
    assert -1 <= scores["shipped"]["PCC"] <= 1 and scores["shipped"]["MAE"] >= 0
    # The TL-input baseline is the scorer's number for the crop's own TL against its target.
    tl_input = score_image(baseline_arrays(crop.tl[0])["tl_input"], crop.nucleus, "nucleus")
    assert scores["tl_input"]["PCC"] == pytest.approx(tl_input["PCC"], abs=1e-9)
    printed = capsys.readouterr().out
    assert "Light My Cells crop" in printed and "ISL" not in printed
    assert (tmp_path / "crop.png").stat().st_size > 0
