"""Per-organelle output calibration: a monotone intensity map fitted on data no model trained on.

The challenge normalises every prediction by its own p2 / p99.8 and then compares pixel values
(MAE, Euclidean distance, SSIM), so the *distribution* of a prediction's intensities counts, not
only where it is bright. A generator trained with L1 hedges where it is unsure: it spreads a dim
haze over the cytoplasm that a sparse stain (mitochondria, actin) does not have, and that haze
costs MAE and SSIM against a mostly dark ground truth. The map removes it:

    t = max(x_q, x_min + f (x_p99.8 - x_min));   y = clip((x - t) / (max(x) - t), 0, 1) ** gamma

q ("floor_quantile") sends the dimmest fraction q of the pixels to 0, whatever their level;
f ("floor_fraction") sends everything below a fraction f of the image's bright range to 0, however
many pixels that is (an empty background is large in a sparse field and small in a dense one);
gamma > 1 darkens what is left relative to the brightest structures. All three are fitted per
(checkpoint, organelle) on studies the model did not train on (training/calibrate.py) and stored
in the checkpoint's spec, so inference applies exactly what was fitted. q = f = 0, gamma = 1 is
the identity up to a rescale, which the challenge's percentile normalisation ignores.

The second kind of map, quantile matching, goes further: the haze is not the same in every image
(one slice of a field may come out clean, the next slice of the same field hazy), and one floor
cannot fit both. It maps each prediction's own quantiles onto a reference quantile function, the
median over calibration images of the percentile-normalised ground truth's quantiles:

    y = interp(x, quantiles_of_x(levels), reference)        (then rescaled to [0, 1])

so every prediction gets the intensity distribution a typical ground truth of that organelle has,
while the order of its pixels (where it is bright) stays the model's. Parameters
{"quantile_levels": [...], "reference_quantiles": [...]}; training/calibrate.py fits both kinds
and keeps whichever scores better.
"""
from __future__ import annotations

import numpy as np

# Quantiles of a large image come from a strided subsample: same answer to ~1e-3, far cheaper.
_QUANTILE_SAMPLE = 1 << 20
IDENTITY = {"floor_quantile": 0.0, "floor_fraction": 0.0, "gamma": 1.0}
QUANTILE_KEYS = ("quantile_levels", "reference_quantiles")
# Where the reference quantile function is sampled: evenly, plus the bright tail, where the few
# pixels of a sparse stain decide the challenge's p99.8.
QUANTILE_LEVELS = tuple(float(u) for u in np.unique(np.concatenate(
    [np.linspace(0.0, 1.0, 201), [0.991, 0.993, 0.997, 0.998, 0.999, 0.9995, 0.9999]])))


def is_quantile_match(params: dict) -> bool:
    return isinstance(params, dict) and set(params) == set(QUANTILE_KEYS)


def check_params(organelle: str, params: dict) -> None:
    """ValueError naming the organelle when the parameters make no sense."""
    if is_quantile_match(params):
        _check_quantile_params(organelle, params)
        return
    if not isinstance(params, dict) or set(params) != set(IDENTITY):
        raise ValueError(f"output_calibration[{organelle!r}] must have exactly {sorted(IDENTITY)} "
                         f"or exactly {sorted(QUANTILE_KEYS)}: {params}")
    q, f, gamma = (float(params[k]) for k in ("floor_quantile", "floor_fraction", "gamma"))
    if not 0.0 <= q < 1.0:
        raise ValueError(f"output_calibration[{organelle!r}]: floor_quantile {q} is not in [0, 1)")
    if not 0.0 <= f < 1.0:
        raise ValueError(f"output_calibration[{organelle!r}]: floor_fraction {f} is not in [0, 1)")
    if not 0.0 < gamma <= 10.0:
        raise ValueError(f"output_calibration[{organelle!r}]: gamma {gamma} is not in (0, 10]")


