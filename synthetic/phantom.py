"""The cell phantom of one field of view: geometry, organelles and the optical path they create.

One phantom drives both sides of a training pair. Transmitted light sees the optical path
difference (OPD = Σ Δn × thickness) and a little absorption; each fluorescence channel sees the
density of one labelled structure. Contrasts follow measured refractive indices of cell parts: the
nucleus differs from the cytoplasm by only ~0.002 in index (it shows in TL mostly because the cell
is thickest over it, by its envelope, its chromatin texture and its nucleoli), nucleoli and lipid
droplets stand out, and 25 nm microtubules or thin actin bundles are nearly invisible.

All maps live on a padded canvas (`Phantom.crop` selects the field of view) so that defocus and
blur, computed with periodic FFTs, do not wrap the far edge of the image into the near one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.fft as sfft

from .fourier import WORKERS, fast_shape, frequency_grid, gaussian_otf
from .parallel import for_each_band, thread_map
from .raster import GridPoints, PixelSampler, ellipse_pixels, heading_turns, lookup, splat, walk_until_invalid

CANVAS_MARGIN_PX = 48  # > the widest defocus blur (~z·NA_c/n) for the deepest slices we make


@dataclass(frozen=True)
class CellLine:
    """Morphology of one cell line; one per study. Lengths in µm."""

    cell_radius_um: float = 12.0       # mean radius of a spread cell
    radius_spread: float = 0.2         # relative standard deviation of the radius
    elongation: float = 1.5            # mean ratio of the long to the short axis
    roughness: float = 0.08            # amplitude of the boundary's low harmonics
    confluence: float = 0.6            # cell area / FOV area aimed at (touching when high)
    nucleus_fraction: float = 0.42     # nucleus radius / cell radius
    nucleus_offset: float = 0.25       # how far the nucleus may sit off the cell centre
    height_um: float = 4.0             # thickness over the nucleus
    lamella_um: float = 0.5            # thickness of the flat periphery
    mito_density: float = 0.05         # mitochondria per µm² of cytoplasm
    mito_length_um: float = 2.5        # mean length; long ones form networks
    mito_persistence_um: float = 2.5   # persistence length: small = wiggly
    microtubules_per_cell: float = 90
    microtubule_persistence_um: float = 15.0
    stress_fibres_per_cell: float = 10
    fibre_spread_rad: float = 0.35     # spread of stress-fibre orientation around the cell axis
    vesicle_density: float = 0.12      # granules per µm² of cytoplasm
    droplets_per_cell: float = 3.0     # lipid droplets per cell
    nucleoli_max: int = 4
    nucleus_dn: float = 0.002          # nuclear index minus cytoplasmic index (tiny, may be < 0)
    # The nucleus. The defaults are profile v1's nuclei, bit for bit; the calibrated profiles
    # (synthetic/profiles.py) set them from the real references (synthetic/realism.py statistics).
    nucleus_roughness: float = 0.04    # amplitude of the outline's harmonics k = 2..4
    nucleus_flatness: int = 2          # thickness ∝ sqrt(1 - r^flatness): 2 an ellipsoid, 4 flat-topped
    nucleolus_radius_um: tuple[float, float] = (0.45, 1.0)
    nucleolus_dna: float = 0.75        # how much DNA stain a nucleolus excludes at its thickest
    nucleolus_dark_um: float | None = None  # path (µm) for full darkness; None: v1, relative to the field's peak
    chromatin_slope: float | None = None    # log-log power slope of the chromatin; None: v1's band-pass
    chromatin_contrast: float = 0.35   # relative DNA density modulation by the chromatin texture
    # These need a field's biology generator (make_phantom's biology_rng); without one they are off.
    dna_spread: float = 0.0            # log-normal sigma of the cell-to-cell DNA content (cell cycle)
    lobed_fraction: float = 0.0        # share of kidney-shaped or bilobed nuclei
    mitotic_fraction: float = 0.0      # share of mitotic cells: a small, condensed, bright chromatin mass
    debris_per_mm2: float = 0.0        # round refractile bodies in the medium (dead cells, debris)
    debris_dna_fraction: float = 0.3   # share of them with a pyknotic nucleus: small, condensed, bright


@dataclass(frozen=True)
class IndexContrast:
    """Refractive-index differences (Δn) and the thicknesses over which they act (µm)."""

    cytoplasm: float = 0.022           # cytoplasm vs medium
    nucleolus: float = 0.025           # vs nucleoplasm
    envelope: float = 0.02             # lamina + perinuclear ER: a visible rim in PC and DIC
    envelope_um: float = 0.6           # apparent path through the nuclear envelope at its rim
    chromatin: float = 0.0015          # std of the nuclear index texture
    vesicle: float = 0.03
    vesicle_um: float = 0.4
    droplet: float = 0.08
    droplet_um: float = 0.8
    mitochondrion: float = 0.03
    mitochondrion_um: float = 0.35
    microtubule: float = 0.05
    microtubule_um: float = 0.025
    actin: float = 0.02
    actin_um: float = 0.08


@dataclass
class Phantom:
    pixel_size_um: float
    crop: tuple[slice, slice]
    optical_path_um: np.ndarray        # OPD vs the medium (µm) on the canvas
    absorption: np.ndarray             # amplitude attenuation (natural log units) on the canvas
    organelles: dict[str, np.ndarray]  # sharp density per organelle; blur by STRUCTURE_WIDTH_UM + PSF
    labels: np.ndarray                 # 0 = background, k = cell k
    nucleus: np.ndarray                # bool mask of nuclei
    centrosomes: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))

    def phase(self, wavelength_um: float) -> np.ndarray:
        return (2 * np.pi / wavelength_um) * self.optical_path_um

    def fov(self, array: np.ndarray) -> np.ndarray:
        """The field-of-view part of a canvas-sized map."""
        return array[..., self.crop[0], self.crop[1]]


@dataclass
class _Cells:
    """Per-cell parameters (pixel units) and the label maps they rasterise to."""

    cy: np.ndarray
    cx: np.ndarray
    angle: np.ndarray
    a: np.ndarray                      # semi-axes of the cell
    b: np.ndarray
    ny: np.ndarray                     # nucleus centre and semi-axes
    nx: np.ndarray
    na: np.ndarray
    nb: np.ndarray
    centrosome: np.ndarray             # (n, 2) y, x
    labels: np.ndarray
    score: np.ndarray                  # normalised radius in the owning cell (0 centre, 1 edge)
    nscore: np.ndarray                 # normalised radius in the owning cell's nucleus
    radius: np.ndarray                 # mean cell radius (px) of the owning cell
    nucleoli_um: np.ndarray            # path length through nucleoli
    envelope: np.ndarray               # 0..1 profile of the nuclear rim
    dna_gain: np.ndarray | None = None  # per label (0: background) DNA stain factor; None: all 1


def _place_centres(shape, radius_px, count, rng, anchor: tuple[slice, slice]) -> np.ndarray:
    """Dart throwing: centres closer than ~1.3 radii are refused, so touching cells do not stack.

    The first cell is centred in the middle 60 % of the field of view (`anchor`), so no field of
    view is empty, as an acquisition aimed at cells never is.
    """
    h, w = shape
    candidates = np.stack([rng.uniform(-0.2 * radius_px, h + 0.2 * radius_px, 8 * count + 8),
                           rng.uniform(-0.2 * radius_px, w + 0.2 * radius_px, 8 * count + 8)], 1)
    for axis, sl in enumerate(anchor):
        size = sl.stop - sl.start
        candidates[0, axis] = sl.start + size * rng.uniform(0.2, 0.8)
    kept: list[np.ndarray] = []
    for c in candidates:
        if len(kept) >= count:
            break
        if not kept or np.min(np.hypot(*(np.asarray(kept) - c).T)) > 1.3 * radius_px:
            kept.append(c)
    return np.asarray(kept, np.float32).reshape(-1, 2)


def _polar_score(u: np.ndarray, v: np.ndarray, amps, phases) -> np.ndarray:
    """Normalised radius ρ / r(θ) for a boundary r(θ) = 1 + Σ_k a_k cos(kθ + φ_k), k = 2, 3, ...

    With z = e^{iθ} = (u + iv)/ρ and c_k = a_k e^{iφ_k}, Σ_k a_k cos(kθ + φ_k) = Re Σ_k c_k z^k,
    evaluated by Horner's rule: one complex multiply-add per harmonic, no arctan2 or cos.
    """
    rho = _hypot(u, v)
    # NumPy divides a complex number by a real one as (u + iv) · (1/ρ), the reciprocal rounded to
    # float32 first; written out that way, z costs three real passes instead of a complex division.
    inverse = np.float32(1) / np.maximum(rho, np.float32(1e-6))
    z = np.empty(u.shape, np.complex64)
    np.multiply(u, inverse, out=z.real)
    np.multiply(v, inverse, out=z.imag)
    coefficients = [np.complex64(a * np.exp(1j * p)) for a, p in zip(amps, phases)]
    acc = np.full(z.shape, coefficients[-1], np.complex64)
    for c in coefficients[-2::-1]:
        acc *= z
        acc += c
    acc *= z
    acc *= z                                   # the lowest harmonic is k = 2
    r = acc.real + np.float32(1)
    return rho / np.maximum(r, np.float32(0.3))  # rough outlines stay star-shaped around the centre


def _hypot(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """np.hypot of float32 arrays, bit for bit, in a third of its time: glibc's hypotf (≥ 2.35)
    rounds the double-precision sqrt(u² + v²), in which the squares of float32 values are exact."""
    u64 = u.astype(np.float64)
    v64 = v.astype(np.float64)
    np.square(u64, out=u64)
    np.square(v64, out=v64)
    u64 += v64
    return np.sqrt(u64, out=u64).astype(np.float32)


def _rasterise_cells(shape, px, line: CellLine, rng, anchor: tuple[slice, slice],
                     biology: np.random.Generator | None = None) -> _Cells:
    h, w = shape
    r_mean = line.cell_radius_um / px
    expected = line.confluence * h * w / (np.pi * r_mean ** 2)
    centres = _place_centres(shape, r_mean, max(1, int(rng.poisson(expected))), rng, anchor)
    n = len(centres)
    radius = r_mean * np.clip(1 + line.radius_spread * rng.standard_normal(n), 0.5, 1.8)
    elong = 1 + (line.elongation - 1) * rng.uniform(0.4, 1.6, n)
    a, b = radius * np.sqrt(elong), radius / np.sqrt(elong)
    angle = rng.uniform(0, np.pi, n)
    nfrac = line.nucleus_fraction * np.clip(1 + 0.12 * rng.standard_normal(n), 0.7, 1.3)
    n_elong = 1 + 0.4 * (elong - 1)
    na = nfrac * radius * np.sqrt(n_elong)
    nb = nfrac * radius / np.sqrt(n_elong)
    dna_gain, mitotic, lobes = None, np.zeros(n, bool), np.zeros((n, 3))
    if biology is not None:  # calibrated nuclei: drawn from their own stream, `rng` is untouched
        mitotic = biology.random(n) < line.mitotic_fraction
        # Condensed chromosomes: about a third of the area, the DNA packed ~2.5x denser.
        na, nb = np.where(mitotic, 0.55 * na, na), np.where(mitotic, 0.55 * nb, nb)
        gain = np.exp(line.dna_spread * biology.standard_normal(n)) * np.where(mitotic, 2.5, 1.0)
        dna_gain = np.concatenate([[1.0], gain]).astype(np.float32)
        # Kidney-shaped (k = 2) or bilobed (k = 3) nuclei: one strong low harmonic of the outline.
        lobed = (biology.random(n) < line.lobed_fraction) & ~mitotic
        lobes[np.flatnonzero(lobed), biology.integers(0, 2, n)[lobed]] = biology.uniform(0.12, 0.22, n)[lobed]
    shift = rng.uniform(-1, 1, n) * line.nucleus_offset * np.maximum(a - na, 0)
    ny = centres[:, 0] + shift * np.sin(angle)
    nx = centres[:, 1] + shift * np.cos(angle)
    # The centrosome sits just outside the nucleus, on the side facing the cell's larger part.
    ca = np.where(rng.random(n) < 0.7, angle + np.where(shift > 0, np.pi, 0.0), rng.uniform(0, 2 * np.pi, n))
    reach = np.hypot(na * np.cos(ca - angle), nb * np.sin(ca - angle)) + 1.0 / px
    centrosome = np.stack([ny + reach * np.sin(ca), nx + reach * np.cos(ca)], 1).astype(np.float32)

    # Flat views of the canvas maps: each cell writes to the pixels it wins, by flat index.
    comp = np.full(h * w, np.inf, np.float32)
    labels = np.zeros(h * w, np.int32)
    score = np.full(h * w, np.inf, np.float32)
    nscore = np.full(h * w, np.inf, np.float32)
    rad = np.zeros(h * w, np.float32)
    nucleoli = np.zeros(h * w, np.float32)
    envelope = np.zeros(h * w, np.float32)
    rough = line.roughness
    for i in range(n):
        amps = rough * rng.standard_normal(7) / np.arange(1, 8) ** 0.8  # k = 2..8: lobes, protrusions
        phases = rng.uniform(0, 2 * np.pi, 7)
        namps = line.nucleus_roughness * rng.standard_normal(3) / np.arange(1, 4)
        if biology is not None:
            namps = namps + lobes[i]
        nphases = rng.uniform(0, 2 * np.pi, 3)
        reach = 1 + np.abs(amps).sum()  # r(θ) never exceeds 1 + Σ|a_k|
        extent = a[i] * reach + 2
        y0, y1 = int(max(0, centres[i, 0] - extent)), int(min(h, centres[i, 0] + extent + 1))
        x0, x1 = int(max(0, centres[i, 1] - extent)), int(min(w, centres[i, 1] + extent + 1))
        if y1 <= y0 or x1 <= x0:
            continue
        # The cell lies inside the ellipse of semi-axes a·reach, b·reach: score only its pixels.
        py, px_ = ellipse_pixels((y0, y1, x0, x1), centres[i, 0], centres[i, 1],
                                 a[i] * reach + 1, b[i] * reach + 1, angle[i])
        yy, xx = py.astype(np.float32), px_.astype(np.float32)
        ca_, sa_ = np.float32(np.cos(angle[i])), np.float32(np.sin(angle[i]))
        dy, dx = yy - centres[i, 0], xx - centres[i, 1]
        u, v = (dx * ca_ + dy * sa_) / np.float32(a[i]), (-dx * sa_ + dy * ca_) / np.float32(b[i])
        s = _polar_score(u, v, amps, phases)
        # Only pixels inside this cell (s < 1) can be won; the nucleus score is needed there only.
        inside = s < 1
        py, px_, yy, xx, s = py[inside], px_[inside], yy[inside], xx[inside], s[inside]
        dy, dx = yy - np.float32(ny[i]), xx - np.float32(nx[i])
        u, v = (dx * ca_ + dy * sa_) / np.float32(na[i]), (-dx * sa_ + dy * ca_) / np.float32(nb[i])
        ns = _polar_score(u, v, namps, nphases)
        mine = np.where(ns < 1, 0.3 * s, s)       # a nucleus is never cut by a neighbour's cytoplasm
        flat = py * w + px_
        win = mine < comp[flat]
        flat, ns, local_y, local_x = flat[win], ns[win], py[win] - y0, px_[win] - x0
        comp[flat] = mine[win]
        labels[flat] = i + 1
        score[flat] = s[win]
        nscore[flat] = ns
        rad[flat] = radius[i]
        # Nucleoli: 1..k spheres inside the nucleus; path length 2·sqrt(r² - d²), each drawn in
        # its own small box.
        k = int(rng.integers(1, line.nucleoli_max + 1))
        paths = np.zeros((y1 - y0, x1 - x0), np.float32)
        for _ in range(k):
            rho, phi = 0.55 * np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
            oy = ny[i] + rho * (na[i] * np.cos(phi) * sa_ + nb[i] * np.sin(phi) * ca_) - y0
            ox = nx[i] + rho * (na[i] * np.cos(phi) * ca_ - nb[i] * np.sin(phi) * sa_) - x0
            r_nl = rng.uniform(*line.nucleolus_radius_um) / px
            ya, yb = int(max(0, oy - r_nl - 1)), int(min(y1 - y0, oy + r_nl + 2))
            xa, xb = int(max(0, ox - r_nl - 1)), int(min(x1 - x0, ox + r_nl + 2))
            if yb <= ya or xb <= xa:
                continue
            d2 = (np.arange(ya, yb, dtype=np.float32)[:, None] - oy) ** 2 + \
                 (np.arange(xa, xb, dtype=np.float32)[None, :] - ox) ** 2
            paths[ya:yb, xa:xb] += 2 * np.sqrt(np.maximum(np.float32(r_nl ** 2) - d2, 0)) * np.float32(px)
        if mitotic[i]:
            paths[:] = 0  # nucleoli dissolve in mitosis
        # Pixels this cell takes over lose what an earlier neighbour drew there.
        nucleoli[flat] = np.where(ns < 1, paths[local_y, local_x], np.float32(0))
        envelope[flat] = 0
        near_rim = (ns > 0.7) & (ns < 1.3)  # the envelope profile is ~0 elsewhere
        rim_um = (1 - ns[near_rim]) * np.float32(np.sqrt(na[i] * nb[i]) * px)
        envelope[flat[near_rim]] = np.exp(-np.square(rim_um / np.float32(0.25)))
    labels, score, nscore, rad, nucleoli, envelope = (
        m.reshape(shape) for m in (labels, score, nscore, rad, nucleoli, envelope))
    return _Cells(centres[:, 0], centres[:, 1], angle, a, b, ny, nx, na, nb, centrosome,
                  labels, score, nscore, rad, nucleoli, envelope, dna_gain)


# Physical widths (Gaussian σ, µm) of the fluorescent structures. Their maps are kept as sharp
# splats; the width is applied together with the microscope's PSF (one blur per image, not two).
STRUCTURE_WIDTH_UM = {"nucleus": 0.0, "mitochondria": 0.14, "tubulin": 0.1, "actin": 0.1}


def _line_density(shape, ys, xs, weight, sigma_um: float, px: float) -> np.ndarray:
    """Splat chains (weight = pixels of length per point) scaled so that, once blurred by a
    Gaussian of `sigma_um`, a single tube has a peak occupancy of ~1."""
    return splat(shape, ys, xs, weight * np.float32(np.sqrt(2 * np.pi) * sigma_um / px))


def _point_density(shape, ys, xs, weight, sigma_um: float, px: float) -> np.ndarray:
    """Splat points scaled so that, once blurred by `sigma_um`, each is a blob of peak ~1."""
    return splat(shape, ys, xs, weight * np.float32(2 * np.pi * (sigma_um / px) ** 2))


def _turn_sd(step_px: float, px: float, persistence_um: float) -> float:
    """Heading noise per step for a worm-like chain of the given persistence length."""
    return float(np.sqrt(2 * step_px * px / persistence_um))


def _microtubules(cells: _Cells, sampler: PixelSampler, line: CellLine, px, rng) -> np.ndarray:
    n_cells = cells.cy.size
    counts = rng.poisson(line.microtubules_per_cell, n_cells)
    owner = np.repeat(np.arange(n_cells), counts)
    if owner.size == 0:
        return np.zeros(cells.labels.shape, np.float32)
    step = 1.0
    n_steps = int(np.ceil(2.4 * cells.a.max() / step))
    sy = cells.centrosome[owner, 0] + rng.normal(0, 0.3 / px, owner.size).astype(np.float32)
    sx = cells.centrosome[owner, 1] + rng.normal(0, 0.3 / px, owner.size).astype(np.float32)
    # A third of the microtubules are not anchored at the centrosome: they start anywhere.
    free = rng.random(owner.size) < 0.3
    n_free = int(free.sum())
    fy, fx = sampler(n_free, rng)
    if fy.size < n_free:   # no cytoplasm in the field (a small crop inside a nucleus)
        free[:] = False
    sy[free], sx[free] = fy, fx
    owner[free] = lookup(cells.labels, fy, fx) - 1
    angle = rng.uniform(0, 2 * np.pi, owner.size)
    turns = heading_turns(owner.size, n_steps, _turn_sd(step, px, line.microtubule_persistence_um), rng)
    length = rng.uniform(0.5, 1.0, owner.size) * 2.4 * cells.a[owner] / step

    def in_own_cell(chains, first, ys, xs):
        mine = owner[chains, None]
        steps = np.arange(first, first + ys.shape[1])[None, :]
        return (lookup(cells.labels, ys, xs) == mine + 1) & (mine >= 0) & (steps < length[chains, None])

    ys, xs, kept = walk_until_invalid(sy, sx, angle, turns, step, in_own_cell)
    ys, xs = ys[kept], xs[kept]
    over_nucleus = lookup(cells.nscore, ys, xs, outside=np.inf) < 1
    weight = np.where(over_nucleus, 0.5, 1.0) * step
    return _line_density(cells.labels.shape, ys, xs, weight, STRUCTURE_WIDTH_UM["tubulin"], px)


def _mitochondria(cells: _Cells, sampler: PixelSampler, cyto_area_um2: float, line: CellLine, px, rng
                  ) -> np.ndarray:
    sy, sx = sampler(int(rng.poisson(line.mito_density * cyto_area_um2)), rng)
    if sy.size == 0:
        return np.zeros(cells.labels.shape, np.float32)
    step = 0.75
    max_len = 4 * line.mito_length_um / px
    n_steps = int(np.ceil(max_len / step))
    length = np.clip(rng.exponential(line.mito_length_um / px, sy.size), 0.4 / px, max_len) / step
    angle = rng.uniform(0, 2 * np.pi, sy.size)
    turns = heading_turns(sy.size, n_steps, _turn_sd(step, px, line.mito_persistence_um), rng)
    owner = lookup(cells.labels, sy, sx)

    def in_own_cytoplasm(chains, first, ys, xs):
        mine = owner[chains, None]
        steps = np.arange(first, first + ys.shape[1])[None, :]
        points = GridPoints(cells.labels.shape, ys, xs)
        return ((points.values(cells.labels) == mine) & (mine > 0)
                & (points.values(cells.nscore, outside=np.inf) > 1.02) & (steps < length[chains, None]))

    ys, xs, kept = walk_until_invalid(sy, sx, angle, turns, step, in_own_cytoplasm)
    brightness = rng.uniform(0.6, 1.4, sy.size)
    chain = np.nonzero(kept)[0]
    return _line_density(cells.labels.shape, ys[kept], xs[kept], step * brightness[chain],
                         STRUCTURE_WIDTH_UM["mitochondria"], px)


def _stress_fibres(cells: _Cells, line: CellLine, px, rng) -> np.ndarray:
    n_cells = cells.cy.size
    counts = rng.poisson(line.stress_fibres_per_cell, n_cells)
    owner = np.repeat(np.arange(n_cells), counts)
    if owner.size == 0:
        return np.zeros(cells.labels.shape, np.float32)
    theta = cells.angle[owner] + rng.normal(0, line.fibre_spread_rad, owner.size)
    across = rng.uniform(-0.85, 0.85, owner.size) * cells.b[owner]
    along = rng.uniform(-0.3, 0.3, owner.size) * cells.a[owner]
    ang = cells.angle[owner]
    oy = cells.cy[owner] + along * np.sin(ang) + across * np.cos(ang)
    ox = cells.cx[owner] + along * np.cos(ang) - across * np.sin(ang)
    # Each bundle spans part of the cell (30-90 % of its long axis), ending at focal adhesions.
    half_len = rng.uniform(0.3, 0.9, owner.size) * cells.a[owner]
    t = np.arange(-1.0, 1.0, 0.75 / cells.a.max(), dtype=np.float32)[None, :]
    ys = oy[:, None] + t * (half_len * np.sin(theta))[:, None]
    xs = ox[:, None] + t * (half_len * np.cos(theta))[:, None]
    spacing = 2 * half_len[:, None] / t.shape[1]  # px of length each point stands for
    points = GridPoints(cells.labels.shape, ys, xs)
    valid = points.values(cells.labels) == (owner[:, None] + 1)
    under_nucleus = points.values(cells.nscore, outside=np.inf) < 1
    strength = rng.uniform(0.4, 1.2, owner.size)[:, None] * np.where(under_nucleus, 0.3, 1.0)
    return _line_density(cells.labels.shape, ys, xs, valid * spacing * strength, STRUCTURE_WIDTH_UM["actin"], px)


def _centrosome_clouds(cells: _Cells, px, rng, sigma_um: float = 0.4, points: int = 64) -> np.ndarray:
    """Pericentriolar tubulin: a Gaussian cloud of points (σ ≈ 0.4 µm) around each centrosome."""
    n = cells.centrosome.shape[0]
    ys = cells.centrosome[:, 0:1] + rng.normal(0, sigma_um / px, (n, points))
    xs = cells.centrosome[:, 1:2] + rng.normal(0, sigma_um / px, (n, points))
    # Peak ~1 after the tubulin width blur: total weight 2π σ² spread over the points.
    return splat(cells.labels.shape, ys, xs, np.float32(2 * np.pi * (sigma_um / px) ** 2 / points))


def _chromatin_texture(shape, px, rng, workers: int = WORKERS, slope: float | None = None) -> np.ndarray:
    """Noise of unit standard deviation: band-passed (~0.5-2 µm blobs, v1) or, with `slope`, a power
    law |F|² ∝ f^slope from ~3 µm down to the optics' resolution, as chromatin's fractal-like
    organisation gives (a shallower spectrum: detail at every scale, not one blob size)."""
    noise = rng.standard_normal(shape, dtype=np.float32)
    fy, fx = frequency_grid(shape, px, real=True)
    f2 = fy * fy + fx * fx
    if slope is None:
        band = gaussian_otf(f2, 0.25) - gaussian_otf(f2, 1.0)
    else:
        band = np.maximum(f2, np.float32(1e-4)) ** np.float32(slope / 4) * (1 - gaussian_otf(f2, 0.5))
        band *= gaussian_otf(f2, 0.04)
    spec = sfft.rfft2(noise, workers=workers) * band
    tex = sfft.irfft2(spec, s=shape, workers=workers).astype(np.float32)
    return tex / max(float(tex.std()), 1e-6)


class _Blur:
    """Gaussian blurs of canvas-sized maps in Fourier space; each σ's transfer function is made once."""

    def __init__(self, shape: tuple[int, int], px: float):
        self.shape = shape
        fy, fx = frequency_grid(shape, px, real=True)
        self.f2 = fy * fy + fx * fx
        self.otfs: dict[float, np.ndarray] = {}

    def otf(self, sigma_um: float) -> np.ndarray:
        if sigma_um not in self.otfs:
            self.otfs[sigma_um] = gaussian_otf(self.f2, sigma_um)
        return self.otfs[sigma_um]

    def blend(self, maps: list[tuple[np.ndarray, float]]) -> np.ndarray:
        """Σ_k blur(map_k, σ_k) with one forward FFT per map and a single inverse FFT."""
        total = None
        for image, sigma in maps:
            term = sfft.rfft2(image, workers=WORKERS)
            term *= self.otf(sigma)
            if total is None:
                total = term
            else:
                total += term
        return sfft.irfft2(total, s=self.shape, workers=WORKERS)


