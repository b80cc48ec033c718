"""inference/api.py: an array in, four [0, 1] float32 arrays of its shape out."""
import re
from pathlib import Path

import numpy as np
import pytest
import tifffile

from inference.api import predict, predict_file


def test_predict_array_gives_four_organelles_of_its_shape():
    out = predict(np.random.default_rng(0).random((64, 64)), "BF", 0.2, tta="none")
    assert set(out) == {"nucleus", "mitochondria", "tubulin", "actin"}
    for array in out.values():
        assert array.shape == (64, 64) and array.dtype == np.float32
        assert 0.0 <= array.min() and array.max() <= 1.0


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_predict_refuses_a_bad_pixel_size(bad):
    with pytest.raises(ValueError, match="pixel_size_um"):
        predict(np.zeros((64, 64)), "BF", bad, tta="none")


def test_the_readme_example_runs(capsys):
    """The notebook example in README.md, exactly as written there."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    example = next(b for b in blocks if "from inference import predict" in b)
    exec(compile(example, "README.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert sorted(line.split()[0] for line in lines) == ["actin", "mitochondria", "nucleus", "tubulin"]
    assert all("(128, 160)" in line for line in lines)


def test_an_unknown_modality_is_refused_not_routed_to_bright_field():
    with pytest.raises(ValueError, match="unknown modality 'fluorescence'"):
        predict(np.zeros((64, 64)), "fluorescence", 0.2, tta="none")


def test_predict_file_takes_the_file_and_its_overrides(tmp_path):
    from preprocessing.ome_io import write_ome_tiff
    rng = np.random.default_rng(1)
    path = write_ome_tiff(tmp_path / "x.ome.tiff", rng.integers(0, 4000, (64, 80)).astype(np.uint16),
                          channel_name="DIC", pixel_size_um=(0.2, 0.2))
    out = predict_file(path, tta="none")
    assert {a.shape for a in out.values()} == {(64, 80)}
    from_array = predict(tifffile.imread(path), "DIC", 0.2, tta="none")
    assert all(np.allclose(out[o], from_array[o], atol=1e-6) for o in out)
    overridden = predict_file(path, modality="BF", tta="none")
    assert not np.allclose(overridden["nucleus"], out["nucleus"])   # another route
