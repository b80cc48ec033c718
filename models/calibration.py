"""Per-organelle output calibration: a monotone intensity map fitted on validation data.

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
"""
from __future__ import annotations

import numpy as np

# Quantiles of a large image come from a strided subsample: same answer to ~1e-3, far cheaper.
_QUANTILE_SAMPLE = 1 << 20
IDENTITY = {"floor_quantile": 0.0, "floor_fraction": 0.0, "gamma": 1.0}


def check_params(organelle: str, params: dict) -> None:
    """ValueError naming the organelle when the parameters make no sense."""
    if not isinstance(params, dict) or set(params) != set(IDENTITY):
        raise ValueError(f"output_calibration[{organelle!r}] must have exactly {sorted(IDENTITY)}: {params}")
    q, f, gamma = (float(params[k]) for k in ("floor_quantile", "floor_fraction", "gamma"))
    if not 0.0 <= q < 1.0:
        raise ValueError(f"output_calibration[{organelle!r}]: floor_quantile {q} is not in [0, 1)")
    if not 0.0 <= f < 1.0:
        raise ValueError(f"output_calibration[{organelle!r}]: floor_fraction {f} is not in [0, 1)")
    if not 0.0 < gamma <= 10.0:
        raise ValueError(f"output_calibration[{organelle!r}]: gamma {gamma} is not in (0, 10]")


def _sample(x: np.ndarray) -> np.ndarray:
    step = max(1, int(np.sqrt(x.size / _QUANTILE_SAMPLE)))
    return x[::step, ::step]


def calibrate(x: np.ndarray, params: dict) -> np.ndarray:
    """The map above on one H x W prediction in [0, 1]; float32, in [0, 1]. A constant image stays 0."""
    x = np.asarray(x, dtype=np.float32)
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
