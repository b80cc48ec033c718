"""The training loop end to end on tiny presets: learning, bit-for-bit resume, DDP, CLI."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from models.pix2pix import Pix2PixGenerator
from training.checkpointing import load_module_state, load_training_checkpoint
from training.dataset import ImageCache, load_fovs
from training.toy_studies import write_toy_studies
from training.train_pix2pix import PIX2PIX_LOSS, Pix2PixFamily
from training.train_vqgan import VQGAN_LOSS, VQGANFamily
from training.trainer import TrainConfig, train
from training.validation import evaluate, validation_items

REPO = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory) -> Path:
    return write_toy_studies(tmp_path_factory.mktemp("toy"), studies=2, fovs_per_study=3, size=48,
                             z_slices=2, seed=4)


def _config(root, out, **kw) -> TrainConfig:
    base = dict(data=str(root), out=str(out), preset="tiny", steps=12, batch_size=4, crop=32,
                val_every=6, val_items=2, val_crop=48, ckpt_every=6, log_every=3, progress=False,
                loss=replace(PIX2PIX_LOSS, disc_preset="tiny"))
    base.update(kw)
    return TrainConfig(**base)


def _generator(run: Path, name: str = "last.pt") -> Pix2PixGenerator:
    state = load_training_checkpoint(run / name)
    from models.pix2pix import Pix2PixConfig
    model = Pix2PixGenerator(Pix2PixConfig(**state["model_config"]))
    load_module_state(model, state["generator"])
    return model


def test_tiny_pix2pix_overfits_a_few_fovs(toy_root, tmp_path):
    """L1 alone, lr 2e-3: the pixel loss falls by a large factor and PCC on the FOVs rises."""
    cfg = _config(toy_root, tmp_path / "run", steps=160, lr=3e-3, val_fraction=0.0, val_every=10_000,
                  ckpt_every=10_000, log_every=4, rot90=False, flips=False,
                  loss=replace(PIX2PIX_LOSS, gan_weight=0.0))
    fovs = load_fovs(toy_root)
    items = validation_items(fovs, 8, seed=0)
    torch.manual_seed(cfg.seed)
    untrained = Pix2PixFamily().build(Pix2PixFamily().model_config(cfg))
    before = evaluate(untrained, items, ImageCache(), cfg.organelles, crop=48, divisor=4,
                      device=torch.device("cpu"))
    result = train(cfg, Pix2PixFamily())
    with open(tmp_path / "run" / "train_log.csv") as handle:
        rec = [float(r["rec"]) for r in csv.DictReader(handle)]
    assert rec[-1] < rec[0] / 4, rec
    after = evaluate(_generator(tmp_path / "run"), items, ImageCache(), cfg.organelles, crop=48,
                     divisor=4, device=torch.device("cpu"))
    pcc_before = np.mean([v for k, v in before.items() if k.endswith("/PCC")])
    pcc_after = np.mean([v for k, v in after.items() if k.endswith("/PCC")])
    assert pcc_after > 0.7 and pcc_after > pcc_before + 0.3, (pcc_before, pcc_after)
    assert result.step == 160


def test_structure_terms_are_logged_added_to_the_objective_and_learned(toy_root, tmp_path):
    """With pcc_weight and ssim_weight the objective is L1 + w * (1 - PCC) + v * (1 - SSIM)
    (no GAN), and both terms fall."""
    cfg = _config(toy_root, tmp_path / "run", steps=48, lr=3e-3, val_fraction=0.0, val_every=10_000,
                  ckpt_every=10_000, log_every=4, rot90=False, flips=False,
                  loss=replace(PIX2PIX_LOSS, gan_weight=0.0, pcc_weight=5.0, ssim_weight=3.0))
    train(cfg, Pix2PixFamily())
    with open(tmp_path / "run" / "train_log.csv") as handle:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(handle)]
    for row in rows:
        assert row["total"] == pytest.approx(row["rec"] + 5.0 * row["pcc"] + 3.0 * row["ssim"], rel=1e-5)
    assert 0.0 < rows[-1]["pcc"] < rows[0]["pcc"] / 2, [r["pcc"] for r in rows]
    assert 0.0 < rows[-1]["ssim"] < rows[0]["ssim"], [r["ssim"] for r in rows]


def _losses(run: Path) -> list[dict]:
    """Logged rows without the timing column."""
    with open(run / "train_log.csv") as handle:
        return [{k: v for k, v in row.items() if k != "samples_per_s"} for row in csv.DictReader(handle)]


def _weights(path: Path, part: str) -> dict[str, torch.Tensor]:
    return load_training_checkpoint(path)[part]["params"]


@pytest.mark.parametrize("family", ["pix2pix", "pix2pix-workers", "vqgan"])
def test_resume_continues_bit_for_bit(toy_root, tmp_path, family):
    """N steps in one go == N/2, save, resume, N/2: identical weights, optimiser and logs."""
    if family == "pix2pix":
        fam, kw = Pix2PixFamily(), {}
    elif family == "pix2pix-workers":   # batches made ahead by 2 DataLoader processes: same stream
        fam, kw = Pix2PixFamily(), {"workers": 2}
    else:   # discriminator starts mid-run; codes re-seeded (non-persistent buffers + torch RNG)
        fam = VQGANFamily({"reseed_threshold": 0.05})
        kw = dict(organelles=("nucleus",), crop=16, val_crop=32,
                  loss=replace(VQGAN_LOSS, disc_start=4, disc_preset="tiny"), scale_jitter=(0.7, 0.95))
    train(_config(toy_root, tmp_path / "a", **kw), fam)
    train(_config(toy_root, tmp_path / "b", stop_after=6, **kw), fam)
    assert load_training_checkpoint(tmp_path / "b" / "last.pt")["step"] == 6
    train(_config(toy_root, tmp_path / "b", resume=True, **kw), fam)
    a, b = tmp_path / "a" / "last.pt", tmp_path / "b" / "last.pt"
    for part in ("generator", "discriminator"):
        wa, wb = _weights(a, part), _weights(b, part)
        assert wa.keys() == wb.keys()
        assert all(torch.equal(wa[k], wb[k]) for k in wa), part
    sa, sb = load_training_checkpoint(a), load_training_checkpoint(b)
    assert sa["step"] == sb["step"] == 12
    assert sa["samplers"] == sb["samplers"]
    for k, v in sa["opt_g"]["state"].items():
        assert torch.equal(v["exp_avg"], sb["opt_g"]["state"][k]["exp_avg"])
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b")
    assert (tmp_path / "b" / "best.pt").exists()


def test_resume_refuses_a_different_model(toy_root, tmp_path):
    train(_config(toy_root, tmp_path / "r", steps=3, stop_after=3), Pix2PixFamily())
    with pytest.raises(ValueError, match="checkpoint is pix2pix"):
        train(_config(toy_root, tmp_path / "r", steps=3, resume=True), Pix2PixFamily({"ngf": 4}))


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    env.pop("WORLD_SIZE", None)
    return env


def test_ddp_two_cpu_processes_with_gloo(toy_root, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "training.train_pix2pix", "--data", str(toy_root), "--out", str(out),
           "--preset", "tiny", "--disc-preset", "tiny", "--steps", "4", "--batch-size", "2",
           "--crop", "32", "--val-every", "4", "--val-items", "2", "--val-crop", "48",
           "--device", "cpu", "--quiet"]
    proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    state = load_training_checkpoint(out / "last.pt")
    assert state["step"] == 4 and len(state["samplers"]) == 2
    assert state["samplers"][0] != state["samplers"][1]           # each rank draws its own data
    assert all(torch.isfinite(v).all() for v in state["generator"]["params"].values())
    assert '"world_size": 2' in (out / "run.json").read_text()


def test_cli_trains_and_prints(toy_root, tmp_path):
    from training import train_vqgan
    result = train_vqgan.main(["--data", str(toy_root), "--out", str(tmp_path / "v"), "--preset", "tiny",
                               "--organelle", "nucleus", "--steps", "4", "--batch-size", "2",
                               "--crop", "16", "--val-every", "2", "--val-items", "2", "--val-crop", "32",
                               "--disc-preset", "tiny", "--quiet", "--set", "n_embed=32"])
    assert result.step == 4
    state = load_training_checkpoint(tmp_path / "v" / "best.pt")
    assert state["model_config"]["n_embed"] == 32 and state["organelles"] == ("nucleus",)
    with open(tmp_path / "v" / "val_log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["step"] for r in rows] == ["2", "4"] and "nucleus/PCC" in rows[0]


def test_time_limit_stops_validates_and_saves(toy_root, tmp_path):
    result = train(_config(toy_root, tmp_path / "t", steps=50, time_limit_min=0.0), Pix2PixFamily())
    assert result.step == 1
    assert load_training_checkpoint(tmp_path / "t" / "last.pt")["step"] == 1
    assert (tmp_path / "t" / "val_log.csv").read_text().splitlines()[1].startswith("1,")
