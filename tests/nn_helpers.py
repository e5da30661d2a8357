"""Shared helpers for the nn tests: tolerances, finite differences, thread-count runs."""

import numba
import numpy as np

DTYPES = (np.float32, np.float64)


def assert_close(actual, expected, dtype, what, ulps=None):
    """Same shape and NaN positions; finite values within ``ulps`` machine epsilons of
    ``dtype`` times the scale of ``expected`` (its largest finite magnitude, at least 1).

    Default ulps: 8 for float32, where the kernels compute in float64 and round once, so their
    results sit within an ulp of the float64 reference; 4096 (1e-12) for float64, where
    summation order and fused multiply-adds separate kernel and reference by a few roundings,
    amplified by the conditioning of the layer (up to 1 / sqrt(eps) ~ 300 for a normalization).
    """
    ulps = (8 if np.dtype(dtype) == np.float32 else 4096) if ulps is None else ulps
    actual, expected = np.asarray(actual), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    assert np.array_equal(np.isnan(actual), np.isnan(expected)), f"{what}: NaN positions differ"
    finite = np.isfinite(expected)
    assert np.array_equal(actual[~finite], expected[~finite], equal_nan=True), (
        f"{what}: infinities differ"
    )
    scale = max(np.abs(expected[finite]).max(initial=0.0), 1.0)
    error = np.abs(actual[finite].astype(np.float64) - expected[finite]).max(initial=0.0)
    bound = ulps * np.finfo(dtype).eps * scale
    assert error <= bound, f"{what}: error {error:.3g} > {bound:.3g}"


def numerical_gradients(loss, arrays, step=1e-6):
    """Central differences of the scalar ``loss()`` with respect to every element of each
    float64 array in ``arrays`` (perturbed in place, then restored).
    """
    gradients = []
    for array in arrays:
        flat = array.reshape(-1)
        assert np.shares_memory(flat, array), "arrays must be contiguous"
        gradient = np.empty(array.size)
        for j in range(array.size):
            original = flat[j]
            flat[j] = original + step
            up = loss()
            flat[j] = original - step
            down = loss()
            flat[j] = original
            gradient[j] = (up - down) / (2 * step)
        gradients.append(gradient.reshape(array.shape))
    return gradients


def assert_gradients(analytic, numeric, what):
    """Analytic gradient against central differences: 1e-6 of the gradient's scale."""
    scale = max(np.abs(numeric).max(initial=0.0), 1.0)
    np.testing.assert_allclose(analytic, numeric, rtol=0, atol=1e-6 * scale, err_msg=what)


def projection_loss(forward, rng, shape):
    """``(loss, r)``: ``loss() = sum(forward() * r)`` for a fixed random ``r``; ``r`` is then
    the upstream gradient whose backward pass the finite differences check.
    """
    r = rng.standard_normal(shape)
    return (lambda: float(np.sum(forward() * r))), r


def with_threads(n_threads, function):
    """``function()`` run with ``n_threads`` Numba threads."""
    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        return function()
    finally:
        numba.set_num_threads(previous)
