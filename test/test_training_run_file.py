"""Training runs as declarative files: flags generated from TrainConfig, TOML run files read and
written, the precedence flag > file > family default > dataclass default, one-line errors, and
`lmc-train RUN.toml` training, calibrating and exporting."""
from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

import pytest

from training import train as lmc_train
from training import train_pix2pix, train_vqgan
from training.options import build_parser, parse
from training.run_config import LossConfig, TrainConfig
from training.run_file import RunFileError, read_run_file
from training.toy_studies import write_toy_studies

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    return write_toy_studies(tmp_path_factory.mktemp("toy"), studies=2, fovs_per_study=3, size=32, z_slices=1,
                             modality="PC")


def _vq(argv):
    return parse(argv, train_vqgan.FAMILY, "vq", extra=train_vqgan.add_organelle_flag)


def test_every_field_has_a_flag_with_its_help(capsys):
    for cls in (TrainConfig, LossConfig):
        for f in fields(cls):
            assert f.name == "loss" or f.metadata.get("help"), f"{cls.__name__}.{f.name} has no help"
    text = build_parser("x", train_pix2pix.FAMILY({})).format_help()
    for flag in ("--pixel-size", "--time-limit", "--no-flips", "--no-amp", "--quiet", "--gan-weight",
                 "--no-weighted-l1", "--disc-preset", "--max-defocus", "--init-from", "--force"):
        assert flag in text
    assert "(default: 0.5)" in text          # pix2pix's decay_start is shown, not the dataclass's 1.0


def test_a_command_becomes_a_file_that_gives_the_same_run(toy, tmp_path, capsys):
    argv = ["--data", str(toy), "--out", str(tmp_path / "run"), "--organelle", "tubulin", "--steps", "40",
            "--pixel-size", "0.2", "--betas", "0.6,0.95", "--modalities", "PC", "--no-flips", "--gan-weight", "0.25",
            "--set", "n_embed=32"]
    cfg, _, _ = _vq(argv)
    with pytest.raises(SystemExit) as done:
        _vq([*argv, "--print-config"])
    assert done.value.code == 0
    run_file = tmp_path / "run.toml"
    run_file.write_text(capsys.readouterr().out)
    again, family, _ = _vq([str(run_file)])
    assert again == cfg
    assert family.overrides == {"n_embed": 32}
    assert cfg.loss.disc_start == 20 and cfg.lr == 2e-4 and cfg.organelles == ("tubulin",)   # VQGAN defaults
    assert cfg.pixel_size_um == 0.2 and cfg.betas == (0.6, 0.95) and cfg.flips is False and cfg.loss.gan_weight == 0.25


def test_flags_win_over_the_file_and_the_file_over_the_family(toy, tmp_path):
    run_file = tmp_path / "run.toml"
    run_file.write_text(f'family = "pix2pix"\ndata = "{toy}"\nout = "{tmp_path / "r"}"\nlr = 1e-3\nsteps = 30\n'
                        "decay_start = 0.3\n[loss]\ngan_weight = 0.0\n")
    cfg, _, _ = parse([str(run_file), "--steps", "50"], train_pix2pix.FAMILY, "p2p")
    assert (cfg.steps, cfg.lr, cfg.decay_start, cfg.loss.gan_weight) == (50, 1e-3, 0.3, 0.0)
    assert cfg.loss.l1_weight == 100.0 and cfg.betas == (0.5, 0.999)      # the family's, not given


@pytest.mark.parametrize("text, message", [
    ("stepz = 3\n", "unknown setting 'stepz' (did you mean 'steps'?)"),
    ("steps = 'many'\n", "steps must be int"),
    ("preset = 'huge'\n", "preset 'huge' is not one of"),
    ("organelles = ['golgi']\n", "organelles 'golgi' is not one of"),
    ("[loss]\ngan_mode = 'wasserstein'\n", "gan_mode 'wasserstein' is not one of"),
    ("family = 'unet'\n", "family 'unet' is not one of"),
    ("steps = \n", "not a readable TOML run file"),
])
def test_run_file_mistakes_are_one_line_naming_the_file(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(RunFileError, match=re.escape(message)) as caught:
        read_run_file(path)
    assert str(caught.value).startswith(str(path))
    with pytest.raises(SystemExit, match="error: "):
        parse([str(path)], train_pix2pix.FAMILY, "p2p")


def test_missing_run_folder_and_family_are_one_line(toy, tmp_path):
    with pytest.raises(SystemExit, match="no run folder"):
        parse(["--data", str(toy)], train_pix2pix.FAMILY, "p2p")
    (tmp_path / "nofamily.toml").write_text(f'data = "{toy}"\nout = "{tmp_path / "o"}"\n')
    with pytest.raises(SystemExit, match="which family"):
        lmc_train.main([str(tmp_path / "nofamily.toml")])
    with pytest.raises(SystemExit, match="a VQGAN predicts one organelle"):
        lmc_train.main([str(tmp_path / "nofamily.toml"), "--family", "vqgan"])


def test_lmc_train_trains_then_calibrates_and_exports(toy, tmp_path, capsys):
    weights = tmp_path / "weights"
    run_file = tmp_path / "p2p.toml"
    run_file.write_text("\n".join([
        'family = "pix2pix"', f'data = "{toy}"', f'out = "{tmp_path / "run"}"', 'preset = "tiny"', "steps = 3",
        "batch_size = 2", "crop = 32", "val_every = 3", "val_items = 2", "val_crop = 32", "progress = false",
        'note = "toy studies"', "[loss]", 'disc_preset = "tiny"',
        "[calibrate]", f'data = "{toy}"', "items = 2", "workers = 1",
        "[export]", 'name = "p2p_toy"', f'weights = "{weights}"', 'route = ["PC:*"]', "half = true", ""]))
    assert lmc_train.main([str(run_file), "--stop-after", "2"]) == 0
    assert "calibrate and export wait for the resume" in capsys.readouterr().out
    assert not weights.exists()
    assert lmc_train.main([str(run_file), "--resume"]) == 0
    printed = capsys.readouterr().out
    assert "stopped at step 3" in printed and "calibrate: python -m training.calibrate --run" in printed
    assert (tmp_path / "run" / "calibration.json").is_file()
    manifest = json.loads((weights / "manifest.json").read_text())
    assert manifest["routes"]["PC"]["nucleus"] == ["p2p_toy"] and (weights / "p2p_toy.pt").is_file()


def test_a_native_pixel_size_is_said_since_the_shipped_weights_use_0_2(toy, tmp_path, capsys):
    parse(["--data", str(toy), "--out", str(tmp_path / "a")], train_pix2pix.FAMILY, "p2p")
    assert "native pixel size; the shipped weights were trained on a 0.2 µm grid" in capsys.readouterr().err
    parse(["--data", str(toy), "--out", str(tmp_path / "b"), "--pixel-size", "0.2"], train_pix2pix.FAMILY, "p2p")
    assert "native pixel size" not in capsys.readouterr().err
