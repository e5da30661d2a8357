"""STREAM kernels: results, byte model, working-set sizing, the roofline measurement's checks."""

import math

import numba
import numpy as np
import pytest

from optbench import bandwidth

DTYPES = (np.float32, np.float64)
# one element, less than a chunk, and two chunks and a tail (the parallel kernels' blocks)
SIZES = (1, 1000, 2 * bandwidth.CHUNK_ELEMENTS + 3)


def _arrays(rng, n, dtype, count):
    return [rng.standard_normal(n).astype(dtype) for _ in range(count)]


def _assert_sum_close(actual, first, second, dtype):
    """``actual == first + second`` up to a rounding of each term (a fused multiply-add rounds
    once where NumPy rounds twice; near cancellation that is a large relative difference)."""
    first, second = first.astype(np.float64), second.astype(np.float64)
    bound = 2 * np.finfo(dtype).eps * (np.abs(first) + np.abs(second))
    assert np.all(np.abs(actual.astype(np.float64) - (first + second)) <= bound)


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_copy(dtype, n, parallel, rng):
    a, c = _arrays(rng, n, dtype, 2)
    before = a.copy()
    (bandwidth.copy_parallel if parallel else bandwidth.copy_serial)(a, c)
    np.testing.assert_array_equal(c, before)
    np.testing.assert_array_equal(a, before)


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_triad(dtype, n, parallel, rng):
    a, b, c = _arrays(rng, n, dtype, 3)
    (bandwidth.triad_parallel if parallel else bandwidth.triad_serial)(a, b, c, 0.75)
    _assert_sum_close(a, b, dtype(0.75) * c, dtype)
    assert a.dtype == dtype


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_update_in_place(dtype, n, parallel, rng):
    a, b = _arrays(rng, n, dtype, 2)
    before = a.copy()
    (bandwidth.update_parallel if parallel else bandwidth.update_serial)(a, b, -1.5)
    _assert_sum_close(a, before, dtype(-1.5) * b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_serial_and_parallel_kernels_agree_bitwise(dtype, rng):
    n = 3 * bandwidth.CHUNK_ELEMENTS + 17
    a, b, c = _arrays(rng, n, dtype, 3)
    serial, parallel = a.copy(), a.copy()
    bandwidth.update_serial(serial, b, 0.25)
    bandwidth.update_parallel(parallel, b, 0.25)
    np.testing.assert_array_equal(serial, parallel)
    bandwidth.triad_serial(serial, b, c, 3.0)
    bandwidth.triad_parallel(parallel, b, c, 3.0)
    np.testing.assert_array_equal(serial, parallel)


def test_float32_scalar_does_not_widen(rng):
    """The scalar is cast to the array dtype: the result equals float32 arithmetic."""
    a, b = _arrays(rng, 100, np.float32, 2)
    before = a.copy()
    bandwidth.update_serial(a, b, 0.1)
    _assert_sum_close(a, before, np.float32(0.1) * b, np.float32)
    # with the scalar widened to float64 the sums would differ from float32 arithmetic
    assert not np.array_equal(a, (before.astype(np.float64) + 0.1 * b).astype(np.float32))


@pytest.mark.parametrize(
    ("kernel", "words"), [("copy", 2), ("triad", 3), ("update", 3)], ids=["copy", "triad", "up"]
)
@pytest.mark.parametrize("dtype", DTYPES)
def test_bytes_moved(kernel, words, dtype):
    itemsize = np.dtype(dtype).itemsize
    assert bandwidth.bytes_moved(kernel, 1000, dtype) == words * 1000 * itemsize
    assert bandwidth.bytes_moved(kernel, 0, dtype) == 0


@pytest.mark.parametrize("kernel", bandwidth.KERNELS)
def test_elements_for_working_set(kernel):
    n = bandwidth.elements_for_working_set(kernel, 12_000_000, "float32")
    assert n == 12_000_000 // (bandwidth.N_ARRAYS[kernel] * 4)
    assert bandwidth.elements_for_working_set(kernel, 1, "float64") == 1


@pytest.mark.parametrize("kernel", bandwidth.KERNELS)
def test_make_call_runs_and_stays_bounded(kernel):
    call = bandwidth.make_call(kernel, 5000, "float64", parallel=True)
    first = [a.copy() for a in call.arrays]
    for _ in range(1001):
        call()
    assert all(np.isfinite(a).all() for a in call.arrays)
    # update alternates +s b and -s b: the first array wanders by rounding only
    bound = 3.0 * max(np.abs(a).max() for a in first)
    assert all(np.abs(a).max() <= bound for a in call.arrays)


def test_roofline_is_a_positive_rate():
    rate = bandwidth.roofline(1 << 20, "float32", threads=1, repeats=1, min_batch_seconds=0.001)
    assert isinstance(rate, float) and math.isfinite(rate) and rate > 0


def test_roofline_restores_the_thread_count():
    before = numba.get_num_threads()
    bandwidth.roofline(1 << 16, "float64", threads=1, repeats=1, min_batch_seconds=0)
    assert numba.get_num_threads() == before


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: bandwidth.bytes_moved("scale", 10, "float32"), ValueError, "kernel"),
        (lambda: bandwidth.bytes_moved("copy", -1, "float32"), ValueError, "n must be"),
        (lambda: bandwidth.bytes_moved("copy", 1.5, "float32"), TypeError, "n must be"),
        (lambda: bandwidth.bytes_moved("copy", 10, "int32"), TypeError, "dtype"),
        (lambda: bandwidth.make_call("copy", 0, "float32", False), ValueError, "n must be"),
        (lambda: bandwidth.roofline(0), ValueError, "working_set_bytes"),
        (lambda: bandwidth.roofline(1000, repeats=0), ValueError, "repeats"),
        (lambda: bandwidth.roofline(1000, min_batch_seconds=-1), ValueError, "min_batch"),
        (
            lambda: bandwidth.roofline(1000, threads=numba.config.NUMBA_NUM_THREADS + 1),
            ValueError,
            "threads",
        ),
    ],
)
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()
