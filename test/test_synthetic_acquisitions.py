"""The table of real acquisitions matches the organizers' REMBI sheet."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from synthetic.acquisitions import REAL_ACQUISITIONS, acquisitions_of

SHEET = Path(__file__).resolve().parents[1].parent / "shared/real/lmc_training_doc/rembi_studies.csv"
# The sheet's words for the TL method; "BF" must be checked last ("DIC (confocal), fluorescence").
_METHOD = (("DIC", "DIC"), ("Phase", "PC"), ("Bright", "BF"), ("BF", "BF"))


def _rows() -> dict[int, dict]:
    if not SHEET.is_file():
        pytest.skip(f"{SHEET} is absent (../shared/real is not beside the repository)")
    with open(SHEET, newline="", encoding="utf-8") as handle:
        return {int(r["study"].split()[-1]): r for r in csv.DictReader(handle)}


def test_one_entry_per_real_study_with_its_modality_and_pixel_size():
    rows = _rows()
    assert sorted(a.study for a in REAL_ACQUISITIONS) == sorted(rows) == list(range(1, 31))
    for a in REAL_ACQUISITIONS:
        row = rows[a.study]
        method = next(m for word, m in _METHOD if word.lower() in row["imaging_method"].lower())
        assert a.modality == method, a.study
        assert a.pixel_size_nm == float(row["pixel_size_nm"]), a.study


def test_stated_apertures_match_the_sheet():
    rows = _rows()
    for a in REAL_ACQUISITIONS:
        stated = [float(v.replace(",", ".")) for v in
                  re.findall(r"(?:/|NA\s?)(\d[,.]\d+)", rows[a.study]["imaging_instrument"])]
        if a.na_assumed:
            assert not stated, f"study {a.study}: the sheet states an NA now ({stated})"
        else:
            assert stated and a.na == stated[0], (a.study, stated)


def test_every_modality_has_studies_and_the_real_pixel_range():
    sizes = {a.pixel_size_nm for a in REAL_ACQUISITIONS}
    assert sizes == {60, 65, 79, 100, 102, 103, 106, 110, 162}
    assert [len(acquisitions_of(m)) for m in ("BF", "PC", "DIC")] == [10, 8, 12]
    with pytest.raises(ValueError):
        acquisitions_of("confocal")
