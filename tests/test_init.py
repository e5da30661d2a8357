"""Initializers: fans, the variance each one promises (checked statistically), dtype, seeding,
bad input.
"""

import math

import numpy as np
import pytest

from optbench import init

# name: (initializer, variance as a function of (fan_in, fan_out), is uniform)
INITIALIZERS = {
    "glorot_uniform": (init.glorot_uniform, lambda i, o: 2.0 / (i + o), True),
    "glorot_normal": (init.glorot_normal, lambda i, o: 2.0 / (i + o), False),
    "he_uniform": (init.he_uniform, lambda i, o: 2.0 / i, True),
    "he_normal": (init.he_normal, lambda i, o: 2.0 / i, False),
    "lecun_normal": (init.lecun_normal, lambda i, o: 1.0 / i, False),
}


@pytest.mark.parametrize(
    ("shape", "expected"),
    [((3, 5), (3, 5)), ((3, 5, 2, 2), (12, 20)), ((7, 1, 3), (21, 3))],
)
def test_fans(shape, expected):
    assert init.fans(shape) == expected


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(300, 200), (20, 30, 5, 5)], ids=["dense", "conv"])
@pytest.mark.parametrize("name", list(INITIALIZERS))
def test_variance_mean_and_bounds(name, shape, dtype):
    """Sample variance within 5 standard errors of the promised one (about 1.5% here)."""
    initializer, variance_of, uniform = INITIALIZERS[name]
    weight = initializer(shape, np.random.default_rng(0), dtype=dtype)
    assert weight.shape == shape and weight.dtype == dtype
    variance = variance_of(*init.fans(shape))
    sample = weight.astype(np.float64).reshape(-1)
    # variance of the sample variance: (mu4 - sigma^4) / n; mu4 = 9/5 sigma^4 (uniform), 3 (normal)
    relative_error = math.sqrt(((1.8 if uniform else 3.0) - 1.0) / sample.size)
    assert abs(sample.var() / variance - 1.0) < 5 * relative_error
    assert abs(sample.mean()) < 5 * math.sqrt(variance / sample.size)
    if uniform:
        bound = math.sqrt(3.0 * variance)
        assert -bound <= sample.min() and sample.max() <= bound
        assert sample.max() > 0.99 * bound


def test_gain_and_negative_slope():
    rng = np.random.default_rng(1)
    glorot = init.glorot_normal((400, 600), rng, gain=2.0)
    assert abs(glorot.var() / (4.0 * 2.0 / 1000) - 1.0) < 0.02
    he = init.he_normal((1000, 300), rng, negative_slope=1.0)
    assert abs(he.var() / (1.0 / 1000) - 1.0) < 0.02


@pytest.mark.parametrize("name", list(INITIALIZERS))
def test_seeded(name):
    initializer = INITIALIZERS[name][0]
    first = initializer((4, 6), np.random.default_rng(5))
    assert np.array_equal(first, initializer((4, 6), np.random.default_rng(5)))
    assert not np.array_equal(first, initializer((4, 6), np.random.default_rng(6)))


RNG = np.random.default_rng(0)


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: init.glorot_uniform((5,), RNG), ValueError, "shape"),
        (lambda: init.glorot_uniform((5, 0), RNG), ValueError, "shape"),
        (lambda: init.he_normal(5, RNG), TypeError, "shape"),
        (lambda: init.he_normal((2.0, 3), RNG), TypeError, "shape"),
        (lambda: init.lecun_normal((2, 3), 0), TypeError, "rng"),
        (lambda: init.lecun_normal((2, 3), RNG, dtype="int32"), TypeError, "dtype"),
        (lambda: init.lecun_normal((2, 3), RNG, dtype=np.float16), TypeError, "dtype"),
        (lambda: init.glorot_normal((2, 3), RNG, gain=0.0), ValueError, "gain"),
        (lambda: init.he_uniform((2, 3), RNG, negative_slope=None), TypeError, "negative_slope"),
    ],
)
def test_bad_input_raises_naming_the_argument(call, error, match):
    with pytest.raises(error, match=match):
        call()
