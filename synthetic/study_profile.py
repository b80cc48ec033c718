"""The real training set's study mix, from the organizers' file lists, beside the simulator's.

The file lists (../shared/real/lmc_training_doc/FileList/Study<N>.tsv) name every real file, so
they give per study its modality, its fields of view, the z-slices of each field and the organelles
each field has ground truth for; the acquisition table (synthetic/acquisitions.py) adds pixel size
and NA. `real_profile` reduces that to the marginals a simulator of these studies should follow;
`simulated_profile` draws the same marginals from the simulator's study sampler
(synthetic/study.py: sample_study) for as many studies, so the two can be read side by side
(python -m synthetic.realism_report). Facts only: no pixels are read.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from preprocessing.ome_io import ORGANELLE_FILE_NAMES

from .acquisitions import REAL_ACQUISITIONS

_TL = re.compile(r"^image_(?P<id>.+)_(?P<modality>BF|PC|DIC)_z(?P<z>\d+)\.ome\.tiff?$", re.IGNORECASE)
_GT = re.compile(r"^image_(?P<id>.+)_(?P<organelle>Nucleus|Mitochondria|Tubulin|Actin)\.ome\.tiff?$", re.IGNORECASE)
_ORGANELLE = {v.lower(): k for k, v in ORGANELLE_FILE_NAMES.items()}


@dataclass
class StudyMix:
    """Marginals over studies (and their fields) of one set of studies."""
    studies: int
    modality_studies: dict[str, int]                 # studies per modality
    pixel_size_nm: list[float]                       # one per study
    slices_per_field: list[int]                      # one per field of view
    label_sets: Counter                              # frozenset of organelles -> fields
    organelle_studies: dict[str, int]                # studies with any ground truth of each organelle

    def rows(self) -> dict[str, str]:
        slices = np.asarray(self.slices_per_field or [0])
        sets = sum(self.label_sets.values()) or 1
        top = ", ".join(f"{'+'.join(sorted(s)) or 'none'} {n / sets:.0%}" for s, n in self.label_sets.most_common(3))
        return {
            "studies": str(self.studies),
            "BF / PC / DIC studies": " / ".join(str(self.modality_studies.get(m, 0)) for m in ("BF", "PC", "DIC")),
            "pixel size nm (min-max)": f"{min(self.pixel_size_nm):.0f}-{max(self.pixel_size_nm):.0f}",
            "distinct pixel sizes": str(len(set(round(p) for p in self.pixel_size_nm))),
            "z-slices per field (median, max)": f"{np.median(slices):.0f}, {slices.max()}",
            "commonest label sets (of fields)": top,
            "studies with nucleus / mito / tubulin / actin": " / ".join(
                str(self.organelle_studies.get(o, 0)) for o in ("nucleus", "mitochondria", "tubulin", "actin")),
        }


def real_profile(file_lists: Path) -> StudyMix:
    """The marginals of the real training set from its file lists."""
    pixel = {a.study: a.pixel_size_nm for a in REAL_ACQUISITIONS}
    modality_studies: Counter = Counter()
    organelle_studies: Counter = Counter()
    sizes, slices, label_sets = [], [], Counter()
    tsvs = sorted(file_lists.glob("Study*.tsv"), key=lambda p: int(p.stem.removeprefix("Study")))
    for tsv in tsvs:
        number = int(tsv.stem.removeprefix("Study"))
        fields: dict[str, set[int]] = {}
        labels: dict[str, set[str]] = {}
        modalities = set()
        for name in tsv.read_text().split():
            if m := _TL.match(name):
                fields.setdefault(m["id"], set()).add(int(m["z"]))
                modalities.add(m["modality"].upper())
            elif m := _GT.match(name):
                labels.setdefault(m["id"], set()).add(_ORGANELLE[m["organelle"].lower()])
        for modality in modalities:
            modality_studies[modality] += 1
        for organelle in set().union(*labels.values()) if labels else ():
            organelle_studies[organelle] += 1
        sizes.append(pixel[number])
        slices += [len(z) for z in fields.values()]
        label_sets.update(frozenset(labels.get(i, ())) for i in fields)
    return StudyMix(len(tsvs), dict(modality_studies), sizes, slices, label_sets, dict(organelle_studies))


def simulated_profile(studies: int, seed: int, max_slices: int | None = None, profile: str = "v1") -> StudyMix:
    """The same marginals from the simulator's sampler: `studies` studies of `seed` in `profile`,
    slices as synthetic/fov.draw_study_focus draws them (one field per study; max_slices None: the
    profile's cap)."""
    from .config import SimulationConfig
    from .fov import draw_study_focus
    from .study import sample_study
    config = SimulationConfig(studies=studies, seed=seed, max_slices=max_slices, profile=profile)
    rng = np.random.default_rng(seed)
    modality_studies: Counter = Counter()
    organelle_studies: Counter = Counter()
    sizes, slices, label_sets = [], [], Counter()
    for number in range(1, studies + 1):
        study = sample_study(config, number)
        modality_studies[study.modality] += 1
        sizes.append(study.pixel_size_um * 1000)
        organelles = frozenset(study.organelles)
        for organelle in organelles:
            organelle_studies[organelle] += 1
        label_sets[organelles] += 1
        slices.append(len(draw_study_focus(study, max_slices, rng)[1]))
    return StudyMix(studies, dict(modality_studies), sizes, slices, label_sets, dict(organelle_studies))
