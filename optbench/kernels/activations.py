"""Activation and dropout kernels, forward and backward, element-wise over flat arrays.

Every kernel takes C-contiguous 1-D float32 or float64 arrays (the caller flattens), except
PReLU, which takes ``(N, C, L)`` views to find each element's channel. Scalar options are cast
to the array dtype, so a float32 array is computed in float32. Branch conditions are those of
PyTorch's CPU kernels, so NaN inputs take the same branch: the output stays NaN and the
gradient is the one PyTorch gives.

Random kernels (RReLU in training, dropout) draw nothing from a stateful generator: element
``j`` of a call with stream key ``key`` (a uint64 the caller draws from its
``numpy.random.Generator``) gets the 53-bit number :func:`_random_bits` ``(key, j)``. The
backward pass recomputes the same numbers from the key instead of storing a mask, and the result
cannot depend on how the work is split between threads.
"""

import math

import numpy as np
from numba import njit, prange

from ._config import INLINE, PARALLEL, SERIAL

_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_TWO_TO_MINUS_53 = 2.0**-53


@njit(**INLINE)
def _random_bits(key, index):
    """53 uniformly distributed bits for element ``index`` of stream ``key``.

    The output function of SplitMix64 (Steele, Lea, Flood 2014) applied to the counter
    ``key + (index + 1) * golden_gamma``: a bijective mixer, equidistributed over the counters.
    """
    z = key + np.uint64(index + 1) * _GOLDEN_GAMMA
    z = (z ^ (z >> np.uint64(30))) * _MIX_1
    z = (z ^ (z >> np.uint64(27))) * _MIX_2
    z = z ^ (z >> np.uint64(31))
    return z >> np.uint64(11)


@njit(**INLINE)
def _uniform(key, index):
    """Uniform float64 in [0, 1) for element ``index`` of stream ``key``."""
    return np.float64(_random_bits(key, index)) * _TWO_TO_MINUS_53


# --------------------------------------------------------------------------------------------
# ReLU family
# --------------------------------------------------------------------------------------------
@njit(**SERIAL)
def relu_forward(x, y):
    """``y = x if x > 0 else 0`` (NaN stays NaN)."""
    zero = y.dtype.type(0)
    for j in range(x.size):
        y[j] = zero if x[j] <= 0 else x[j]


@njit(**SERIAL)
def relu_backward(x, dy, dx):
    """``dx = 0 if x <= 0 else dy``."""
    zero = dx.dtype.type(0)
    for j in range(x.size):
        dx[j] = zero if x[j] <= 0 else dy[j]


@njit(**SERIAL)
def leaky_relu_forward(x, negative_slope, y):
    """``y = x if x > 0 else negative_slope * x``."""
    slope = y.dtype.type(negative_slope)
    for j in range(x.size):
        y[j] = x[j] if x[j] > 0 else x[j] * slope


@njit(**SERIAL)
def leaky_relu_backward(x, dy, negative_slope, dx):
    """``dx = dy if x > 0 else negative_slope * dy``."""
    slope = dx.dtype.type(negative_slope)
    for j in range(x.size):
        dx[j] = dy[j] if x[j] > 0 else dy[j] * slope


@njit(**SERIAL)
def elu_forward(x, alpha, y):
    """``y = alpha * (exp(x) - 1) if x <= 0 else x`` (``expm1``: exact near 0)."""
    a = y.dtype.type(alpha)
    for j in range(x.size):
        y[j] = a * np.expm1(x[j]) if x[j] <= 0 else x[j]


@njit(**SERIAL)
def elu_backward(x, dy, alpha, dx):
    """``dx = dy * alpha * exp(x) if x <= 0 else dy``."""
    a = dx.dtype.type(alpha)
    for j in range(x.size):
        dx[j] = dy[j] * a * np.exp(x[j]) if x[j] <= 0 else dy[j]


@njit(**SERIAL)
def prelu_forward(x, weight, y):
    """``y = x if x > 0 else weight[c] * x`` for ``x`` (N, C, L), ``weight`` (C,)."""
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            slope = weight[c]
            x_run, y_run = x[n, c], y[n, c]
            for j in range(x_run.size):
                y_run[j] = x_run[j] if x_run[j] > 0 else slope * x_run[j]


