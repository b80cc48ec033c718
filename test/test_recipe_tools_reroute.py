"""`python -m training.recipe_tools --copy-folder ... --reroute PAIRS=CHECKPOINT`: a copy of the
shipped weights whose named pairs use another checkpoint, validated, the source untouched."""
import json
from pathlib import Path

from models.registry import Manifest
from training.recipe_tools import main

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"


def test_a_rerouted_copy_routes_the_pairs_and_drops_unused_checkpoints(tmp_path):
    before = (WEIGHTS / "manifest.json").read_text()
    copy = tmp_path / "copy"
    assert main(["--copy-folder", "--source", str(WEIGHTS), "--to", str(copy),
                 "--reroute", "BF:tubulin,BF:actin=p2p_bf_small"]) == 0
    manifest = Manifest.load(copy / "manifest.json")          # validated, hashes included
    routes = json.loads((copy / "manifest.json").read_text())["routes"]
    shipped = json.loads(before)["routes"]
    assert routes["BF"]["tubulin"] == routes["BF"]["actin"] == ["p2p_bf_small"]
    for modality, by_organelle in shipped.items():          # every other pair as shipped
        for organelle, names in by_organelle.items():
            if (modality, organelle) not in {("BF", "tubulin"), ("BF", "actin")}:
                assert routes[modality][organelle] == names
    # vq_actin_small served BF actin only, so it leaves the copy's manifest (its file stays).
    assert "vq_actin_small" not in manifest.checkpoints and (copy / "vq_actin_small.pt").exists()
    assert (WEIGHTS / "manifest.json").read_text() == before


def test_a_bad_reroute_is_one_line_naming_it(tmp_path, capsys):
    for bad in ("BF:tubulin=no_such_model", "BF:tubulin", "XX:tubulin=p2p_bf_small"):
        assert main(["--copy-folder", "--source", str(WEIGHTS), "--to", str(tmp_path / "c"),
                     "--reroute", bad]) == 1
        assert bad in capsys.readouterr().err
        assert not (tmp_path / "c").exists()               # no copy that looks like the asked one
