"""Study layout indexing and the best-focus CSV."""
import numpy as np
import pytest

from preprocessing.layout import FocusRecord, gt_file_name, index_studies, read_bestz_csv, tl_file_name, write_bestz_csv
from preprocessing.ome_io import write_ome_tiff


def test_index_pairs_slices_with_ground_truth(tmp_path):
    plane = np.zeros((8, 8), np.uint16)
    for study, image_id, modality, zs, organelles in [("Study_2", "7", "DIC", [0, 1, 2], ["nucleus"]),
                                                       ("Study_10", "3", "BF", [4], ["tubulin", "actin"]),
                                                       ("Study_2", "12", "PC", [1], [])]:
        for z in zs:
            write_ome_tiff(tmp_path / study / tl_file_name(image_id, modality, z), plane, channel_name=modality)
        for organelle in organelles:
            write_ome_tiff(tmp_path / study / gt_file_name(image_id, organelle), plane, channel_name=organelle)
    (tmp_path / "Study_2" / "readme.txt").write_text("ignored")
    fovs = index_studies(tmp_path)
    assert [f.key for f in fovs] == ["Study_2/7", "Study_2/12", "Study_10/3"]
    assert sorted(fovs[0].slices) == [0, 1, 2] and fovs[0].modality == "DIC"
    assert set(fovs[0].ground_truth) == {"nucleus"} and fovs[1].ground_truth == {}
    assert set(fovs[2].ground_truth) == {"tubulin", "actin"}


def test_bestz_csv_round_trip_and_errors(tmp_path):
    records = [FocusRecord("image_1_BF_z3.ome.tiff", "BF", 3, 5), FocusRecord("image_2_PC_z0.ome.tiff", "PC", 0, 0)]
    path = write_bestz_csv(tmp_path / "bestz.csv", records)
    loaded = read_bestz_csv(path)
    assert list(loaded.values()) == records and loaded["image_1_BF_z3.ome.tiff"].deviation == 2
    (tmp_path / "bad.csv").write_text("name,modality\nx,BF\n")
    with pytest.raises(ValueError, match="bad.csv.*missing column"):
        read_bestz_csv(tmp_path / "bad.csv")