@njit(**SERIAL)
def prelu_backward(x, dy, weight, dx, dweight):
    """``dx = dy if x > 0 else weight[c] * dy``; ``dweight[c] = sum over x <= 0 of x * dy``.

    x, dy, dx : (N, C, L).  weight, dweight : (C,).  The sums run in float64, in a fixed order.
    """
    sums = np.zeros(weight.size)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            slope = weight[c]
            x_run, dy_run, dx_run = x[n, c], dy[n, c], dx[n, c]
            total = sums[c]
            for j in range(x_run.size):
                if x_run[j] > 0:
                    dx_run[j] = dy_run[j]
                else:
                    dx_run[j] = slope * dy_run[j]
                    total += np.float64(x_run[j]) * dy_run[j]
            sums[c] = total
    for c in range(weight.size):
        dweight[c] = dweight.dtype.type(sums[c])


@njit(**SERIAL)
def rrelu_train_forward(x, lower, upper, key, y):
    """Randomized leaky ReLU in training: ``y = x * a_j if x <= 0 else x``,
    ``a_j = lower + (upper - lower) * u_j`` with ``u_j`` uniform in [0, 1) from ``(key, j)``.
    """
    t = y.dtype.type
    for j in range(x.size):
        if x[j] <= 0:
            y[j] = x[j] * t(lower + (upper - lower) * _uniform(key, j))
        else:
            y[j] = x[j]


@njit(**SERIAL)
def rrelu_train_backward(x, dy, lower, upper, key, dx):
    """``dx = dy * a_j if x <= 0 else dy``, with the slopes ``a_j`` of the forward call."""
    t = dx.dtype.type
    for j in range(x.size):
        if x[j] <= 0:
            dx[j] = dy[j] * t(lower + (upper - lower) * _uniform(key, j))
        else:
            dx[j] = dy[j]


# --------------------------------------------------------------------------------------------
# sigmoid, tanh: the backward pass uses the output
# --------------------------------------------------------------------------------------------
@njit(**SERIAL)
def sigmoid_forward(x, y):
    """``y = 1 / (1 + exp(-x))`` (0 for very negative x, no overflow to NaN)."""
    one = y.dtype.type(1)
    for j in range(x.size):
        y[j] = one / (one + np.exp(-x[j]))


@njit(**SERIAL)
def sigmoid_backward(y, dy, dx):
    """``dx = dy * (1 - y) * y``."""
    one = dx.dtype.type(1)
    for j in range(y.size):
        dx[j] = dy[j] * (one - y[j]) * y[j]


@njit(**SERIAL)
def tanh_forward(x, y):
    """``y = tanh(x)``."""
    for j in range(x.size):
        y[j] = np.tanh(x[j])


@njit(**SERIAL)
def tanh_backward(y, dy, dx):
    """``dx = dy * (1 - y^2)``."""
    one = dx.dtype.type(1)
    for j in range(y.size):
        dx[j] = dy[j] * (one - y[j] * y[j])


# --------------------------------------------------------------------------------------------
# GELU: computed in float64, rounded once to the array's dtype
# --------------------------------------------------------------------------------------------
_SQRT_HALF = 0.7071067811865476  # 1 / sqrt(2)
_INV_SQRT_2PI = 0.3989422804014327  # 1 / sqrt(2 pi)
_SQRT_2_OVER_PI = 0.7978845608028654  # sqrt(2 / pi)
_TANH_CUBIC = 0.044715


@njit(**INLINE)
def _gelu_shape(v, approximate_tanh):
    """The transcendental part of GELU at ``v``, in float64: ``erf(v / sqrt 2)``, or with
    ``approximate_tanh``, ``tanh(sqrt(2 / pi) (v + 0.044715 v^3))``. Kept by the forward pass,
    so that the backward pass computes no erf (the costly part: about 10 ns)."""
    if approximate_tanh:
        return np.tanh(_SQRT_2_OVER_PI * (v + _TANH_CUBIC * v * v * v))
    return math.erf(v * _SQRT_HALF)


