"""Activations and dropout: the kernels against the NumPy reference (special values included)
and against finite differences; randomness seeded, reproducible and correctly distributed.
"""

from functools import partial
from typing import NamedTuple

import numpy as np
import pytest
from nn_helpers import DTYPES, assert_close, assert_gradients, numerical_gradients, with_threads

from optbench import nn
from optbench.reference import nn as reference

SPECIAL = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-30, -1e-30, 50.0, -50.0, 1000.0, -1000.0]
SHAPE = (3, 4, 5)


def _inputs(rng, dtype):
    """Normal values with the special ones in front (NaN, infinities, zeros, extremes)."""
    x = 2 * rng.standard_normal(SHAPE)
    x.reshape(-1)[: len(SPECIAL)] = SPECIAL
    return x.astype(dtype)


def _smooth_inputs(rng):
    """float64 values at least 0.05 away from 0, where every activation is differentiable."""
    x = rng.standard_normal(SHAPE)
    return np.where(np.abs(x) < 0.05, 0.1, x)


class Activation(NamedTuple):
    forward: object  # x -> (y, ctx)
    backward: object  # (dy, ctx) -> dx
    expected: object  # x -> y
    expected_backward: object  # (dy, x, y) -> dx


ACTIVATIONS = {
    "relu": Activation(
        nn.relu,
        nn.relu_backward,
        reference.relu,
        lambda dy, x, y: reference.relu_backward(dy, x),
    ),
    "leaky_relu": Activation(
        partial(nn.leaky_relu, negative_slope=0.2),
        nn.leaky_relu_backward,
        partial(reference.leaky_relu, negative_slope=0.2),
        lambda dy, x, y: reference.leaky_relu_backward(dy, x, 0.2),
    ),
    "elu": Activation(
        partial(nn.elu, alpha=1.5),
        nn.elu_backward,
        partial(reference.elu, alpha=1.5),
        lambda dy, x, y: reference.elu_backward(dy, x, 1.5),
    ),
    "rrelu_eval": Activation(
        partial(nn.rrelu, lower=0.1, upper=0.3, training=False),
        nn.rrelu_backward,
        partial(reference.leaky_relu, negative_slope=0.2),
        lambda dy, x, y: reference.leaky_relu_backward(dy, x, 0.2),
    ),
    "sigmoid": Activation(
        nn.sigmoid,
        nn.sigmoid_backward,
        reference.sigmoid,
        lambda dy, x, y: reference.sigmoid_backward(dy, y),
    ),
    "tanh": Activation(
        nn.tanh,
        nn.tanh_backward,
        reference.tanh,
        lambda dy, x, y: reference.tanh_backward(dy, y),
    ),
    "gelu": Activation(
        nn.gelu,
        nn.gelu_backward,
        reference.gelu,
        lambda dy, x, y: reference.gelu_backward(dy, x),
    ),
    "gelu_tanh": Activation(
        partial(nn.gelu, approximate="tanh"),
        nn.gelu_backward,
        partial(reference.gelu, approximate="tanh"),
        lambda dy, x, y: reference.gelu_backward(dy, x, approximate="tanh"),
    ),
}
NAMES = list(ACTIVATIONS)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", NAMES)
def test_activation_matches_reference(name, dtype, rng):
    activation = ACTIVATIONS[name]
    x = _inputs(rng, dtype)
    y, ctx = activation.forward(x)
    assert y.dtype == dtype and y.shape == x.shape
    assert_close(y, activation.expected(x), dtype, "y")
    dy = rng.standard_normal(SHAPE).astype(dtype)
    dx = activation.backward(dy, ctx)
    assert dx.dtype == dtype
    assert_close(dx, activation.expected_backward(dy, x, y), dtype, "dx")


@pytest.mark.parametrize("name", NAMES)
def test_activation_backward_matches_finite_differences(name, rng):
    activation = ACTIVATIONS[name]
    x = _smooth_inputs(rng)
    dy = rng.standard_normal(SHAPE)
    (numeric,) = numerical_gradients(lambda: np.sum(activation.forward(x)[0] * dy), [x])
    assert_gradients(activation.backward(dy, activation.forward(x)[1]), numeric, "dx")


def test_sigmoid_and_tanh_saturate_without_nan():
    x = np.array([-1e4, -100.0, 100.0, 1e4], np.float32)
    assert np.array_equal(nn.sigmoid(x)[0], [0.0, 0.0, 1.0, 1.0])
    assert np.array_equal(nn.tanh(x)[0], [-1.0, -1.0, 1.0, 1.0])


