"""Standardization: accuracy on data with a large mean, test data transformed with the training
statistics, constant features, bad input.
"""

import numpy as np
import pytest
from nn_helpers import DTYPES, assert_close

from optbench.preprocessing import Standardizer, standardize
from optbench.reference import nn as reference


@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_reference_on_train_and_test(dtype, rng):
    train = (rng.standard_normal((500, 7)) * np.arange(1, 8) + 3.0).astype(dtype)
    test = (rng.standard_normal((50, 7)) * 2.0).astype(dtype)
    train_z, test_z = standardize(train, test)
    assert train_z.dtype == dtype and test_z.dtype == dtype
    assert_close(train_z, reference.standardize(train, train), dtype, "train")
    assert_close(test_z, reference.standardize(train, test), dtype, "test")


@pytest.mark.parametrize("mean", [1e6, -3e7])
def test_float32_with_a_large_mean(mean, rng):
    """float32 features with a mean of 1e6 and a standard deviation of 1: the statistics of the
    stored values are exact to float64 rounding, the standardized data to float32 rounding.
    (E[x^2] - E[x]^2 in float32 gives a variance of 0 or of thousands.)
    """
    train = (mean + rng.standard_normal((10_000, 3))).astype(np.float32)
    scaler = Standardizer().fit(train)
    exact = train.astype(np.float64)
    np.testing.assert_allclose(scaler.mean, exact.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(scaler.scale, exact.std(axis=0), rtol=1e-9)
    standardized = scaler.transform(train).astype(np.float64)
    np.testing.assert_allclose(standardized.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(standardized.std(axis=0), 1.0, rtol=1e-6)


def test_constant_feature_maps_to_zero(rng):
    train = np.column_stack([rng.standard_normal(20), np.full(20, 4.0)])
    scaler = Standardizer().fit(train)
    assert scaler.scale[1] == 1.0
    assert np.array_equal(scaler.transform(train)[:, 1], np.zeros(20))


def test_fit_transform_and_non_contiguous_input(rng):
    data = rng.standard_normal((30, 8))[:, ::2]
    assert np.array_equal(Standardizer().fit_transform(data), standardize(data)[0])


X = np.ones((4, 3), np.float32)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: Standardizer().fit(X[0]), ValueError, "x"),
        (lambda: Standardizer().fit(X[:0]), ValueError, "x"),
        (lambda: Standardizer().fit(X.astype(np.int32)), TypeError, "x"),
        (lambda: Standardizer().fit(X.tolist()), TypeError, "x"),
        (lambda: Standardizer().transform(X), ValueError, "fit"),
        (lambda: Standardizer().fit(X).transform(X[:, :2]), ValueError, "features"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
