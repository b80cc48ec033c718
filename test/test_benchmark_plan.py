"""The benchmark's development and test sets: composition rules, determinism, disjoint seeds."""
from __future__ import annotations

from collections import Counter

import pytest

from benchmarks.heldout.plan import PURPOSES, plan_set, quick_subset
from benchmarks.heldout.run import folder_name, resolve, sibling_predictions
from preprocessing.ome_io import ORGANELLES
from synthetic import SimulationConfig, generate_studies
from synthetic.__main__ import main as synthetic_cli
from synthetic.seeds import BENCHMARK_DEV_SEED, BENCHMARK_TEST_SEED, HELDOUT_SEED


@pytest.fixture(scope="module", params=PURPOSES)
def plan(request):
    return plan_set(request.param)


def _images(plan):
    return [(s, sl) for s in plan.studies for sl in s.slices]


def test_each_set_answers_every_question_the_report_asks(plan):
    images = _images(plan)
    assert len(images) >= 150 and len(plan.studies) >= 60
    assert {s.modality for s, _ in images} == {"BF", "PC", "DIC"}
    for modality in ("BF", "PC", "DIC"):
        assert {sl.deviation for s, sl in images if s.modality == modality} == set(range(6))
    for organelle in ORGANELLES:
        assert sum(organelle in s.organelles for s, _ in images) >= 30, organelle
    actin = Counter(s.modality for s, _ in images if "actin" in s.organelles)
    assert actin["BF"] > 0 and actin["PC"] > 0 and actin["DIC"] == 0
    assert all(1 <= len(s.organelles) <= 3 for s in plan.studies)
    shapes = {s.shape for s in plan.studies}
    assert (512, 512) in shapes and any(min(s) >= 2044 for s in shapes) and any(h != w for h, w in shapes)
    pixels = {s.acquisition.pixel_size_nm for s in plan.studies}
    assert min(pixels) <= 65 and max(pixels) >= 162


def test_slices_exist_in_the_stack_and_have_the_planned_deviation(plan):
    for study in plan.studies:
        zs = [sl.z for sl in study.slices]
        assert len(set(zs)) == len(zs)
        for sl in study.slices:
            assert 0 <= sl.z < 11 and abs(sl.z - study.best_z) == sl.deviation


def test_plans_are_deterministic_and_the_two_sets_disjoint():
    dev, test = plan_set("development"), plan_set("test")
    assert plan_set("development").fingerprint == dev.fingerprint != test.fingerprint
    assert dev.seed == BENCHMARK_DEV_SEED and test.seed == BENCHMARK_TEST_SEED
    assert not {s.number for s in dev.studies} & {s.number for s in test.studies}
    with pytest.raises(ValueError, match="unknown benchmark set"):
        plan_set("train")


def test_quick_subset_is_small_and_covers_every_group():
    plan = plan_set("development")
    numbers = quick_subset(plan)
    chosen = [s for s in plan.studies if s.number in numbers]
    images = [(s, sl) for s in chosen for sl in s.slices]
    assert 25 <= len(images) <= 40
    assert all(any(o in s.organelles for s, _ in images) for o in ORGANELLES)
    assert {s.modality for s in chosen} == {"BF", "PC", "DIC"}
    assert {sl.deviation for _, sl in images} == set(range(6))
    assert quick_subset(plan_set("development")) == numbers


def test_a_one_modality_run_takes_exactly_that_modalitys_studies_of_its_set():
    plan = plan_set("development")
    _, bf = resolve("development", "BF")
    assert bf == tuple(s.number for s in plan.studies if s.modality == "BF") and len(bf) == 26
    _, quick_pc = resolve("quick", "PC")
    _, quick = resolve("quick")
    modality_of = {s.number: s.modality for s in plan.studies}
    assert set(quick_pc) == {n for n in quick if modality_of[n] == "PC"} and quick_pc
    assert resolve("test", "DIC")[0].purpose == "test"
    with pytest.raises(ValueError, match="unknown modality 'XX'"):
        resolve("development", "XX")
    assert folder_name("development", "BF") == "development-BF" and folder_name("test") == "test"


def test_runs_of_one_plan_lend_each_other_predictions_and_never_across_plans(tmp_path):
    lenders = {p.parent.name for p in sibling_predictions(tmp_path, "development", "BF")}
    assert lenders == {"quick", "development", "quick-BF", "quick-PC", "quick-DIC",
                       "development-PC", "development-DIC"}
    assert {p.parent.name for p in sibling_predictions(tmp_path, "test", None)} == {"test-BF", "test-PC", "test-DIC"}


@pytest.mark.parametrize("seed", [HELDOUT_SEED, BENCHMARK_DEV_SEED, BENCHMARK_TEST_SEED])
def test_training_data_cannot_be_drawn_with_an_evaluation_seed(tmp_path, capsys, seed):
    with pytest.raises(ValueError, match="reserved"):
        generate_studies(tmp_path, SimulationConfig(seed=seed, quiet=True))
    with pytest.raises(SystemExit):
        synthetic_cli(["--out", str(tmp_path), "--seed", str(seed)])
    assert "reserved" in capsys.readouterr().err
