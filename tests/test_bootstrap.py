"""Percentile-bootstrap intervals: by hand on tiny samples, against the exact resampling
distribution, infinities, determinism and bad input."""

import itertools

import numpy as np
import pandas as pd
import pytest

from optbench import bootstrap
from optbench.report import ranking


def test_one_value_gives_a_point_and_nan_gives_nan():
    assert bootstrap.interval([3.0]) == (3.0, 3.0)
    assert np.isnan(bootstrap.interval([])).all()
    assert np.isnan(bootstrap.interval([1.0, np.nan])).all()


def test_the_interval_matches_the_exact_resampling_distribution():
    """For 3 values every resample is one of 27 equally likely draws: the bootstrap quantiles
    converge to the quantiles of the medians of those 27."""
    values = np.array([1.0, 4.0, 10.0])
    exact = sorted(np.median(values[list(draw)]) for draw in itertools.product(range(3), repeat=3))
    # medians: 1 (7 of 27), 4 (13 of 27), 10 (7 of 27): the 2.5% and 97.5% quantiles are 1, 10
    assert exact.count(1.0) == 7 and exact.count(4.0) == 13
    assert bootstrap.interval(values, resamples=20000) == (1.0, 10.0)
    assert bootstrap.interval(values, resamples=20000, confidence=0.4) == (4.0, 4.0)


def test_infinite_values_give_infinite_bounds_not_nan():
    low, high = bootstrap.interval([5.0, np.inf, np.inf])
    assert low == 5.0 and high == np.inf
    assert bootstrap.interval([np.inf] * 4) == (np.inf, np.inf)


def test_the_mean_interval_of_a_large_normal_sample_covers_the_mean():
    sample = np.random.default_rng(1).normal(10.0, 2.0, size=400)
    low, high = bootstrap.interval(sample, np.mean, resamples=500)
    assert low < 10.0 < high and high - low == pytest.approx(4 * 2.0 / 20, rel=0.25)


def test_equal_inputs_give_equal_intervals_and_seeds_change_them():
    sample = np.random.default_rng(2).exponential(size=9)
    assert bootstrap.interval(sample, seed=3) == bootstrap.interval(sample, seed=3)
    # the median's bounds are sample values; the mean's move with the draws
    assert bootstrap.interval(sample, np.mean, resamples=50, seed=3) != bootstrap.interval(
        sample, np.mean, resamples=50, seed=4
    )


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="confidence"):
        bootstrap.interval([1.0, 2.0], confidence=1.0)
    with pytest.raises(ValueError, match="resamples"):
        bootstrap.interval([1.0, 2.0], resamples=0)


def _runs(steps):
    rows = [
        {"problem": problem, "optimizer": optimizer, "seed": seed, "steps": value}
        for (problem, optimizer), values in steps.items()
        for seed, value in enumerate(values)
    ]
    return pd.DataFrame(rows)


def test_profile_score_intervals_hold_the_score_and_collapse_without_spread():
    steady = _runs({("p", "a"): [10, 10, 10], ("p", "b"): [20, 20, 20], ("q", "a"): [5, 5, 5],
                    ("q", "b"): [5, 5, 5]})  # fmt: skip
    intervals = ranking.profile_score_intervals(steady, resamples=200)
    costs = steady.groupby(["problem", "optimizer"])["steps"].median().rename("cost")
    scores = ranking.profile_scores(costs.reset_index())
    for name in ("a", "b"):
        assert intervals.loc[name, "score_low"] == intervals.loc[name, "score_high"]
        assert intervals.loc[name, "score_low"] == pytest.approx(scores[name])
    noisy = _runs({("p", "a"): [10, 10, np.inf], ("p", "b"): [12, 14, 16]})
    intervals = ranking.profile_score_intervals(noisy, resamples=500)
    assert intervals.loc["a", "score_low"] == 0.0 and intervals.loc["a", "score_high"] == 1.0
    assert 0.0 < intervals.loc["b", "score_low"] < intervals.loc["b", "score_high"] <= 1.0
