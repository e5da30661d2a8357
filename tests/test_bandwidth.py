"""STREAM kernels: results, byte model, working-set sizing, the roofline measurement's checks."""

import math
import os

import numba
import numpy as np
import pytest

from optbench import bandwidth
from optbench.spec import Pass, SpecError

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


# --------------------------------------------------------------------------------------------
# access patterns
# --------------------------------------------------------------------------------------------
PATTERNS = (
    Pass(reads=1, updates=1),
    Pass(reads=1, updates=3),
    Pass(reads=3, updates=3),
    Pass(reads=2, writes=1),
    Pass(updates=2),
    Pass(reads=1, updates=1, writes=2),
)


def _pattern_arrays(rng, p, n, dtype):
    return tuple(
        rng.standard_normal((count, n)).astype(dtype) for count in (p.reads, p.updates, p.writes)
    )


@pytest.mark.parametrize("parallel", [False, True], ids=["serial", "parallel"])
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", PATTERNS, ids=lambda p: p.label)
def test_pass_kernel(p, dtype, n, parallel, rng):
    """Each element: ``a`` = the sum of the read arrays (the scalar without any), then
    ``u += s a`` for every updated array and ``w = s a`` for every written one."""
    read, update, write = _pattern_arrays(rng, p, n, dtype)
    before = update.copy()
    s = dtype(-1.5)
    bandwidth.pass_functions(p)[parallel](read, update, write, n, -1.5)
    total = np.full(n, s, dtype)
    if p.reads:
        total = read[0].copy()
        for row in read[1:]:
            total = total + row  # left to right, in the dtype, as the kernel adds
    for k in range(p.updates):
        _assert_sum_close(update[k], before[k], s * total, dtype)
    for k in range(p.writes):
        np.testing.assert_array_equal(write[k], s * total)
    assert update.dtype == write.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
def test_pass_kernels_serial_and_parallel_agree_bitwise(dtype, rng):
    p = Pass(reads=2, updates=2, writes=1)
    n = 3 * bandwidth.CHUNK_ELEMENTS + 5
    arrays = _pattern_arrays(rng, p, n, dtype)
    copies = tuple(a.copy() for a in arrays)
    serial, parallel = bandwidth.pass_functions(p)
    serial(*arrays, n, 0.5)
    parallel(*copies, n, 0.5)
    for a, b in zip(arrays, copies, strict=True):
        np.testing.assert_array_equal(a, b)


def test_pattern_call_runs_every_pass_and_stays_bounded():
    passes = (Pass(reads=1, writes=1), Pass(reads=2, writes=1))
    call = bandwidth.make_pattern_call(passes, 1000, "float32", parallel=False)
    (read, _, write), _ = call.arrays
    # the call made while building it, with the scalar negated (the sign alternates)
    np.testing.assert_array_equal(write[0], np.float32(-bandwidth.SCALAR) * read[0])
    adam = bandwidth.make_pattern_call((Pass(reads=1, updates=3),), 1000, "float64", True)
    start = adam.arrays[0][1].copy()
    for _ in range(201):  # the scalar's sign alternates: the updates cancel every two calls
        adam()
    assert np.all(np.isfinite(adam.arrays[0][1]))
    assert np.max(np.abs(adam.arrays[0][1] - start)) < 10


def test_pattern_byte_model_and_labels():
    adam, layer = (Pass(reads=1, updates=3),), (Pass(reads=1, writes=1), Pass(reads=2, writes=1))
    assert bandwidth.pattern_bytes(adam, 1000, "float32") == 7 * 1000 * 4
    assert bandwidth.pattern_bytes(layer, 10, "float64") == 5 * 10 * 8
    assert bandwidth.pattern_arrays(adam) == 4 and bandwidth.pattern_arrays(layer) == 5
    assert bandwidth.pattern_label(adam) == "1r 3u"
    assert bandwidth.pattern_label(layer) == "1r 1w + 2r 1w"
    with pytest.raises(TypeError, match="passes"):
        bandwidth.pattern_bytes((), 10, "float32")
    with pytest.raises(TypeError, match="passes"):
        bandwidth.make_pattern_call(["1r 3u"], 10, "float32", False)


def test_pattern_kernels_are_generated_once_into_the_cache_directory():
    p = Pass(reads=1, updates=3)
    assert bandwidth.pass_functions(p) is bandwidth.pass_functions(p)
    files = os.listdir(bandwidth.pattern_directory())
    assert any(name.startswith("optbench_pattern_r1_u3_w0_") for name in files)
    assert not [name for name in files if name.startswith(".tmp-")]


@pytest.mark.parametrize(
    ("counts", "match"),
    [({"reads": -1}, "reads"), ({"updates": True}, "updates"), ({}, "touches no array")],
)
def test_a_bad_pass_is_refused(counts, match):
    with pytest.raises(SpecError, match=match):
        Pass(**counts)
