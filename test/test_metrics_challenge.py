"""Every per-image metric against an independent calculation, and against the container's own recipe."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import tifffile
from scipy import ndimage

from metrics.challenge import (
    METRICS_BY_ORGANELLE,
    cosine_distance,
    euclidean_distance,
    mae,
    pcc,
    percentile_normalise,
    score_image,
    ssim,
)
from preprocessing.ome_io import read_ome_tiff, write_ome_tiff

TOL = dict(rtol=1e-6, atol=1e-6)


# ---- independent calculations (sorting, sums and scipy.ndimage; no numpy.percentile/skimage/scipy.stats)
def ref_percentile(x: np.ndarray, q: float) -> float:
    """Linear interpolation between order statistics: numpy's default method, written out."""
    s = np.sort(x.astype(np.float64).ravel())
    pos = q / 100.0 * (s.size - 1)
    lo = int(math.floor(pos))
    hi = min(lo + 1, s.size - 1)
    return float(s[lo] + (s[hi] - s[lo]) * (pos - lo))


def ref_normalise(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    low, high = ref_percentile(x, 2), ref_percentile(x, 99.8)
    return x if low == high else (x - low) / (high - low)


def ref_pcc(a: np.ndarray, b: np.ndarray) -> float:
    da, db = a.ravel() - a.mean(), b.ravel() - b.mean()
    denom = math.sqrt(float(np.sum(da * da)) * float(np.sum(db * db)))
    return 0.0 if denom == 0 else float(np.sum(da * db) / denom)


def ref_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM from its definition: 7x7 uniform window, sample covariance, 3-pixel border cropped."""
    r = max(np.ptp(a), np.ptp(b))
    c1, c2 = (0.01 * r) ** 2, (0.03 * r) ** 2
    w = 7
    cov = w * w / (w * w - 1)
    mean = lambda x: ndimage.uniform_filter(x, size=w)  # noqa: E731
    ma, mb = mean(a), mean(b)
    va = cov * (mean(a * a) - ma * ma)
    vb = cov * (mean(b * b) - mb * mb)
    vab = cov * (mean(a * b) - ma * mb)
    s = ((2 * ma * mb + c1) * (2 * vab + c2)) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2))
    return float(s[3:-3, 3:-3].mean())


def ref_scores(pred: np.ndarray, gt: np.ndarray, organelle: str) -> dict[str, float]:
    g, p = ref_normalise(gt), ref_normalise(pred)
    out = {"PCC": ref_pcc(g, p), "SSIM": ref_ssim(g, p)}
    if organelle in ("nucleus", "mitochondria"):
        d = (g - p).ravel()
        out["MAE"] = float(np.sum(np.abs(d)) / d.size)
        out["E_dist"] = math.sqrt(float(np.sum(d * d)))
        ng, np_ = math.sqrt(float(np.sum(g * g))), math.sqrt(float(np.sum(p * p)))
        cos = 0.0 if ng == 0 or np_ == 0 else float(np.sum(g * p)) / (ng * np_)
        out["C_dist"] = abs(min(max(1.0 - cos, 0.0), 2.0))
    return out


def _pairs():
    rng = np.random.default_rng(7)
    shape = (40, 56)
    gt = rng.gamma(2.0, 300.0, shape)
    yield "float", gt, gt + rng.normal(0, 200, shape)
    yield "negative", gt - 900.0, -0.5 * gt + rng.normal(0, 50, shape)
    yield "uint16", (gt * 10).clip(0, 65535).astype(np.uint16), (gt * 7 + 3000).clip(0, 65535).astype(np.uint16)
    yield "float32", gt.astype(np.float32), (gt + rng.normal(0, 30, shape)).astype(np.float32)
    yield "anticorrelated", gt, gt.max() - gt
    yield "identical", gt, gt.copy()
    yield "constant_pred", gt, np.full(shape, 5.0)
    yield "zero_pred_uint16", gt.astype(np.uint16), np.zeros(shape, np.uint16)
    yield "constant_gt", np.full(shape, 3.0), gt
    sparse = np.zeros(shape)
    sparse[5:9, 7:10] = 1000.0  # fewer than 0.2 % bright pixels would make p2 == p99.8; these are ~0.5 %
    yield "sparse_gt", sparse, gt
    dots = np.zeros(shape)
    dots[3, 4] = dots[20, 30] = 1000.0  # 2 of 2240 pixels: p2 == p99.8 == 0, left unnormalised
    yield "equal_percentiles_not_constant", dots, gt


@pytest.mark.parametrize("case,gt,pred", list(_pairs()), ids=[c for c, *_ in _pairs()])
@pytest.mark.parametrize("organelle", ["nucleus", "tubulin"])
def test_metrics_match_independent_calculation(case, gt, pred, organelle):
    got = score_image(pred, gt, organelle)
    want = ref_scores(pred, gt, organelle)
    assert list(got) == (["PCC", "SSIM", "MAE", "E_dist", "C_dist"] if organelle == "nucleus" else ["PCC", "SSIM"])
    assert set(got) == set(METRICS_BY_ORGANELLE[organelle])
    for metric in got:
        np.testing.assert_allclose(got[metric], want[metric], **TOL, err_msg=f"{case} {metric}")


def test_special_values():
    rng = np.random.default_rng(1)
    gt = rng.random((32, 32))
    same = score_image(gt, gt, "mitochondria")
    assert same["PCC"] == pytest.approx(1.0) and same["SSIM"] == pytest.approx(1.0)
    assert same["MAE"] == 0.0 and same["E_dist"] == 0.0 and same["C_dist"] == pytest.approx(0.0, abs=1e-12)
    constant = score_image(np.zeros((32, 32), np.uint16), gt, "nucleus")
    assert constant["PCC"] == 0.0                    # NaN -> 0
    assert constant["C_dist"] == 1.0                 # a zero vector has cosine similarity 0
    assert constant["MAE"] == pytest.approx(np.mean(np.abs(ref_normalise(gt))))
    both = score_image(np.full((16, 16), 4.0), np.full((16, 16), 9.0), "actin")
    assert both["PCC"] == 0.0 and math.isnan(both["SSIM"])   # data_range 0: NaN, as in the challenge


def test_normalisation_has_no_clipping_and_keeps_equal_percentiles():
    x = np.arange(1000, dtype=np.float64)
    n = percentile_normalise(x)
    assert n.min() < 0 and n.max() > 1
    np.testing.assert_allclose(n, ref_normalise(x), **TOL)
    flat = np.full((8, 8), 7, np.uint16)
    assert np.array_equal(percentile_normalise(flat), flat.astype(np.float64))


def test_shape_mismatch_names_both_shapes_and_file():
    with pytest.raises(ValueError) as err:
        score_image(np.zeros((10, 12)), np.zeros((12, 10)), "nucleus", source="pred/x.tiff")
    assert "(10, 12)" in str(err.value) and "(12, 10)" in str(err.value) and "pred/x.tiff" in str(err.value)
    with pytest.raises(ValueError, match="unknown organelle"):
        score_image(np.zeros((8, 8)), np.zeros((8, 8)), "golgi")


def test_helpers_agree_with_score_image():
    rng = np.random.default_rng(3)
    g, p = rng.random((20, 20)), rng.random((20, 20))
    got = score_image(p, g, "nucleus")
    gn, pn = percentile_normalise(g), percentile_normalise(p)
    assert got == {"PCC": pcc(gn, pn), "SSIM": ssim(gn, pn), "MAE": mae(gn, pn),
                   "E_dist": euclidean_distance(gn, pn), "C_dist": cosine_distance(gn, pn)}


def _container_recipe(organelle: str, gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """The evaluation container's calls, on arrays as tifffile.imread returns them (raw dtype)."""
    from scipy.stats import pearsonr
    from skimage.metrics import structural_similarity
    skm = pytest.importorskip("sklearn.metrics")
    from sklearn.metrics.pairwise import cosine_distances, euclidean_distances

    def norm(im):
        lo, hi = np.percentile(im, 2, keepdims=True), np.percentile(im, 99.8, keepdims=True)
        return im if lo == hi else (im - lo) / (hi - lo)

    g, p = norm(gt), norm(pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = pearsonr(g.ravel(), p.ravel())[0]
        s = structural_similarity(g, p, data_range=np.maximum(p.max() - p.min(), g.max() - g.min()))
    out = {"PCC": 0 if np.isnan(r) else r, "SSIM": s}
    if organelle in ("nucleus", "mitochondria"):
        out["MAE"] = skm.mean_absolute_error(g, p)
        out["E_dist"] = euclidean_distances(g.ravel().reshape(1, -1), p.ravel().reshape(1, -1))[0, 0]
        out["C_dist"] = np.abs(cosine_distances(g.ravel().reshape(1, -1), p.ravel().reshape(1, -1))[0, 0])
    return out


@pytest.mark.parametrize("kind", ["uint16", "uint16_constant_pred"])
def test_files_score_as_the_container_scores_them(tmp_path, kind):
    """uint16 OME-TIFFs written, read back by our reader, scored; the container's recipe on imread arrays."""
    rng = np.random.default_rng(11)
    gt = (rng.gamma(2.0, 2000.0, (64, 48))).clip(0, 65535).astype(np.uint16)
    pred = (np.zeros_like(gt) if "constant" in kind
            else (gt * 0.8 + rng.normal(3000, 500, gt.shape)).clip(0, 65535).astype(np.uint16))
    write_ome_tiff(tmp_path / "gt.ome.tiff", gt, channel_name="Nucleus")
    write_ome_tiff(tmp_path / "pred.ome.tiff", pred, channel_name="nucleus")
    ours = score_image(read_ome_tiff(tmp_path / "pred.ome.tiff").array,
                       read_ome_tiff(tmp_path / "gt.ome.tiff").array, "nucleus")
    theirs = _container_recipe("nucleus", tifffile.imread(tmp_path / "gt.ome.tiff"),
                               tifffile.imread(tmp_path / "pred.ome.tiff"))
    for metric, value in theirs.items():
        np.testing.assert_allclose(ours[metric], value, **TOL, err_msg=metric)
