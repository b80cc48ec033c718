"""Evaluation sets carry a marker that training (and, for test sets, calibration) refuses."""
from __future__ import annotations

from pathlib import Path

import pytest

from preprocessing.evaluation_sets import MARKER, EvaluationSetError, check_usable, markers_under, write_marker
from training.dataset import load_fovs
from training.toy_studies import write_toy_studies

STUDIES = Path(__file__).parent / "studies"


def _marked(tmp_path: Path, purpose: str) -> Path:
    root = write_toy_studies(tmp_path / purpose, studies=2, fovs_per_study=2, size=32, z_slices=2)
    write_marker(root, purpose, 1, "test")
    for study in root.glob("Study_*"):
        write_marker(study, purpose, 1, "test")
    return root


def test_training_refuses_every_evaluation_set(tmp_path):
    for purpose in ("development", "test", "smoke"):
        root = _marked(tmp_path, purpose)
        with pytest.raises(EvaluationSetError, match=purpose):
            load_fovs(root)
        with pytest.raises(EvaluationSetError):   # one of its studies, given directly
            load_fovs(next(root.glob("Study_*")))


def test_calibration_reads_only_the_development_set(tmp_path):
    assert load_fovs(_marked(tmp_path, "development"), use="calibration")
    for purpose in ("test", "smoke"):
        with pytest.raises(EvaluationSetError, match="calibration may read only"):
            load_fovs(_marked(tmp_path, purpose), use="calibration")


def test_a_marker_inside_one_study_is_enough(tmp_path):
    root = write_toy_studies(tmp_path, studies=2, fovs_per_study=2, size=32, z_slices=2)
    write_marker(root / "Study_2", "test", 5, "test")
    with pytest.raises(EvaluationSetError, match="Study_2"):
        load_fovs(root)


def test_unmarked_data_is_ordinary_and_a_damaged_marker_counts_as_test(tmp_path):
    root = write_toy_studies(tmp_path, studies=1, fovs_per_study=2, size=32, z_slices=2)
    assert markers_under(root) == {}
    assert load_fovs(root)
    (root / MARKER).write_text("{not json")
    with pytest.raises(EvaluationSetError, match="test evaluation set"):
        check_usable(root, "calibration")


def test_the_committed_smoke_set_is_refused():
    with pytest.raises(EvaluationSetError, match="smoke"):
        load_fovs(STUDIES)
    with pytest.raises(EvaluationSetError):
        load_fovs(STUDIES, use="calibration")


def test_unknown_use_and_purpose_are_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown use"):
        check_usable(tmp_path, "inference")
    with pytest.raises(ValueError, match="unknown evaluation purpose"):
        write_marker(tmp_path, "holdout", 1, "test")