@njit(**INLINE)
def _gelu_derivative(v, shape, approximate_tanh):
    """``Phi(v) + v phi(v)``, ``phi`` the standard normal density, ``Phi = (1 + shape) / 2``;
    or the derivative of the tanh form, ``shape`` its tanh (float64)."""
    if approximate_tanh:
        slope = _SQRT_2_OVER_PI * (1.0 + 3.0 * _TANH_CUBIC * v * v)
        return 0.5 * (1.0 + shape) + 0.5 * v * (1.0 - shape**2) * slope
    return 0.5 * (1.0 + shape) + v * _INV_SQRT_2PI * np.exp(-0.5 * v * v)


@njit(**SERIAL)
def gelu_forward(x, approximate_tanh, y, shape):
    """``y = x Phi(x)``, ``Phi(x) = (1 + erf(x / sqrt 2)) / 2`` (with ``approximate_tanh``:
    ``Phi(x) ~ (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))) / 2``), rounded once; ``shape``
    (float64, like x) gets the erf or tanh (see :func:`_gelu_shape`)."""
    t = y.dtype.type
    for j in range(x.size):
        v = np.float64(x[j])
        shape[j] = _gelu_shape(v, approximate_tanh)
        y[j] = t(v * (0.5 * (1.0 + shape[j])))


@njit(**PARALLEL)
def gelu_forward_parallel(x, approximate_tanh, y, shape):
    """:func:`gelu_forward` with the elements spread over threads (the same results)."""
    t = y.dtype.type
    for j in prange(x.size):
        v = np.float64(x[j])
        shape[j] = _gelu_shape(v, approximate_tanh)
        y[j] = t(v * (0.5 * (1.0 + shape[j])))


@njit(**SERIAL)
def gelu_backward(x, shape, dy, approximate_tanh, dx):
    """``dx = dy (Phi(x) + x phi(x))`` (see :func:`_gelu_derivative`), rounded once."""
    t = dx.dtype.type
    for j in range(x.size):
        derivative = _gelu_derivative(np.float64(x[j]), shape[j], approximate_tanh)
        dx[j] = t(np.float64(dy[j]) * derivative)


@njit(**PARALLEL)
def gelu_backward_parallel(x, shape, dy, approximate_tanh, dx):
    """:func:`gelu_backward` with the elements spread over threads (the same results)."""
    t = dx.dtype.type
    for j in prange(x.size):
        derivative = _gelu_derivative(np.float64(x[j]), shape[j], approximate_tanh)
        dx[j] = t(np.float64(dy[j]) * derivative)


# --------------------------------------------------------------------------------------------
# inverted dropout
# --------------------------------------------------------------------------------------------
@njit(**INLINE)
def _dropout_multiplier(key, index, drop_below, scale, zero):
    """``scale`` if element ``index`` is kept, else 0: dropped when its bits < drop_below."""
    return zero if _random_bits(key, index) < drop_below else scale


@njit(**SERIAL)
def dropout_forward(x, p, drop_below, key, y):
    """Inverted dropout: ``y = x * m_j / (1 - p)``, ``m_j = 0`` with probability ``p``.

    ``drop_below = round(p * 2**53)`` (uint64): element j is dropped when its 53 random bits
    are below it. The multiplier is applied to every element, so NaN and Inf propagate as in
    ``torch.nn.functional.dropout``.
    """
    t = y.dtype.type
    scale, zero = t(1.0 / (1.0 - p)), t(0)
    for j in range(x.size):
        y[j] = x[j] * _dropout_multiplier(key, j, drop_below, scale, zero)


@njit(**SERIAL)
def dropout_backward(dy, p, drop_below, key, dx):
    """``dx = dy * m_j / (1 - p)`` with the mask of the forward call."""
    t = dx.dtype.type
    scale, zero = t(1.0 / (1.0 - p)), t(0)
    for j in range(dy.size):
        dx[j] = dy[j] * _dropout_multiplier(key, j, drop_below, scale, zero)
