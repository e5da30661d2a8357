"""Seeded, cached data for the benchmarks, and the loop length that makes small kernels timeable.

asv 0.6 with asv_runner 0.3 calls ``setup()`` before every timed call and times one call
(``number=1``), so a single microsecond step is below the timer's resolution and drowned in
noise. Every ``time_*`` benchmark here therefore runs ``steps_per_call(n)`` steps per call, and
reports the time of that whole loop; divide by the loop length for the time of one step.
"""

import functools

import numpy as np

# Elements updated per timed call, at least: enough for ~1 ms of work on small models.
ELEMENTS_PER_CALL = 10_000_000


def steps_per_call(n_elements):
    return max(1, ELEMENTS_PER_CALL // max(n_elements, 1))


@functools.cache
def split_sizes(total, n_arrays):
    """Sizes of ``n_arrays`` arrays summing to ``total``, as even as possible."""
    base, extra = divmod(total, n_arrays)
    return tuple(base + (i < extra) for i in range(n_arrays))


def model(total, n_arrays, dtype, seed=0):
    """Parameters and gradients of a model of ``n_arrays`` arrays, ``total`` elements in all."""
    rng = np.random.default_rng(seed)
    sizes = split_sizes(total, n_arrays)
    params = [rng.standard_normal(size).astype(dtype) for size in sizes]
    grads = [rng.standard_normal(size).astype(dtype) for size in sizes]
    return params, grads
