"""Reducing whatever a TIFF holds to the one 2D transmitted-light plane the models take.

The evaluator fails the whole job when an input has no outputs, so a readable file that is more
than one plane is reduced by fixed rules rather than refused, and every reduction is said:
- Y and X are always kept, even when one of them is 1 pixel long (a 1 x N line stays a line).
- Alpha samples are dropped; the remaining colour samples (RGB) are averaged, unless OME names
  each sample as a channel: then they follow the channel rule.
- Channels (C): when the OME channel names mark exactly one as transmitted light (BF, PC, DIC,
  "Bright", "Phase", "Nomarski", "TL", ...), that channel is used; otherwise they are averaged.
- Every other axis (Z, T, pages, unlabelled): the middle plane, index n // 2. A z-stack acquired
  around focus has its best plane near the middle, and the rule is cheap and deterministic (the
  highest-variance plane would favour noise and needs every plane decoded). A person who knows
  better names the plane (`plane`, process.py --plane): it indexes the stack axis, Z first when
  there are several; the other stack axes keep their middle plane.
When tifffile's labels are unknown ("?"), the last two axes are Y and X, after a last axis of 3 or
4 is taken as colour samples.
"""
from __future__ import annotations

import numpy as np

from preprocessing.ome_io import is_transmitted_light


def reduce_to_plane(data: np.ndarray, axes: str, names: list[str | None] | None = None,
                    alpha_samples: int = 0, plane: int | None = None) -> tuple[np.ndarray, list[str]]:
    """(H x W plane in the input dtype or float, what was done in words). `names`: the OME channel
    names, for a C axis (or an S axis with one name per sample); `alpha_samples`: how many trailing
    S samples are alpha; `plane`: the index to take along the stack axis instead of the middle
    (a ValueError when out of range; ignored, and said, for a single plane)."""
    data, axes = np.asarray(data), _labelled(data.shape, axes)
    if data.ndim < 2:
        raise ValueError(f"not an image: shape {data.shape}")
    actions: list[str] = []
    # Colour samples and channels first: each is reduced along its own axis, then the rest by plane.
    if "S" in axes:
        data, axes = _samples(data, axes, alpha_samples, names or [], actions)
    if "C" in axes:
        data, axes = _channels(data, axes, names or [], actions)
    stacks = [a for a in axes if a not in "YX"]
    chosen = _chosen_axis(data.shape, axes, stacks) if plane is not None else None
    if plane is not None and chosen is None:
        actions.append(f"plane {plane} asked for, but the file holds a single plane")
    for label in stacks:
        i, n = axes.index(label), data.shape[axes.index(label)]
        what = _AXIS_NAMES.get(label, "axis " + label)
        if label == chosen and n > 1:
            chosen = None        # one axis only, even when unknown labels repeat ("QQYX")
            if not 0 <= plane < n:
                raise ValueError(f"plane {plane} asked for, but the {what} has {n} planes (0 to {n - 1})")
            actions.append(f"{what} of {n}: plane {plane} used, as asked")
            index = plane
        else:
            index = n // 2
            if n > 1:
                actions.append(f"{what} of {n}: the middle plane (index {index}) used")
        data, axes = np.take(data, index, axis=i), axes.replace(label, "", 1)
    if axes == "XY":
        data = data.T
    return data, actions


_AXIS_NAMES = {"Z": "z-stack", "T": "time series", "I": "page stack", "Q": "page stack"}


def _chosen_axis(shape: tuple[int, ...], axes: str, stacks: list[str]) -> str | None:
    """The stack axis a plane index refers to: Z when it holds several planes, else the first that does."""
    longer = [a for a in stacks if shape[axes.index(a)] > 1]
    return "Z" if "Z" in longer else (longer[0] if longer else None)


def _labelled(shape: tuple[int, ...], axes: str) -> str:
    """Labels with Y and X present: unknown or incomplete labels get the last two axes as Y, X."""
    if len(axes) == len(shape) and "Y" in axes and "X" in axes and len(set(axes)) == len(axes):
        return axes
    if len(shape) >= 3 and shape[-1] in (3, 4):
        return "Q" * (len(shape) - 3) + "YXS"
    return "Q" * (len(shape) - 2) + "YX"


def _samples(data: np.ndarray, axes: str, alpha: int, names: list[str | None],
             actions: list[str]) -> tuple[np.ndarray, str]:
    i, n = axes.index("S"), data.shape[axes.index("S")]
    keep = n - alpha if 0 < alpha < n else n
    if keep < n:
        data = np.take(data, range(keep), axis=i)
        actions.append(f"{n - keep} alpha sample(s) dropped")
    if keep > 1 and len(names) == keep:   # interleaved channels, one OME Channel per sample
        return _channels(data, axes.replace("S", "C", 1), names, actions)
    if keep > 1:
        data = data.astype(np.float64).mean(axis=i)
        actions.append(f"{keep} colour samples averaged to grey")
    else:
        data = np.take(data, 0, axis=i)
    return data, axes.replace("S", "", 1)


def _channels(data: np.ndarray, axes: str, names: list[str | None],
              actions: list[str]) -> tuple[np.ndarray, str]:
    i, n = axes.index("C"), data.shape[axes.index("C")]
    rest = axes.replace("C", "", 1)
    if n == 1:
        return np.take(data, 0, axis=i), rest
    tl = [k for k, name in enumerate(names[:n]) if is_transmitted_light(name)]
    if len(tl) == 1:
        actions.append(f"{n} channels {names[:n]}: the transmitted-light channel {names[tl[0]]!r} "
                       f"(index {tl[0]}) used")
        return np.take(data, tl[0], axis=i), rest
    actions.append(f"{n} channels averaged (no single transmitted-light channel among the names "
                   f"{names[:n] or 'none'})")
    return data.astype(np.float64).mean(axis=i), rest
