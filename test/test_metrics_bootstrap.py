"""Cluster bootstrap intervals: exact means, honest widths, clusters kept together."""
from __future__ import annotations

import numpy as np
import pytest

from metrics.bootstrap import cluster_bootstrap_mean, paired_difference


def test_the_mean_is_exact_and_a_constant_difference_has_no_spread():
    interval = paired_difference([0.5, 0.7, 0.9], [0.4, 0.6, 0.8], ["a", "b", "c"])
    assert interval.mean == pytest.approx(0.1)
    assert interval.low == pytest.approx(0.1) and interval.high == pytest.approx(0.1)
    assert interval.excludes_zero() and interval.n_clusters == 3


def test_width_matches_the_normal_theory_for_independent_images():
    rng = np.random.default_rng(1)
    values = rng.normal(0.0, 1.0, 400)
    interval = cluster_bootstrap_mean(values, np.arange(400), n_resamples=4000, seed=3)
    expected = 2 * 1.96 * values.std(ddof=1) / np.sqrt(values.size)
    assert interval.high - interval.low == pytest.approx(expected, rel=0.1)
    assert interval.low < values.mean() < interval.high


def test_copies_within_a_cluster_do_not_make_the_interval_narrower():
    rng = np.random.default_rng(2)
    per_study = rng.normal(0.0, 1.0, 30)
    values = np.repeat(per_study, 5)           # five images per study, all alike
    clusters = np.repeat(np.arange(30), 5)
    as_studies = cluster_bootstrap_mean(values, clusters, seed=0)
    as_images = cluster_bootstrap_mean(values, np.arange(values.size), seed=0)
    one_per_study = cluster_bootstrap_mean(per_study, np.arange(30), seed=0)
    width = lambda i: i.high - i.low  # noqa: E731
    assert width(as_studies) == pytest.approx(width(one_per_study), rel=0.15)
    assert width(as_images) < 0.6 * width(as_studies)


def test_undefined_scores_are_left_out_and_bad_shapes_refused():
    interval = cluster_bootstrap_mean([1.0, np.nan, 3.0], ["a", "b", "c"])
    assert interval.mean == 2.0 and interval.n_images == 2
    assert np.isnan(cluster_bootstrap_mean([np.nan], ["a"]).mean)
    with pytest.raises(ValueError):
        cluster_bootstrap_mean([1.0, 2.0], ["a"])