def canonical_params(params):
    """Plain Python floats (lists of them for quantiles): numpy scalars would not survive
    torch.load(weights_only=True). Anything unconvertible is returned as it is, for check_params."""
    if not isinstance(params, dict):
        return params
    try:
        return {k: [float(x) for x in v] if isinstance(v, (list, tuple, np.ndarray)) else float(v)
                for k, v in params.items()}
    except (TypeError, ValueError):
        return params


def _check_quantile_params(organelle: str, params: dict) -> None:
    try:
        levels = np.asarray(params["quantile_levels"], dtype=np.float64)
        reference = np.asarray(params["reference_quantiles"], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"output_calibration[{organelle!r}]: quantiles are not numbers ({exc})") from exc
    where = f"output_calibration[{organelle!r}]"
    if levels.ndim != 1 or levels.shape != reference.shape or levels.size < 2:
        raise ValueError(f"{where}: quantile_levels and reference_quantiles must be two lists of the "
                         f"same length >= 2 (got {levels.shape} and {reference.shape})")
    if not (np.all(np.isfinite(levels)) and np.all(np.isfinite(reference))):
        raise ValueError(f"{where}: quantiles must be finite")
    if levels[0] != 0.0 or levels[-1] != 1.0 or np.any(np.diff(levels) <= 0):
        raise ValueError(f"{where}: quantile_levels must rise strictly from 0 to 1")
    if np.any(np.diff(reference) < 0) or not reference[-1] > reference[0]:
        raise ValueError(f"{where}: reference_quantiles must be non-decreasing and not constant")


def reference_quantiles(images, levels=QUANTILE_LEVELS) -> list[float]:
    """The median over `images` (each already percentile-normalised) of their quantiles at `levels`."""
    table = np.stack([np.quantile(_sample(np.asarray(g, dtype=np.float64)), levels) for g in images])
    # The median of non-decreasing rows is non-decreasing: a valid quantile function.
    return [float(v) for v in np.median(table, axis=0)]


def _sample(x: np.ndarray) -> np.ndarray:
    step = max(1, int(np.sqrt(x.size / _QUANTILE_SAMPLE)))
    return x[::step, ::step]


def calibrate(x: np.ndarray, params: dict) -> np.ndarray:
    """The map above on one H x W prediction in [0, 1]; float32, in [0, 1]. A constant image stays 0."""
    x = np.asarray(x, dtype=np.float32)
    if is_quantile_match(params):
        return match_quantiles(x, params)
    q, f, gamma = (float(params[k]) for k in ("floor_quantile", "floor_fraction", "gamma"))
    low = float(x.min())
    floor = low
    if q > 0 or f > 0:
        qs = np.quantile(_sample(x), [q, 0.998])
        floor = max(float(qs[0]) if q > 0 else low, low + f * (float(qs[1]) - low))
    span = float(x.max()) - floor
    if not span > 0:
        return np.zeros_like(x)
    y = np.subtract(x, np.float32(floor))
    y *= np.float32(1.0 / span)
    np.clip(y, 0.0, 1.0, out=y)
    if gamma != 1.0:
        np.power(y, np.float32(gamma), out=y)
    return y


def match_quantiles(x: np.ndarray, params: dict) -> np.ndarray:
    """Quantile matching (module doc) of one H x W prediction; float32 in [0, 1]. A constant image stays 0."""
    x = np.asarray(x, dtype=np.float32)
    levels = np.asarray(params["quantile_levels"], dtype=np.float64)
    reference = np.asarray(params["reference_quantiles"], dtype=np.float64)
    own = np.quantile(_sample(x), levels)
    span = own[-1] - own[0]
    if not span > 0:
        return np.zeros_like(x)
    # np.interp needs rising knots: tied quantiles (a flat run of equal pixels) are split by a
    # hair, which sends the tied pixels to one value, as a monotone map must; untied knots, the
    # ends included, stay where they are.
    hair = np.arange(levels.size) * (span * 1e-9)
    own = np.maximum.accumulate(own - hair) + hair
    target = (reference - reference[0]) / (reference[-1] - reference[0])
    return np.interp(x, own, target).astype(np.float32)
