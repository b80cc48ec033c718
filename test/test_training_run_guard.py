"""Run folders are never overwritten or silently changed by a repeated training command."""
from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from training.run_guard import RunFolderError, resume_changes
from training.toy_studies import write_toy_studies
from training.train_pix2pix import PIX2PIX_LOSS, Pix2PixFamily
from training.trainer import TrainConfig, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory) -> Path:
    return write_toy_studies(tmp_path_factory.mktemp("toy"), studies=2, fovs_per_study=2, size=40,
                             z_slices=2, seed=5)


def _config(root, out, **kw) -> TrainConfig:
    base = dict(data=str(root), out=str(out), preset="tiny", steps=4, batch_size=2, crop=32,
                val_every=4, val_items=1, val_crop=32, ckpt_every=4, log_every=2, progress=False,
                loss=replace(PIX2PIX_LOSS, disc_preset="tiny", gan_weight=0.0))
    base.update(kw)
    return TrainConfig(**base)


def _logged_steps(run: Path) -> list[str]:
    with open(run / "train_log.csv") as handle:
        return [row["step"] for row in csv.DictReader(handle)]


def test_an_existing_run_is_refused_without_resume_or_force(toy_root, tmp_path):
    run = tmp_path / "run"
    train(_config(toy_root, run), Pix2PixFamily())
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    with pytest.raises(RunFolderError, match="already holds a run.*--resume.*--force"):
        train(_config(toy_root, run), Pix2PixFamily())
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before     # nothing touched


def test_force_starts_over_with_clean_logs(toy_root, tmp_path):
    run = tmp_path / "run"
    train(_config(toy_root, run), Pix2PixFamily())
    train(_config(toy_root, run, force=True), Pix2PixFamily())
    assert _logged_steps(run) == ["2", "4"]          # one run's rows, not 2, 4, 2, 4


def test_resume_with_changed_settings_is_refused_naming_each(toy_root, tmp_path):
    run = tmp_path / "run"
    train(_config(toy_root, run, steps=4, stop_after=2), Pix2PixFamily())
    with pytest.raises(RunFolderError, match=r"batch_size: 2 -> 4; crop: 32 -> 16; steps: 4 -> 8"):
        train(_config(toy_root, run, steps=8, crop=16, batch_size=4, resume=True), Pix2PixFamily())
    # settings that only steer this invocation may change
    result = train(_config(toy_root, run, resume=True, log_every=1, threads=1), Pix2PixFamily())
    assert result.step == 4
    assert train(_config(toy_root, run, steps=6, resume=True, force=True), Pix2PixFamily()).step == 6


def test_resume_changes_compares_tuples_and_lists_alike():
    assert resume_changes({"betas": [0.5, 0.9], "crop": 32, "threads": 1},
                          {"betas": (0.5, 0.9), "crop": 32, "threads": 4}) == []
    assert resume_changes({"loss": {"l1_weight": 100.0}}, {"loss": {"l1_weight": 10.0}}) == [
        "loss: {'l1_weight': 100.0} -> {'l1_weight': 10.0}"]


@pytest.mark.parametrize("argv, message", [
    (["--out", "X"], "error: give --data, --store, or both"),
    (["--out", "X", "--data", "/nonexistent/data"], "error: --data /nonexistent/data is not a folder"),
])
def test_cli_mistakes_end_in_one_line(argv, message, tmp_path):
    from training import train_pix2pix
    with pytest.raises(SystemExit) as exc:
        train_pix2pix.main([a.replace("X", str(tmp_path / "o")) for a in argv])
    assert str(exc.value) == message


def test_cli_prints_its_summary_even_when_quiet(toy_root, tmp_path, capsys):
    from training import train_pix2pix
    train_pix2pix.main(["--data", str(toy_root), "--out", str(tmp_path / "q"), "--preset", "tiny",
                        "--disc-preset", "tiny", "--gan-weight", "0", "--steps", "2", "--batch-size", "2",
                        "--crop", "32", "--val-every", "2", "--val-items", "1", "--val-crop", "32", "--quiet"])
    assert "stopped at step 2" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="already holds a run"):
        train_pix2pix.main(["--data", str(toy_root), "--out", str(tmp_path / "q"), "--preset", "tiny",
                            "--steps", "2", "--crop", "32", "--quiet"])


def _logged_lr(run: Path) -> list[tuple[int, float]]:
    with open(run / "train_log.csv") as handle:
        return [(int(row["step"]), float(row["lr"])) for row in csv.DictReader(handle)]


def test_the_lr_schedule_continues_when_a_forced_resume_changes_its_length(toy_root, tmp_path):
    run = tmp_path / "run"
    base = dict(steps=12, decay_start=0.5, lr=1e-3, log_every=1, ckpt_every=3, val_every=100)
    train(_config(toy_root, run, stop_after=9, **base), Pix2PixFamily())
    before = dict(_logged_lr(run))
    assert before[9] == pytest.approx(1e-3 * 4 / 6)     # the lr of step 8 (logged at 9): decaying over 6..12
    train(_config(toy_root, run, **{**base, "steps": 24}, resume=True, force=True, stop_after=3), Pix2PixFamily())
    after = _logged_lr(run)
    lrs = [lr for _, lr in after]
    assert all(b <= a + 1e-12 for a, b in zip(lrs, lrs[1:])), "the lr went back up"
    # the factor reached at step 9 (0.5) holds until the new decay start (0.5 x 24), then falls to 0 at 24
    assert dict(after)[10] == dict(after)[12] == pytest.approx(1e-3 * 0.5)
    # a later plain resume keeps that anchor
    train(_config(toy_root, run, **{**base, "steps": 24}, resume=True, stop_after=3), Pix2PixFamily())
    assert dict(_logged_lr(run))[15] == pytest.approx(1e-3 * 0.5 * (24 - 14) / (24 - 12))


def test_validation_redraws_the_training_curves(toy_root, tmp_path):
    from PIL import Image
    run = tmp_path / "run"
    train(_config(toy_root, run, steps=4, val_every=2, log_every=1), Pix2PixFamily())
    with Image.open(run / "train_curves.png") as image:
        width, height = image.size
        assert width > 800 and height > 200 and len(np.unique(np.asarray(image.convert("L")))) > 10
    train(_config(toy_root, run, force=True, steps=2), Pix2PixFamily())    # --force removes the old curves too
    assert (run / "train_curves.png").is_file()
