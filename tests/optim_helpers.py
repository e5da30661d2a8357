"""Shared helpers for the optimizer tests: parameter sets and side-by-side runs with the oracle."""

import numpy as np

from optbench import testing
from optbench.testing import compare_with_reference

DTYPES = (np.float32, np.float64)

# Shapes of one model: a matrix, a vector, a 3-D array, a 0-d array and an empty array.
SHAPES = ((7, 5), (33,), (2, 3, 4), (), (0, 3))


def make_params(rng, dtype, shapes=SHAPES, scale=1.0, *, spec=None):
    """Arrays of ``shapes``; with ``spec``, brought to the numbers of dimensions it takes."""
    return testing.make_params(rng, dtype, shapes, scale, spec=spec)


def make_grads(rng, params):
    return [np.asarray(rng.standard_normal(p.shape), p.dtype) for p in params]


def group_options(group):
    return {k: v for k, v in group.items() if k != "params"}


def assert_close(actual, expected, dtype, what):
    """Equal NaN positions; float64 to rtol 1e-10; float32 within 4 ulp of the array's scale.

    The float32 scale is the largest finite magnitude in ``expected`` (at least 1): the kernels
    contract ``a*b + c`` into fused multiply-adds, so single elements may differ by a few
    roundings of the array's own size.
    """
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert np.array_equal(np.isnan(actual), np.isnan(expected)), f"{what}: NaN positions differ"
    finite = np.isfinite(expected)
    assert np.array_equal(
        actual[~finite & ~np.isnan(expected)], expected[~finite & ~np.isnan(expected)]
    ), f"{what}: infinities differ"
    if dtype == np.float64:
        np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12, err_msg=what)
    else:
        scale = max(np.abs(expected[finite]).max(initial=0.0), 1.0)
        error = np.abs(actual[finite].astype(np.float64) - expected[finite]).max(initial=0.0)
        assert error <= 4 * np.finfo(np.float32).eps * scale, f"{what}: error {error:.3g}"


def run_side_by_side(info, opt, params, rng, steps, grad_source=make_grads):
    """Step ``opt`` and the reference together (:func:`optbench.testing.compare_with_reference`:
    float64 independently, float32 restarted from the kernel's state every step); fail at the
    first diverging step, naming the array or buffer and the element."""
    found = compare_with_reference(info, opt, params, rng, steps, grad_source)
    assert found is None, "step {}: {} element {}: got {!r}, reference {!r}".format(*found)
