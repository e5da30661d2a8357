"""Percentile-bootstrap confidence intervals of statistics over a few runs.

A result reported over seeds or studies (the median steps to a target, a final loss, a
profile score) comes with the interval that resampling its runs gives: draw the runs with
replacement ``resamples`` times, recompute the statistic, and take the ``(1 - confidence) / 2``
and ``(1 + confidence) / 2`` quantiles of the recomputed values (Efron's percentile interval).
Infinite values (a seed that never reached its target) are values like any other: quantiles
are taken without interpolation (``method="inverted_cdf"``), so an interval is ``inf`` where a
share of the resamples is, never NaN. The draws come from ``numpy.random.default_rng(seed)``:
equal inputs give equal intervals. With 3 runs an interval is coarse (the statistic of at most
10 distinct resamples): it says how little 3 runs pin down, which is the point.
"""

import numpy as np

from . import validation

RESAMPLES = 2000
CONFIDENCE = 0.95


def resample_indices(count, resamples=RESAMPLES, seed=0):
    """``(resamples, count)`` indices drawn with replacement from ``range(count)``."""
    validation.integer("count", count, 1)
    validation.integer("resamples", resamples, 1)
    return np.random.default_rng(seed).integers(0, count, size=(resamples, count))


def quantile_interval(values, confidence=CONFIDENCE):
    """``(low, high)``: the central ``confidence`` quantiles of ``values`` (bootstrap
    replicates), without interpolation."""
    validation.real("confidence", confidence, 0.0, 1.0, low_open=True, high_open=True)
    values = np.asarray(values, dtype=float)
    if values.size == 0 or np.isnan(values).any():
        return (np.nan, np.nan)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail], method="inverted_cdf")
    return float(low), float(high)


def interval(samples, statistic=np.median, *, resamples=RESAMPLES, confidence=CONFIDENCE, seed=0):
    """The percentile-bootstrap interval ``(low, high)`` of ``statistic`` (a function of a 1-D
    array, applied along axis 1 of the resampled matrix) over ``samples``; ``(nan, nan)`` for
    no samples or a NaN among them."""
    samples = np.asarray(samples, dtype=float).ravel()
    if samples.size == 0 or np.isnan(samples).any():
        return (np.nan, np.nan)
    drawn = samples[resample_indices(samples.size, resamples, seed)]
    return quantile_interval(_rowwise(statistic, drawn), confidence)


def _rowwise(statistic, matrix):
    if statistic is np.median:  # vectorized; the mean of a finite and an inf middle is inf
        return np.median(matrix, axis=1)
    return np.array([statistic(row) for row in matrix], dtype=float)
