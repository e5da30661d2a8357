"""Standardization (z-score) of data sets: statistics of the training set, applied to any set.

::

    scaler = Standardizer().fit(x_train)
    x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    # or in one call
    x_train, x_test = standardize(x_train, x_test)

Means and standard deviations are computed in float64 with Welford's update (one pass, no
``E[x^2] - E[x]^2`` cancellation), and the transform subtracts the float64 mean before
rounding: float32 features with a mean of 1e6 and a standard deviation of 1 come out with
float32 accuracy.
"""

import numpy as np

from .kernels import norms
from .nn import FLOAT_DTYPES


def _samples(name, x):
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape (samples, features), got {x.shape}")
    return x if x.flags.c_contiguous else np.ascontiguousarray(x)


class Standardizer:
    """Per-feature z-score ``(x - mean) / std`` with the statistics of the data passed to
    :meth:`fit`.

    ``std`` is the population standard deviation (``ddof=0``); a constant feature gets a scale
    of 1 instead of 0, so it maps to 0 rather than NaN.

    Attributes
    ----------
    mean : float64 array (features,) or None before :meth:`fit`
    scale : float64 array (features,) or None before :meth:`fit`
        The standard deviation, 1 where it is 0.
    """

    def __init__(self):
        self.mean = None
        self.scale = None

    def fit(self, x):
        """Compute the mean and scale of each column of ``x`` (samples, features), float32 or
        float64, at least one sample. Returns ``self``.
        """
        x = _samples("x", x)
        if x.shape[0] == 0:
            raise ValueError("x has no samples")
        mean, variance = np.empty(x.shape[1]), np.empty(x.shape[1])
        norms.column_moments(x, mean, variance)
        scale = np.sqrt(variance)
        scale[scale == 0.0] = 1.0
        self.mean, self.scale = mean, scale
        return self

    def transform(self, x):
        """``(x - mean) / scale`` per column, in x's dtype; ``x`` has the fitted feature count."""
        if self.mean is None:
            raise ValueError("this Standardizer is not fitted: call fit(x_train) first")
        x = _samples("x", x)
        if x.shape[1] != self.mean.size:
            raise ValueError(f"x has {x.shape[1]} features; the fit had {self.mean.size}")
        y = np.empty(x.shape, x.dtype)
        norms.standardize_columns(x, self.mean, self.scale, y)
        return y

    def fit_transform(self, x):
        """:meth:`fit` then :meth:`transform` of the same data."""
        return self.fit(x).transform(x)


def standardize(train, *others):
    """Standardize ``train`` and every array of ``others`` with the statistics of ``train``.

    Returns a tuple: the transformed ``train`` followed by the transformed ``others``.
    """
    scaler = Standardizer().fit(train)
    return tuple(scaler.transform(x) for x in (train, *others))
