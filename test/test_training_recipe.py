"""The shipped-weights recipe (weights/recipe.toml) and its runner (training/recipe.py): the plan,
the check of weights/ against it, resuming where a run stopped, and one-line mistakes."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from training import recipe as recipe_cli
from training.recipe import RecipeError, load_recipe, status
from training.recipe_check import check_weights
from training.toy_studies import write_toy_studies

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "weights" / "recipe.toml"
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_shipped_recipe_plans_every_stage_of_the_weights(capsys):
    recipe = load_recipe(SHIPPED)
    names = [s.name for s in recipe.stages]
    for expected in ("data-bf", "store", "p2p-bf", "p2p-dic-ft3", "calibrate-p2p-pc", "vq-nucleus-ft3",
                     "vq-actin", "calibrate-vq-tubulin", "export-vq-actin", "routes-actin-pc"):
        assert expected in names
    assert "routes-actin-dic" not in names                      # nothing to score DIC actin on
    assert recipe_cli.main([str(SHIPPED), "--dry-run", "--set", "DATA=/elsewhere"]) == 0
    plan = capsys.readouterr().out
    assert f"{len(names)} stage(s)" in plan and "--out /elsewhere --studies 24 --seed 11" in plan
    assert "python -m training.train runs/recipe_state/p2p-bf.toml --resume" in plan


def test_the_shipped_weights_match_their_recipe():
    assert check_weights(load_recipe(SHIPPED)) == []


def test_a_recipe_that_differs_from_the_weights_names_the_stage(tmp_path):
    text = SHIPPED.read_text().replace('route = ["BF:actin"]', 'route = ["BF:actin,PC:actin"]')
    before = 'organelles = ["{each}"]\npreset = "small"\npixel_size_um = 0.2'
    assert before in text
    text = text.replace(before, before.replace("0.2", "0.25"))
    changed = tmp_path / "recipe.toml"
    changed.write_text(text)
    problems = check_weights(load_recipe(changed))
    assert "route PC/actin: the recipe's exports give ['vq_actin_small'], " in problems[0]
    assert any(p.startswith("stage export-vq-tubulin (vq_tubulin_small.pt): pixel_size_um is 0.2, "
                            "the recipe (stage vq-tubulin) makes 0.25") for p in problems)


def _toy_recipe(tmp_path: Path, steps: int = 2) -> Path:
    data = write_toy_studies(tmp_path / "data", studies=2, fovs_per_study=2, size=32, z_slices=1, modality="PC")
    path = tmp_path / "recipe.toml"
    path.write_text(f'''state = "{tmp_path / 'state'}"
[vars]
DATA = "{data}"
RUNS = "{tmp_path / 'runs'}"
WEIGHTS = "{tmp_path / 'weights'}"
STEPS = {steps}

[[stage]]
name = "copy-{{each}}"
foreach = ["a", "b"]
module = "training.recipe_tools"
args = {{ copy_folder = true, source = "{{DATA}}", to = "{{RUNS}}/copy_{{each}}" }}

[[stage]]
name = "p2p"
[stage.train]
family = "pix2pix"
data = "{{DATA}}"
out = "{{RUNS}}/p2p"
preset = "tiny"
steps = "{{STEPS}}"
batch_size = 2
crop = 32
val_items = 1
val_crop = 32
progress = false
[stage.train.loss]
disc_preset = "tiny"

[[stage]]
name = "export"
module = "training.export"
args = {{ run = "{{RUNS}}/p2p", name = "toy", weights = "{{WEIGHTS}}", route = ["*:*"], no_calibration = true }}
''')
    return path


def test_a_recipe_runs_resumes_and_reruns_only_what_changed(tmp_path, capsys):
    path = _toy_recipe(tmp_path)
    assert recipe_cli.main([str(path)]) == 0
    assert (tmp_path / "weights" / "toy.pt").is_file() and (tmp_path / "runs" / "copy_b").is_dir()
    recipe = load_recipe(path)
    assert [status(recipe, s) for s in recipe.stages] == ["done"] * 4
    assert check_weights(recipe) == []
    capsys.readouterr()
    assert recipe_cli.main([str(path)]) == 0                         # nothing left to do
    assert capsys.readouterr().out.count("[done]") == 4
    edited = load_recipe(path, {"STEPS": "3"})                       # a changed stage is pending again, alone
    assert [status(edited, s) for s in edited.stages] == ["done", "done", "changed", "done"]


def test_a_failed_stage_stops_the_recipe_and_the_next_run_resumes_there(tmp_path, capsys):
    path = _toy_recipe(tmp_path)
    shutil.rmtree(tmp_path / "data")                                  # the copies and the run cannot work
    assert recipe_cli.main([str(path)]) == 1
    assert "stage copy-a failed" in capsys.readouterr().err
    assert not (tmp_path / "state" / "p2p.done").exists()


@pytest.mark.parametrize("body, message", [
    ('[[stage]]\nname = "x"\nmodule = "synthetic"\nargs = { out = "{NOPE}" }\n', "unknown variable {NOPE}"),
    ('[[stage]]\nname = "x"\nmodule = "a"\n[[stage]]\nname = "x"\nmodule = "b"\n', "a second stage named 'x'"),
    ('[[stage]]\nname = "x"\n', "either module (+ args) or train"),
    ('[[stage]]\nname = "t"\n[stage.train]\nfamily = "pix2pix"\nout = "o"\nstepz = 3\n', "unknown setting 'stepz'"),
    ('[[stage]]\nname = "t"\n[stage.train]\nfamily = "unet"\nout = "o"\n', "train.family must be"),
])
def test_recipe_mistakes_are_one_line_naming_the_stage(tmp_path, capsys, body, message):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(RecipeError, match=message.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")
                       .replace("{", r"\{").replace("}", r"\}")):
        load_recipe(path)
    assert recipe_cli.main([str(path), "--dry-run"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