@dataclass
class _Body:
    """Where the cells and their nuclei are and how thick they are (µm), on the canvas."""

    in_cell: np.ndarray
    in_nucleus: np.ndarray
    score: np.ndarray                  # the owning cell's normalised radius; 1 outside cells
    height: np.ndarray                 # thickness of the cell
    nuc_thick: np.ndarray              # thickness of the nucleus
    cytoplasm: np.ndarray              # thickness of the cell outside its nucleus


def _cell_body(cells: _Cells, line: CellLine) -> _Body:
    shape = cells.labels.shape
    body = _Body(np.empty(shape, bool), np.empty(shape, bool),
                 *(np.empty(shape, np.float32) for _ in range(4)))

    def band(rows: slice) -> None:
        nscore = cells.nscore[rows]
        body.in_cell[rows] = in_cell = cells.labels[rows] > 0
        body.in_nucleus[rows] = in_nucleus = nscore < 1
        body.score[rows] = score = np.where(in_cell, cells.score[rows], np.float32(1))
        # Thickness: a thin lamella that tapers at the edge, rising to a dome over the nucleus that
        # falls off just beyond it (the nucleus bulges: its outline is a thickness step in TL).
        taper = np.sqrt(np.maximum(1 - score ** 4, 0))
        dome = np.maximum(1 - np.square(np.where(in_cell, nscore, np.float32(9)) / np.float32(1.35)), 0)
        body.height[rows] = height = (np.float32(line.lamella_um)
                                      + np.float32(line.height_um - line.lamella_um) * dome) * taper * in_cell
        body.nuc_thick[rows] = np.where(
            in_nucleus, np.float32(0.85 * line.height_um) * np.sqrt(np.maximum(1 - nscore ** line.nucleus_flatness, 0)),
            np.float32(0))
        body.cytoplasm[rows] = np.where(in_cell & ~in_nucleus, height, np.float32(0))

    for_each_band(band, shape[0])
    return body


