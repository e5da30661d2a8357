"""Weight initializers: Glorot/Xavier, He/Kaiming and LeCun, normal and uniform.

Weight layout: a dense layer's weight is stored ``(in_features, out_features)``, so that
``y = x @ W + b``; then ``fan_in = shape[0]`` and ``fan_out = shape[1]``. For shapes with more
than two axes (convolution-like, ``(in_channels, out_channels, *kernel)``), both fans are
multiplied by the receptive field ``prod(shape[2:])``. (PyTorch stores ``(out, in, ...)`` and
reads the fans the other way round.)

Each initializer draws from the ``numpy.random.Generator`` it is given, directly in the
requested dtype. The normal variants are plain (not truncated) normals, as in the papers and in
PyTorch:

================  ===================================  =======================================
initializer       standard deviation                   uniform bound
================  ===================================  =======================================
Glorot (2010)     gain * sqrt(2 / (fan_in + fan_out))  gain * sqrt(6 / (fan_in + fan_out))
He (2015)         gain / sqrt(fan_in),                 sqrt(3) * gain / sqrt(fan_in)
                  gain = sqrt(2 / (1 + a^2))
LeCun (1998)      sqrt(1 / fan_in)
================  ===================================  =======================================

(a uniform variable on [-b, b] has standard deviation b / sqrt(3); ``a`` is the negative slope
of the leaky ReLU that follows, 0 for ReLU.)
"""

import math

import numpy as np

from . import validation
from .nn import FLOAT_DTYPES


def fans(shape):
    """``(fan_in, fan_out)`` of a weight of ``shape`` = (in, out, *receptive_field)."""
    shape = _shape(shape)
    receptive_field = math.prod(shape[2:])
    return shape[0] * receptive_field, shape[1] * receptive_field


def glorot_uniform(shape, rng, *, gain=1.0, dtype=np.float64):
    """U(-b, b) with ``b = gain * sqrt(6 / (fan_in + fan_out))`` (Glorot and Bengio, 2010)."""
    fan_in, fan_out = fans(shape)
    gain = validation.real("gain", gain, low_open=True)
    return _uniform(shape, rng, gain * math.sqrt(6.0 / (fan_in + fan_out)), dtype)


def glorot_normal(shape, rng, *, gain=1.0, dtype=np.float64):
    """N(0, std^2) with ``std = gain * sqrt(2 / (fan_in + fan_out))`` (Glorot and Bengio)."""
    fan_in, fan_out = fans(shape)
    gain = validation.real("gain", gain, low_open=True)
    return _normal(shape, rng, gain * math.sqrt(2.0 / (fan_in + fan_out)), dtype)


def he_uniform(shape, rng, *, negative_slope=0.0, dtype=np.float64):
    """U(-b, b) with ``b = sqrt(6 / ((1 + a^2) fan_in))`` (He et al., 2015), ``a`` the leaky
    ReLU's ``negative_slope`` (0: ReLU).
    """
    fan_in, _ = fans(shape)
    return _uniform(shape, rng, math.sqrt(3.0) * _he_std(negative_slope, fan_in), dtype)


def he_normal(shape, rng, *, negative_slope=0.0, dtype=np.float64):
    """N(0, std^2) with ``std = sqrt(2 / ((1 + a^2) fan_in))`` (He et al., 2015)."""
    fan_in, _ = fans(shape)
    return _normal(shape, rng, _he_std(negative_slope, fan_in), dtype)


def lecun_normal(shape, rng, *, dtype=np.float64):
    """N(0, std^2) with ``std = sqrt(1 / fan_in)`` (LeCun et al., 1998)."""
    fan_in, _ = fans(shape)
    return _normal(shape, rng, math.sqrt(1.0 / fan_in), dtype)


# --------------------------------------------------------------------------------------------
def _shape(shape):
    if not (isinstance(shape, tuple | list) and all(validation.is_integer(n) for n in shape)):
        raise TypeError(f"shape must be a tuple of ints, got {shape!r}")
    shape = tuple(int(n) for n in shape)
    if len(shape) < 2 or min(shape) < 1:
        raise ValueError(
            f"shape must have at least 2 axes (in, out, ...), all positive, got {shape}"
        )
    return shape


def _he_std(negative_slope, fan_in):
    negative_slope = validation.real("negative_slope", negative_slope, -math.inf)
    return math.sqrt(2.0 / ((1.0 + negative_slope**2) * fan_in))


def _checked(rng, dtype):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def _normal(shape, rng, std, dtype):
    dtype = _checked(rng, dtype)
    weight = rng.standard_normal(shape, dtype=dtype)
    weight *= std
    return weight


def _uniform(shape, rng, bound, dtype):
    dtype = _checked(rng, dtype)
    weight = rng.random(shape, dtype=dtype)
    weight *= 2.0 * bound
    weight -= bound
    return weight
