"""The phantom's fast drawing routines against plain reference implementations, bit for bit where
the committed held-out set depends on it. Two references (np.hypot, NumPy's complex division) come
from the platform's maths library: against those, within an ulp, since another libm may round
otherwise (the committed set's own regeneration test is the bit-for-bit guard)."""
from __future__ import annotations

import numpy as np
import pytest

from synthetic.phantom import _hypot, _polar_score
from synthetic.raster import ellipse_pixels, heading_turns, walk_until_invalid


@pytest.mark.parametrize("seed", range(6))
def test_ellipse_pixels_cover_the_ellipse_and_little_else(seed):
    rng = np.random.default_rng(seed)
    h, w = 90, 110
    cy, cx = rng.uniform(-10, 100, 2)
    along, across = rng.uniform(2, 40), rng.uniform(2, 25)
    angle = rng.uniform(0, 2 * np.pi)
    box = (int(max(0, cy - 50)), int(min(h, cy + 50)), int(max(0, cx - 50)), int(min(w, cx + 50)))
    y, x = ellipse_pixels(box, cy, cx, along, across, angle)
    yy, xx = np.mgrid[box[0]:box[1], box[2]:box[3]]
    dy, dx = yy - cy, xx - cx
    u = (dx * np.cos(angle) + dy * np.sin(angle)) / along
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / across
    rho = np.hypot(u, v)
    inside = {(a, b) for a, b in zip(yy[rho < 1], xx[rho < 1])}
    listed = list(zip(y.tolist(), x.tolist()))
    assert inside <= set(listed)
    assert listed == sorted(set(listed))  # row-major, each pixel once
    assert all(box[0] <= a < box[1] and box[2] <= b < box[3] for a, b in listed)
    # The slack is a pixel or two at the end of each row, not the box.
    near = {(a, b) for a, b in zip(yy[rho < 1 + 3 / min(along, across)], xx[rho < 1 + 3 / min(along, across)])}
    assert set(listed) <= near


def _reference_walks(start_y, start_x, angle, turns, step):
    """Every step of every chain, one cumulative sum over all steps (the former implementation)."""
    heading = angle[:, None].astype(np.float32) + np.cumsum(turns, axis=1)
    ys = start_y[:, None] + step * np.cumsum(np.sin(heading), axis=1) - step * np.sin(heading[:, :1])
    xs = start_x[:, None] + step * np.cumsum(np.cos(heading), axis=1) - step * np.cos(heading[:, :1])
    return ys.astype(np.float32), xs.astype(np.float32)


@pytest.mark.parametrize("block", [1, 7, 32, 500])
def test_walk_until_invalid_matches_the_full_walk_truncated(block):
    rng = np.random.default_rng(block)
    n, n_steps, step = 300, 140, 0.75
    start_y = rng.uniform(20, 80, n).astype(np.float32)
    start_x = rng.uniform(20, 80, n).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi, n)
    turns = heading_turns(n, n_steps, 0.3, rng)
    length = rng.uniform(0, n_steps, n)

    def in_disc(chains, first, ys, xs):
        steps = np.arange(first, first + ys.shape[1])[None, :]
        return (np.hypot(ys - 50, xs - 50) < 35) & (steps < length[chains, None])

    ys, xs, kept = walk_until_invalid(start_y, start_x, angle, turns, step, in_disc, block=block)
    ref_y, ref_x = _reference_walks(start_y, start_x, angle, turns, step)
    ref_kept = np.logical_and.accumulate(in_disc(np.arange(n), 0, ref_y, ref_x), axis=1)
    assert np.array_equal(kept, ref_kept)
    assert 0 < kept.sum() < kept.size
    assert np.array_equal(ys[kept], ref_y[kept]) and np.array_equal(xs[kept], ref_x[kept])


def test_hypot_is_numpy_hypot():
    rng = np.random.default_rng(0)
    scale = 10.0 ** rng.uniform(-30, 30, 1_000_000)
    u = (rng.standard_normal(scale.size) * scale).astype(np.float32)
    v = (rng.standard_normal(scale.size) * scale * 10.0 ** rng.uniform(-4, 4, scale.size)).astype(np.float32)
    u[::17], v[::13] = 0, -0.0
    np.testing.assert_array_max_ulp(_hypot(u, v), np.hypot(u, v), maxulp=1)


def test_polar_score_matches_the_plain_complex_formula():
    rng = np.random.default_rng(1)
    u = (rng.standard_normal(500_000) * 1.5).astype(np.float32)
    v = (rng.standard_normal(500_000) * 1.5).astype(np.float32)
    u[::11], v[::11] = 0, 0
    amps, phases = 0.15 * rng.standard_normal(7), rng.uniform(0, 2 * np.pi, 7)
    # The former implementation: complex quotient, then Horner's rule.
    rho = np.hypot(u, v)
    z = (u + np.complex64(1j) * v) / np.maximum(rho, np.float32(1e-6))
    acc = np.full(z.shape, np.complex64(amps[-1] * np.exp(1j * phases[-1])), np.complex64)
    for a, p in zip(amps[-2::-1], phases[-2::-1]):
        acc *= z
        acc += np.complex64(a * np.exp(1j * p))
    acc *= z
    acc *= z
    expected = rho / np.maximum(acc.real + np.float32(1), np.float32(0.3))
    np.testing.assert_allclose(_polar_score(u, v, amps, phases), expected, rtol=1e-6, atol=1e-7)
    # And it is the normalised radius of r(θ) = 1 + Σ a_k cos(kθ + φ_k), k = 2, 3, ...
    theta = np.arctan2(v, u).astype(np.float64)
    r = 1 + sum(a * np.cos(k * theta + p) for k, (a, p) in enumerate(zip(amps, phases), start=2))
    assert np.allclose(expected, np.hypot(u, v) / np.maximum(r, 0.3), rtol=1e-4, atol=1e-5)