@dataclass
class _Structures:
    """The sharp maps of what lies inside the cells, each drawn from its own random stream."""

    texture: np.ndarray                # chromatin, unit standard deviation
    mitochondria: np.ndarray
    tubules: np.ndarray
    fibres: np.ndarray
    vesicles: np.ndarray
    droplets: np.ndarray
    clouds: np.ndarray                 # pericentriolar tubulin


def _sharp_maps(cells: _Cells, body: _Body, inside: _Structures, line: CellLine, index: IndexContrast,
                px: float) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(OPD, absorption, fluorescent densities) before any blur, droplets excepted."""
    shape = cells.labels.shape
    fine_opd, fine_abs, dna, tubulin, actin = (np.empty(shape, np.float32) for _ in range(5))
    nucleoli_peak = max(float(cells.nucleoli_um.max()), 1e-6)

    def band(rows: slice) -> None:
        height, nuc_thick, in_nucleus = body.height[rows], body.nuc_thick[rows], body.in_nucleus[rows]
        nucleoli, texture = cells.nucleoli_um[rows], inside.texture[rows]
        # Everything thin shares one anti-aliasing blur (the pupil cannot tell 0.1 from 0.15 µm);
        # droplets, larger, get their own. Widths only rescale peaks, so path integrals are kept.
        fine_opd[rows] = (index.cytoplasm * height
                          + (line.nucleus_dn + index.chromatin * texture) * nuc_thick
                          + index.nucleolus * nucleoli
                          + index.envelope * index.envelope_um * cells.envelope[rows] * in_nucleus
                          + index.vesicle * index.vesicle_um * inside.vesicles[rows]
                          + index.mitochondrion * index.mitochondrion_um * inside.mitochondria[rows]
                          + index.microtubule * index.microtubule_um * inside.tubules[rows]
                          + index.actin * index.actin_um * inside.fibres[rows])
        # Droplets and granules scatter light out of the aperture: a little apparent absorption.
        # Nucleoli and the dense cell body also scatter a little, so cells stay faintly visible in focus.
        fine_abs[rows] = 0.015 * inside.vesicles[rows] + 0.005 * height + 0.01 * nucleoli
        # Fluorescent densities. DNA dyes fill the nucleus, brighter in heterochromatin, dim in nucleoli.
        nucleolar = (nucleoli / nucleoli_peak if line.nucleolus_dark_um is None
                     else np.minimum(nucleoli / np.float32(line.nucleolus_dark_um), np.float32(1)))
        dna[rows] = (nuc_thick / np.float32(line.height_um) * np.maximum(1 + line.chromatin_contrast * texture, 0.2)
                     * (1 - line.nucleolus_dna * nucleolar))
        if cells.dna_gain is not None:
            dna[rows] *= cells.dna_gain[cells.labels[rows]]
        cyto_norm = height / np.float32(max(line.height_um, 1e-6))
        cortex = np.exp(-np.square((1 - body.score[rows]) * cells.radius[rows] * np.float32(px / 0.35)))
        cortex *= body.in_cell[rows]
        tubulin[rows] = inside.tubules[rows] + 0.08 * cyto_norm + 0.8 * inside.clouds[rows]
        actin[rows] = inside.fibres[rows] + 0.6 * cortex + 0.06 * cyto_norm

    for_each_band(band, shape[0])
    organelles = {"nucleus": dna, "mitochondria": inside.mitochondria, "tubulin": tubulin, "actin": actin}
    return fine_opd, fine_abs, organelles


@dataclass
class _Debris:
    """Round refractile bodies over the canvas: path difference (µm), absorption and DNA density."""

    opd: np.ndarray
    absorption: np.ndarray
    dna: np.ndarray


def _debris(shape, px: float, line: CellLine, rng: np.random.Generator) -> _Debris:
    """Dead, rounded cells and debris, anywhere in the field (on cells too): a refractile sphere
    2-12 µm across that is bright in PC and dark in BF, and in `debris_dna_fraction` of them a
    pyknotic nucleus brighter than a living one. They teach a model that not every bright object
    in TL is a nucleus, and that a nucleus may sit in a body that looks like debris."""
    h, w = shape
    opd, absorption, dna = (np.zeros(shape, np.float32) for _ in range(3))
    count = int(rng.poisson(line.debris_per_mm2 * h * w * (px / 1000) ** 2))
    for _ in range(count):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = rng.uniform(1.0, 6.0) / px
        dn, loss = rng.uniform(0.02, 0.06), rng.uniform(0.01, 0.08)
        y0, y1 = max(int(cy - r) - 1, 0), min(int(cy + r) + 2, h)
        x0, x1 = max(int(cx - r) - 1, 0), min(int(cx + r) + 2, w)   # never empty: the centre is inside
        yy, xx = np.ogrid[y0:y1, x0:x1]
        rho2 = ((yy - cy) ** 2 + (xx - cx) ** 2) / r ** 2
        thick = (2 * r * px * np.sqrt(np.maximum(1 - rho2, 0))).astype(np.float32)   # µm through a sphere
        opd[y0:y1, x0:x1] += dn * thick
        absorption[y0:y1, x0:x1] += loss * thick / np.float32(2 * r * px)
        if rng.random() < line.debris_dna_fraction:
            core = rng.uniform(0.3, 0.6) ** 2
            dna[y0:y1, x0:x1] += rng.uniform(1.5, 3.0) * np.sqrt(np.maximum(1 - rho2 / core, 0)).astype(np.float32)
    return _Debris(opd, absorption, dna)


def make_phantom(shape: tuple[int, int], pixel_size_um: float, line: CellLine,
                 rng: np.random.Generator, index: IndexContrast = IndexContrast(), *,
                 biology_rng: np.random.Generator | None = None, margin_px: int = CANVAS_MARGIN_PX) -> Phantom:
    """Simulate one field of view of `shape` (H, W) pixels at `pixel_size_um`.

    `biology_rng` (the calibrated profiles) draws the cell-to-cell DNA content, lobed and mitotic
    nuclei, and debris; `margin_px` pads the canvas for deeper stacks than v1's."""
    px = float(pixel_size_um)
    canvas = fast_shape(shape, margin_px)
    top, left = (canvas[0] - shape[0]) // 2, (canvas[1] - shape[1]) // 2
    crop = (slice(top, top + shape[0]), slice(left, left + shape[1]))
    cells = _rasterise_cells(canvas, px, line, rng, crop, biology_rng)
    body = _cell_body(cells, line)
    cytoplasm = body.cytoplasm
    sampler = PixelSampler(cytoplasm)
    cyto_area_um2 = float(np.count_nonzero(cytoplasm)) * px * px

    def draw_vesicles(r: np.random.Generator) -> np.ndarray:
        vy, vx = sampler(int(r.poisson(line.vesicle_density * cyto_area_um2)), r)
        return _point_density(canvas, vy, vx, r.uniform(0.5, 1.5, vy.size), 0.15, px)

    def draw_droplets(r: np.random.Generator) -> np.ndarray:
        dy, dx = PixelSampler(cytoplasm ** 2)(int(r.poisson(line.droplets_per_cell * cells.cy.size)), r)
        return _point_density(canvas, dy, dx, r.uniform(0.6, 1.4, dy.size), 0.3, px)

    # The structures inside the cells are independent of each other: each draws from its own
    # child of rng (Generator.spawn), so they run on a thread per core with the same result on any.
    parts = (lambda r: _chromatin_texture(canvas, px, r, workers=1, slope=line.chromatin_slope),
             lambda r: _mitochondria(cells, sampler, cyto_area_um2, line, px, r),
             lambda r: _microtubules(cells, sampler, line, px, r),
             lambda r: _stress_fibres(cells, line, px, r),
             draw_vesicles, draw_droplets,
             lambda r: _centrosome_clouds(cells, px, r))
    inside = _Structures(*thread_map(lambda job: job[0](job[1]), zip(parts, rng.spawn(len(parts)))))

    fine_opd, fine_abs, organelles = _sharp_maps(cells, body, inside, line, index, px)
    blur = _Blur(canvas, px)
    droplet_opd = np.float32(index.droplet * index.droplet_um) * inside.droplets
    droplet_abs = np.float32(0.06) * inside.droplets
    if line.debris_per_mm2 > 0:   # off in v1 and lmc: their draws stay as they were
        if biology_rng is None:
            raise ValueError("debris needs the field's biology generator (make_phantom's biology_rng)")
        debris = _debris(canvas, px, line, biology_rng)
        droplet_opd, droplet_abs = droplet_opd + debris.opd, droplet_abs + debris.absorption
        organelles["nucleus"] = organelles["nucleus"] + debris.dna
    opd = blur.blend([(fine_opd, 0.12), (droplet_opd, 0.3)])
    absorption = blur.blend([(fine_abs, 0.12), (droplet_abs, 0.3)])
    return Phantom(px, crop, opd, absorption, organelles, cells.labels, body.in_nucleus, cells.centrosome)