# --------------------------------------------------------------------------------------------
# PReLU
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_slopes", [1, 4], ids=["shared", "per-channel"])
def test_prelu_matches_reference(n_slopes, dtype, rng):
    x = _inputs(rng, dtype)
    weight = rng.uniform(0.1, 0.4, n_slopes).astype(dtype)
    y, ctx = nn.prelu(x, weight)
    assert_close(y, reference.prelu(x, weight), dtype, "y")
    dy = rng.standard_normal(SHAPE).astype(dtype)
    dx, dweight = nn.prelu_backward(dy, ctx)
    expected_dx, expected_dweight = reference.prelu_backward(dy, x, weight)
    assert_close(dx, expected_dx, dtype, "dx")
    assert_close(dweight, expected_dweight, dtype, "dweight")


@pytest.mark.parametrize("n_slopes", [1, 4], ids=["shared", "per-channel"])
def test_prelu_backward_matches_finite_differences(n_slopes, rng):
    x = _smooth_inputs(rng)
    weight = rng.uniform(0.1, 0.4, n_slopes)
    dy = rng.standard_normal(SHAPE)
    dx, dweight = nn.prelu_backward(dy, nn.prelu(x, weight)[1])
    numeric_dx, numeric_dweight = numerical_gradients(
        lambda: np.sum(nn.prelu(x, weight)[0] * dy), [x, weight]
    )
    assert_gradients(dx, numeric_dx, "dx")
    assert_gradients(dweight, numeric_dweight, "dweight")


# --------------------------------------------------------------------------------------------
# RReLU in training
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_rrelu_training_slopes(dtype):
    """Negative inputs get slopes uniform in [lower, upper); the backward uses the same ones."""
    lower, upper, n = 0.125, 1.0 / 3.0, 200_000
    x = np.linspace(-2.0, 1.0, n).astype(dtype)
    y, ctx = nn.rrelu(x, lower, upper, training=True, rng=np.random.default_rng(1))
    negative = x < 0
    assert np.array_equal(y[~negative], x[~negative])
    slopes = nn.rrelu_backward(np.ones_like(x), ctx)
    assert np.array_equal(slopes[~negative], np.ones((~negative).sum(), dtype))
    assert_close(y, reference.rrelu(x, slopes), dtype, "y = x * slope")
    negative_slopes = slopes[negative].astype(np.float64)
    assert lower <= negative_slopes.min() and negative_slopes.max() < upper
    count = negative_slopes.size
    std = (upper - lower) / np.sqrt(12.0)
    assert abs(negative_slopes.mean() - (lower + upper) / 2) < 5 * std / np.sqrt(count)
    assert abs(negative_slopes.std() / std - 1.0) < 0.02


def test_rrelu_training_is_seeded(rng):
    x = -np.abs(rng.standard_normal(1000))
    first = nn.rrelu(x, training=True, rng=np.random.default_rng(7))[0]
    again = nn.rrelu(x, training=True, rng=np.random.default_rng(7))[0]
    other = nn.rrelu(x, training=True, rng=np.random.default_rng(8))[0]
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_rrelu_training_backward_matches_finite_differences(rng):
    x = _smooth_inputs(rng)
    dy = rng.standard_normal(SHAPE)

    def forward():
        return nn.rrelu(x, training=True, rng=np.random.default_rng(3))

    (numeric,) = numerical_gradients(lambda: np.sum(forward()[0] * dy), [x])
    assert_gradients(nn.rrelu_backward(dy, forward()[1]), numeric, "dx")


