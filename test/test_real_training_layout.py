"""The real Light My Cells training set's layout through the project's readers.

The organizers' file lists (../shared/real/lmc_training_doc/FileList/Study<N>.tsv, 57,022 lines)
are laid out as empty files in Study_<N>/ folders; index_studies and load_fovs must find the
organizers' counts. Empty files suffice: the readers go by name and never open a file here.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest

from preprocessing.layout import index_studies
from training.dataset import load_fovs

REPOSITORY = Path(__file__).resolve().parents[1]
FILE_LISTS = REPOSITORY.parent / "shared" / "real" / "lmc_training_doc" / "FileList"   # ../shared/real/...

# The organizers' counts (their ORGANIZERS_README.txt beside the file lists).
TL_SLICES = {"BF": 41_213, "PC": 7_670, "DIC": 3_499}
GROUND_TRUTH_FILES = {"nucleus": 2_533, "mitochondria": 1_816, "tubulin": 223, "actin": 27}
NUCLEUS_LINES, DOUBLED_NUCLEUS = 2_574, {"4": 31, "7": 10}     # Study -> nucleus lines listed twice
FIELDS_OF_VIEW, MOST_SLICES, ALL_LINES = 2_574, 33, 57_022

pytestmark = pytest.mark.skipif(not FILE_LISTS.is_dir(),
                                reason=f"the organizers' file lists are absent ({FILE_LISTS}; "
                                       "see ../shared/real/README.md)")


def _listed() -> dict[str, list[str]]:
    """Study number -> the names of its .tsv, one a line, as listed (duplicates kept)."""
    return {tsv.stem.removeprefix("Study"): tsv.read_text().split() for tsv in sorted(FILE_LISTS.glob("Study*.tsv"))}


def _parse(name: str) -> tuple[str, str, int | None]:
    """(image id, modality or organelle as spelled, z or None), independently of the project's regexes."""
    parts = name.removesuffix(".ome.tiff").split("_")   # image, <id>, <BF|PC|DIC|Nucleus|...>[, z<k>]
    if parts[-1].startswith("z") and parts[-1][1:].isdigit():
        return "_".join(parts[1:-2]), parts[-2], int(parts[-1][1:])
    return "_".join(parts[1:-1]), parts[-1], None


# 53k empty files are pure file-system metadata: in memory (tmpfs) they take ~1 s; on this machine's
# shared disk, busy with other jobs, it measured 30 s.
MEMORY_FS = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


@pytest.fixture(scope="module")
def layout():
    """(root of the empty-file tree, the lists as read)."""
    root = Path(tempfile.mkdtemp(prefix="lmc_real_layout_", dir=MEMORY_FS))
    listed = _listed()
    for study, names in listed.items():
        folder = root / f"Study_{study}"
        folder.mkdir()
        for name in set(names):
            os.close(os.open(folder / name, os.O_CREAT | os.O_WRONLY, 0o644))  # cheaper than Path.touch
    yield root, listed
    shutil.rmtree(root)


@pytest.fixture(scope="module")
def fovs(layout):
    return index_studies(layout[0])


def test_the_lists_are_what_the_organizers_describe(layout):
    _, listed = layout
    assert sum(len(names) for names in listed.values()) == ALL_LINES
    assert len(listed) == 30
    nucleus_lines = [(s, n) for s, names in listed.items() for n in names if n.endswith("_Nucleus.ome.tiff")]
    assert len(nucleus_lines) == NUCLEUS_LINES
    doubled = Counter(study for (study, _), count in Counter(nucleus_lines).items() if count > 1)
    assert doubled == DOUBLED_NUCLEUS and len(set(nucleus_lines)) == GROUND_TRUTH_FILES["nucleus"]


def test_readers_count_what_the_organizers_count(layout, fovs):
    assert len(fovs) == FIELDS_OF_VIEW
    slices, truths = Counter(), Counter()
    for fov in fovs:
        slices[fov.modality] += len(fov.slices)
        truths.update(fov.ground_truth.keys())
    assert dict(slices) == TL_SLICES
    assert dict(truths) == GROUND_TRUTH_FILES
    assert max(len(fov.slices) for fov in fovs) == MOST_SLICES
    # The trainers' reader keeps every one of them (each has TL slices and ground truth).
    loaded = load_fovs(layout[0])
    assert [f.key for f in loaded] == [f.key for f in fovs]
    assert sum(len(f.slices) for f in loaded) == sum(TL_SLICES.values())


def test_every_slice_pairs_with_its_fields_ground_truth(layout, fovs):
    _, listed = layout
    expected: dict[str, dict] = {}      # "Study_<n>/<id>" -> slices and organelles, from the lists alone
    for study, names in listed.items():
        for name in set(names):
            image_id, kind, z = _parse(name)
            fov = expected.setdefault(f"Study_{study}/{image_id}", {"slices": {}, "organelles": set()})
            if z is None:
                fov["organelles"].add(kind.lower())
            else:
                fov["slices"][z] = name
                fov["modality"] = kind
    by_key = {f.key: f for f in fovs}
    assert set(by_key) == set(expected)
    for key, fov in by_key.items():
        want = expected[key]
        assert {z: p.name for z, p in fov.slices.items()} == want["slices"], key
        assert set(fov.ground_truth) == want["organelles"] and fov.modality == want["modality"], key
        assert all(p.parent == fov.slices[min(fov.slices)].parent for p in fov.ground_truth.values()), key
        assert 1 <= len(fov.ground_truth) <= 3, key      # 1 to 3 organelles, never all four


def test_no_dic_field_has_actin(layout, fovs):
    assert not [f.key for f in fovs if f.modality == "DIC" and "actin" in f.ground_truth]
    actin = load_fovs(layout[0], organelles=("actin",))   # what an actin trainer would get
    assert len(actin) == GROUND_TRUTH_FILES["actin"] and {f.modality for f in actin} <= {"BF", "PC"}
