"""The committed held-out set test/studies: its content rules, and that the script makes it."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
import xmltodict

from preprocessing.layout import TL_NAME, index_studies, read_bestz_csv
from preprocessing.ome_io import read_ome_tiff
from synthetic import SimulationConfig, generate_studies
from synthetic.__main__ import main as cli_main
from synthetic.generate import HELDOUT_SEED
from synthetic.heldout import STUDIES, make_heldout

ROOT = Path(__file__).parent / "studies"


@pytest.fixture(scope="module")
def fovs():
    if not (ROOT / "bestz.csv").exists():
        pytest.fail(f"{ROOT} is missing; run scripts/make_test_studies.sh")
    return index_studies(ROOT)


def test_heldout_content_rules(fovs):
    records = read_bestz_csv(ROOT / "bestz.csv")
    assert sorted(records) == sorted(p.name for p in ROOT.glob("Study_*/*") if TL_NAME.match(p.name))
    assert {f.modality for f in fovs} == {"BF", "PC", "DIC"}
    assert all(sum(f.modality == m for f in fovs) >= 2 for m in ("BF", "PC", "DIC"))
    assert {r.deviation for r in records.values()} == set(range(6))
    for modality in ("BF", "PC", "DIC"):
        assert 0 in {r.deviation for r in records.values() if r.modality == modality}
    organelles = [set(f.ground_truth) for f in fovs]
    assert all(1 <= len(o) <= 3 for o in organelles)
    assert any("actin" in set(f.ground_truth) and f.modality != "DIC" for f in fovs)
    assert not any("actin" in f.ground_truth and f.modality == "DIC" for f in fovs)
    assert any("tubulin" in o for o in organelles) and any("mitochondria" in o for o in organelles)
    assert sum("nucleus" in o for o in organelles) > len(fovs) / 2
    assert all(f.study.startswith("Study_9") for f in fovs)
    size = sum(p.stat().st_size for p in ROOT.rglob("*") if p.is_file())
    assert size < 8.5e6


def test_heldout_files_and_metadata(fovs):
    shapes = set()
    for fov in fovs:
        paths = list(fov.slices.values()) + list(fov.ground_truth.values())
        for path in paths:
            image = read_ome_tiff(path)
            assert image.dtype == np.uint16 and 0.065 <= image.pixel_size_um[0] <= 0.110
            assert image.shape == read_ome_tiff(paths[0]).shape
            shapes.add(image.shape)
            with tifffile.TiffFile(path) as tif:
                assert tif.pages[0].compression == 8  # deflate (zlib)
                pixels = xmltodict.parse(tif.ome_metadata)["OME"]["Image"]["Pixels"]
            if path in fov.slices.values():
                assert pixels["Channel"]["@Name"] == fov.modality == image.modality
    assert (512, 512) in shapes and any(h != w for h, w in shapes)


def test_script_regenerates_the_committed_set(tmp_path, fovs):
    made = make_heldout(tmp_path)
    assert (tmp_path / "bestz.csv").read_text() == (ROOT / "bestz.csv").read_text()
    assert {f.key for f in fovs} == {f.key for f in made} and len(made) == 2 * len(STUDIES)
    for fov in made:
        for path in list(fov.slices.values()) + list(fov.ground_truth.values()):
            new_image = tifffile.imread(path).astype(np.float64)
            old_image = tifffile.imread(ROOT / fov.study / path.name).astype(np.float64)
            assert new_image.shape == old_image.shape
            # Exact on one machine; FFT rounding may differ slightly elsewhere, so allow a tolerance.
            assert np.corrcoef(new_image.ravel(), old_image.ravel())[0, 1] > 0.99, path.name


def test_training_commands_refuse_the_heldout_seed(tmp_path, capsys):
    with pytest.raises(ValueError, match="reserved"):
        generate_studies(tmp_path, SimulationConfig(seed=HELDOUT_SEED, quiet=True))
    with pytest.raises(SystemExit):
        cli_main(["--out", str(tmp_path), "--seed", str(HELDOUT_SEED)])
    assert "reserved" in capsys.readouterr().err
