"""A plain account of a set's composition, for `--plan` and for the README."""
from __future__ import annotations

from collections import Counter

from preprocessing.ome_io import ORGANELLES

from .plan import SetPlan


def describe_plan(plan: SetPlan, numbers: tuple[int, ...] | None = None, part: str = "subset") -> str:
    """`part` names what `numbers` pick out of the plan (the quick subset, one modality's studies)."""
    studies = [s for s in plan.studies if numbers is None or s.number in numbers]
    slices = [(s, sl) for s in studies for sl in s.slices]
    count = lambda items: ", ".join(f"{k}: {v}" for k, v in sorted(Counter(items).items()))  # noqa: E731
    lines = [
        f"{part + ' of the ' if numbers is not None else ''}{plan.purpose} plan {plan.fingerprint} (seed {plan.seed}): "
        f"{len(slices)} TL images from "
        f"{len(studies)} studies, one field of view each",
        f"  images per modality: {count(s.modality for s, _ in slices)}",
        "  images per organelle: " + ", ".join(
            f"{o}: {sum(len(s.slices) for s in studies if o in s.organelles)}" for o in ORGANELLES),
        f"  actin studies per modality: {count(s.modality for s in studies if 'actin' in s.organelles)}",
        f"  images per focus deviation: {count(sl.deviation for _, sl in slices)}",
        f"  studies per shape (H x W): {count(f'{h}x{w}' for h, w in (s.shape for s in studies))}",
        f"  studies per pixel size (nm): {count(int(s.acquisition.pixel_size_nm) for s in studies)}",
        f"  studies per objective NA: {count(s.acquisition.na for s in studies)}",
    ]
    return "\n".join(lines)