# --------------------------------------------------------------------------------------------
# dropout
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_mask_and_scale(p, dtype):
    n = 200_000
    x = np.linspace(1.0, 2.0, n).astype(dtype)
    y, ctx = nn.dropout(x, p, rng=np.random.default_rng(11))
    kept = y != 0
    assert abs(kept.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
    assert_close(y, reference.dropout(x, kept, p), dtype, "y")
    dy = np.linspace(-1.0, 1.0, n).astype(dtype)
    assert_close(nn.dropout_backward(dy, ctx), reference.dropout_backward(dy, kept, p), dtype, "dx")


def test_dropout_is_seeded_and_fresh_per_call():
    x = np.ones(1000)
    rng = np.random.default_rng(4)
    first, second = nn.dropout(x, 0.5, rng=rng)[0], nn.dropout(x, 0.5, rng=rng)[0]
    assert not np.array_equal(first, second)
    assert np.array_equal(first, nn.dropout(x, 0.5, rng=np.random.default_rng(4))[0])


def test_dropout_backward_matches_finite_differences(rng):
    x = rng.standard_normal(SHAPE)
    dy = rng.standard_normal(SHAPE)

    def forward():
        return nn.dropout(x, 0.3, rng=np.random.default_rng(5))

    (numeric,) = numerical_gradients(lambda: np.sum(forward()[0] * dy), [x])
    assert_gradients(nn.dropout_backward(dy, forward()[1]), numeric, "dx")


@pytest.mark.parametrize("options", [{"training": False}, {"p": 0.0}])
def test_inactive_dropout_is_the_identity(options, rng):
    x = rng.standard_normal(SHAPE)
    y, ctx = nn.dropout(x, **{"p": 0.5, **options})
    dy = rng.standard_normal(SHAPE)
    assert y is x
    assert nn.dropout_backward(dy, ctx) is dy


def test_dropped_nan_stays_nan():
    """As torch: the mask multiplies, and NaN * 0 is NaN."""
    y, _ = nn.dropout(np.full(100, np.nan, np.float32), 0.5, rng=np.random.default_rng(0))
    assert np.isnan(y).all()


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------
X = np.ones((2, 3), np.float32)


def _relu_ctx():
    return nn.relu(X)[1]


BAD_CALLS = [
    (lambda: nn.relu([1.0, -1.0]), TypeError, "x"),
    (lambda: nn.sigmoid(X.astype(np.int8)), TypeError, "x"),
    (lambda: nn.leaky_relu(X, negative_slope="0.1"), TypeError, "negative_slope"),
    (lambda: nn.elu(X, alpha=np.inf), ValueError, "alpha"),
    (lambda: nn.relu_backward(X[:1], _relu_ctx()), ValueError, "dy"),
    (lambda: nn.relu_backward(X.astype(np.float64), _relu_ctx()), TypeError, "dy"),
    (lambda: nn.tanh_backward(X, _relu_ctx()), TypeError, "ctx"),
    (lambda: nn.prelu(X, np.ones(2, np.float32)), ValueError, "weight"),
    (lambda: nn.prelu(X, np.ones(3)), TypeError, "weight"),
    (lambda: nn.rrelu(X, lower=0.4, upper=0.2), ValueError, "upper"),
    (lambda: nn.rrelu(X, training=True), TypeError, "rng"),
    (lambda: nn.rrelu(X, training=True, rng=0), TypeError, "rng"),
    (lambda: nn.dropout(X, p=1.0), ValueError, "p"),
    (lambda: nn.dropout(X, p=-0.1), ValueError, "p"),
    (lambda: nn.dropout(X, p=float("nan")), ValueError, "p"),
    (lambda: nn.dropout(X, p=0.5), TypeError, "rng"),
    (lambda: nn.dropout(X, training=None), TypeError, "training"),
    (lambda: nn.dropout_backward(X, _relu_ctx()), TypeError, "ctx"),
]


@pytest.mark.parametrize(("call", "error", "match"), BAD_CALLS)
def test_bad_input_raises_naming_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_gelu_matches_torch(approximate, dtype, rng):
    torch = pytest.importorskip("torch")
    x = _inputs(rng, dtype)
    # torch's float32 CPU kernel gives NaN for gelu(+inf) (float64: inf); optbench gives inf
    x[np.isinf(x)] = 0.5
    dy = rng.standard_normal(SHAPE).astype(dtype)
    y, ctx = nn.gelu(x, approximate=approximate)
    tensor = torch.from_numpy(x.copy()).requires_grad_()
    out = torch.nn.functional.gelu(tensor, approximate=approximate)
    out.backward(torch.from_numpy(dy))
    ulps = 16 if dtype == np.float32 else 64
    assert_close(y, out.detach().numpy(), dtype, "y", ulps=ulps)
    assert_close(nn.gelu_backward(dy, ctx), tensor.grad.numpy(), dtype, "dx", ulps=ulps)


def test_gelu_refuses_an_unknown_approximation():
    with pytest.raises(ValueError, match="approximate"):
        nn.gelu(np.zeros(3), approximate="sigmoid")


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_parallel_and_serial_agree_bit_for_bit(approximate, rng, monkeypatch):
    x = (3 * rng.standard_normal(5000)).astype(np.float32)
    x[:4] = [np.inf, -np.inf, np.nan, -0.0]
    dy = rng.standard_normal(x.shape).astype(np.float32)

    def run():
        y, ctx = nn.gelu(x, approximate=approximate)
        return y, nn.gelu_backward(dy, ctx)

    monkeypatch.setattr(nn, "GELU_PARALLEL_MIN_ELEMENTS", 1 << 62)
    serial = run()
    monkeypatch.setattr(nn, "GELU_PARALLEL_MIN_ELEMENTS", 0)
    parallel = with_threads(2, run)
    for a, b in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(a, b)
