"""STREAM-style kernels and the machine's memory bandwidth: the roofline of the update kernels.

Three kernels in the manner of McCalpin's STREAM, each a serial and a parallel version, for
float32 and float64 arrays:

========  =======================  ======================================  ================
kernel    operation                arrays read / written                   words per element
========  =======================  ======================================  ================
copy      ``c[j] = a[j]``          read a, write c                         2
triad     ``a[j] = b[j] + s c[j]`` read b, c, write a                      3
update    ``a[j] += s b[j]``       read a, b, write a (in place)           3
========  =======================  ======================================  ================

"Words" count the bytes that *must* move: each array read once and each written array written
once (:func:`bytes_moved`), as STREAM counts them. ``copy`` and ``triad`` write an array they
do not read, which most CPUs first read into cache (write-allocate), so they move more than
they are credited with and report a lower rate. ``update`` only writes what it has read, the
access pattern of every optimizer step (read parameter, gradient and state, write parameter
and state back) and of the normalization layers' in-place passes: it is the roofline that
:mod:`optbench.throughput` divides by.

The parallel kernels split the elements into blocks spread over Numba's threads
(``numba.set_num_threads``) as the optimizers split an array
(``kernels.chunks.chunk_bounds``): equal blocks of at most ``CHUNK_ELEMENTS``, a multiple
of ``CHUNK_MULTIPLE`` of them.

:func:`roofline` measures the machine's rate, in GB/s (1e9 bytes per second), at a working-set
size: small working sets sit in cache and run faster than memory.
"""

import hashlib
import importlib.util
import math
import os
import sys
import tempfile
import time

import numba
import numpy as np
from numba import njit, prange

from . import validation
from .kernels._config import INLINE, PARALLEL, SERIAL
from .kernels.chunks import CHUNK_ELEMENTS, CHUNK_MULTIPLE, chunk_count
from .spec import Pass

KERNELS = ("copy", "triad", "update")
# arrays touched by each kernel: (read, written); an array both read and written counts in both
ARRAY_TRAFFIC = {"copy": (1, 1), "triad": (2, 1), "update": (2, 1)}
# arrays allocated per kernel (the working set is n_arrays * n * itemsize)
N_ARRAYS = {"copy": 2, "triad": 3, "update": 2}
# the scalar of triad and update
SCALAR = 0.5


# --------------------------------------------------------------------------------------------
# kernels
# --------------------------------------------------------------------------------------------
@njit(**SERIAL)
def copy_serial(a, c):
    """``c[j] = a[j]`` for every j. a, c : 1-D arrays of one dtype and size."""
    for j in range(a.size):
        c[j] = a[j]


@njit(**SERIAL)
def triad_serial(a, b, c, scalar):
    """``a[j] = b[j] + scalar * c[j]`` (scalar cast to the arrays' dtype)."""
    s = a.dtype.type(scalar)
    for j in range(a.size):
        a[j] = b[j] + s * c[j]


@njit(**SERIAL)
def update_serial(a, b, scalar):
    """``a[j] = a[j] + scalar * b[j]``, in place (scalar cast to the arrays' dtype)."""
    s = a.dtype.type(scalar)
    for j in range(a.size):
        a[j] = a[j] + s * b[j]


_chunk_count = njit(**INLINE)(chunk_count)


@njit(**INLINE)
def _block_count(size):
    """Number of parallel blocks for ``size`` elements, as ``chunks.chunk_bounds`` cuts them."""
    return max(_chunk_count(size, CHUNK_ELEMENTS, CHUNK_MULTIPLE), 1)


@njit(**PARALLEL)
def copy_parallel(a, c):
    """:func:`copy_serial` with equal blocks spread over threads."""
    count = _block_count(a.size)
    for block in prange(count):
        start, stop = a.size * block // count, a.size * (block + 1) // count
        source, target = a[start:stop], c[start:stop]
        for j in range(source.size):
            target[j] = source[j]


@njit(**PARALLEL)
def triad_parallel(a, b, c, scalar):
    """:func:`triad_serial` with equal blocks spread over threads."""
    s = a.dtype.type(scalar)
    count = _block_count(a.size)
    for block in prange(count):
        start, stop = a.size * block // count, a.size * (block + 1) // count
        out, first, second = a[start:stop], b[start:stop], c[start:stop]
        for j in range(out.size):
            out[j] = first[j] + s * second[j]


@njit(**PARALLEL)
def update_parallel(a, b, scalar):
    """:func:`update_serial` with equal blocks spread over threads."""
    s = a.dtype.type(scalar)
    count = _block_count(a.size)
    for block in prange(count):
        start, stop = a.size * block // count, a.size * (block + 1) // count
        out, other = a[start:stop], b[start:stop]
        for j in range(out.size):
            out[j] = out[j] + s * other[j]


_FUNCTIONS = {
    ("copy", False): copy_serial,
    ("copy", True): copy_parallel,
    ("triad", False): triad_serial,
    ("triad", True): triad_parallel,
    ("update", False): update_serial,
    ("update", True): update_parallel,
}


# --------------------------------------------------------------------------------------------
# byte model and set-up
# --------------------------------------------------------------------------------------------
def _check_kernel(kernel):
    if kernel not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {kernel!r}")


def _check_dtype(dtype):
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def bytes_moved(kernel, n, dtype):
    """Bytes a call must move: (arrays read + arrays written) * n * itemsize.

    copy: 2 n w, triad: 3 n w, update: 3 n w, with w the item size (4 or 8 bytes).
    """
    _check_kernel(kernel)
    n = validation.integer("n", n, 0)
    reads, writes = ARRAY_TRAFFIC[kernel]
    return (reads + writes) * n * _check_dtype(dtype).itemsize


def elements_for_working_set(kernel, working_set_bytes, dtype):
    """Elements per array so that the kernel's arrays hold ``working_set_bytes`` (at least 1)."""
    _check_kernel(kernel)
    working_set_bytes = validation.integer("working_set_bytes", working_set_bytes, 1)
    itemsize = _check_dtype(dtype).itemsize
    return max(1, working_set_bytes // (N_ARRAYS[kernel] * itemsize))


def make_call(kernel, n, dtype, parallel, seed=0):
    """A no-argument function running one call of ``kernel`` on new arrays of ``n`` elements.

    The arrays are seeded standard normal values, kept in the function's ``arrays`` attribute;
    the function is compiled (or loaded from Numba's cache) and called once here, so that its
    first timed call runs machine code. Repeated ``update`` calls alternate the sign of the
    scalar, so the values stay bounded however many calls are timed.
    """
    _check_kernel(kernel)
    n = validation.integer("n", n, 1)
    dtype = _check_dtype(dtype)
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(n, dtype=dtype) for _ in range(N_ARRAYS[kernel])]
    function = _FUNCTIONS[kernel, bool(parallel)]
    if kernel == "copy":

        def call():
            function(arrays[0], arrays[1])

    elif kernel == "triad":

        def call():
            function(arrays[0], arrays[1], arrays[2], SCALAR)

    else:
        # update grows a geometrically; alternate the sign of the scalar so that it stays finite
        scalars = (SCALAR, -SCALAR)
        calls = [0]

        def call():
            calls[0] += 1
            function(arrays[0], arrays[1], scalars[calls[0] & 1])

    call.arrays = arrays
    call()
    return call


# --------------------------------------------------------------------------------------------
# measurement
# --------------------------------------------------------------------------------------------
def _median_call_time(call, repeats, min_batch_seconds):
    """Median over ``repeats`` batches of the time per call; a batch lasts >= min_batch_seconds."""
    start = time.perf_counter()
    call()
    single = max(time.perf_counter() - start, 1e-9)
    calls = max(1, math.ceil(min_batch_seconds / single))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        times.append((time.perf_counter() - start) / calls)
    return float(np.median(times))


def roofline(
    working_set_bytes,
    dtype="float32",
    *,
    threads=None,
    kernel="update",
    repeats=7,
    min_batch_seconds=0.01,
):
    """The machine's memory rate, in GB/s, for ``kernel`` on a working set of this many bytes.

    Runs the serial kernel and, with more than one thread, the parallel one, alternating them
    ``repeats`` times (batches of calls lasting at least ``min_batch_seconds``), and returns the
    better median: ``bytes_moved(kernel, n, dtype) / median time per call / 1e9``.

    threads : Numba threads for the parallel kernel (default: Numba's current setting); the
        previous setting is restored afterwards.
    """
    working_set_bytes = validation.integer("working_set_bytes", working_set_bytes, 1)
    repeats = validation.integer("repeats", repeats, 1)
    min_batch_seconds = validation.real("min_batch_seconds", min_batch_seconds)
    previous = numba.get_num_threads()
    threads = previous if threads is None else validation.integer("threads", threads, 1)
    if threads > numba.config.NUMBA_NUM_THREADS:
        raise ValueError(
            f"threads must be <= NUMBA_NUM_THREADS ({numba.config.NUMBA_NUM_THREADS}), "
            f"got {threads}"
        )
    n = elements_for_working_set(kernel, working_set_bytes, dtype)
    numba.set_num_threads(threads)
    try:
        variants = [False, True] if threads > 1 else [False]
        calls = {parallel: make_call(kernel, n, dtype, parallel) for parallel in variants}
        times = {parallel: [] for parallel in variants}
        for _ in range(repeats):
            for parallel in variants:
                times[parallel].append(_median_call_time(calls[parallel], 1, min_batch_seconds))
        best = min(float(np.median(t)) for t in times.values())
    finally:
        numba.set_num_threads(previous)
    return bytes_moved(kernel, n, dtype) / best / 1e9


# --------------------------------------------------------------------------------------------
# access patterns: a STREAM kernel of any numbers of read, updated and written arrays
# --------------------------------------------------------------------------------------------
# The kernel of a pattern is generated: one function per (reads, updates, writes), its arrays
# named one by one, so that its loop is as plain as STREAM's and vectorizes (a loop over rows
# of a 2-D array inside the loop over elements does not, and ran 3 times slower in cache). The
# source is written to a file of its own so that Numba caches the compiled code on disk.
_PATTERN_TEMPLATE = """\
# generated by optbench.bandwidth for {label}: do not edit
from numba import njit, prange

from optbench.kernels._config import INLINE, PARALLEL, SERIAL
from optbench.kernels.chunks import CHUNK_ELEMENTS, CHUNK_MULTIPLE, chunk_count

_chunk_count = njit(**INLINE)(chunk_count)


@njit(**SERIAL)
def serial(read, update, write, n, scalar):
    s = {dtype_source}.dtype.type(scalar)
{unpack}
    for j in range(n):
{body}


@njit(**PARALLEL)
def parallel(read, update, write, n, scalar):
    s = {dtype_source}.dtype.type(scalar)
    count = max(_chunk_count(n, CHUNK_ELEMENTS, CHUNK_MULTIPLE), 1)
    for block in prange(count):
        start, stop = n * block // count, n * (block + 1) // count
{unpack_block}
        for j in range(stop - start):
{body_block}
"""
_PATTERN_FUNCTIONS = {}


def _pattern_source(p):
    """The source of the module of :class:`spec.Pass` ``p``: each element's sum ``a`` of the
    read arrays (``s`` with none), then ``u += s a`` for each updated array and ``w = s a``
    for each written one."""
    names = (
        [(f"r{k}", "read", k) for k in range(p.reads)]
        + [(f"u{k}", "update", k) for k in range(p.updates)]
        + [(f"w{k}", "write", k) for k in range(p.writes)]
    )
    total = " + ".join(f"r{k}[j]" for k in range(p.reads)) if p.reads else "s"
    statements = [f"a = {total}"]
    statements += [f"u{k}[j] = u{k}[j] + s * a" for k in range(p.updates)]
    statements += [f"w{k}[j] = s * a" for k in range(p.writes)]
    first = names[0][1]
    return _PATTERN_TEMPLATE.format(
        label=p.label,
        dtype_source=first,
        unpack="\n".join(f"    {v} = {array}[{k}]" for v, array, k in names),
        body="\n".join(f"        {line}" for line in statements),
        unpack_block="\n".join(f"        {v} = {array}[{k}, start:stop]" for v, array, k in names),
        body_block="\n".join(f"            {line}" for line in statements),
    )


def pattern_directory():
    """Where the generated kernels live: ``$OPTBENCH_CACHE_DIR/patterns``, by default
    ``$XDG_CACHE_HOME/optbench/patterns`` (``~/.cache/optbench/patterns``)."""
    root = os.environ.get("OPTBENCH_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "optbench"
    )
    return os.path.join(root, "patterns")


def pass_functions(p):
    """``(serial, parallel)``: the compiled kernels of :class:`spec.Pass` ``p``, each called as
    ``f(read, update, write, n, scalar)`` with 2-D C-contiguous arrays of one dtype whose rows
    are the pass's arrays of ``n`` elements (``read`` has ``p.reads`` rows, and so on)."""
    if not isinstance(p, Pass):
        raise TypeError(f"expected a spec.Pass, got {p!r}")
    key = (p.reads, p.updates, p.writes)
    if key not in _PATTERN_FUNCTIONS:
        source = _pattern_source(p)
        digest = hashlib.sha256(source.encode()).hexdigest()[:12]
        name = f"optbench_pattern_r{p.reads}_u{p.updates}_w{p.writes}_{digest}"
        directory = pattern_directory()
        path = os.path.join(directory, f"{name}.py")
        if not os.path.exists(path):
            os.makedirs(directory, exist_ok=True)
            fd, partial = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".py")
            with os.fdopen(fd, "w") as handle:
                handle.write(source)
            os.replace(partial, path)
        module_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(module_spec)
        # Numba's cache finds a compiled function's module again by name
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
        _PATTERN_FUNCTIONS[key] = (module.serial, module.parallel)
    return _PATTERN_FUNCTIONS[key]


def _check_passes(passes):
    passes = tuple(passes)
    if not passes or not all(isinstance(p, Pass) for p in passes):
        raise TypeError(f"passes must be a non-empty sequence of spec.Pass, got {passes!r}")
    return passes


def pattern_label(passes):
    """``"1r 3u"``, or ``"2r 2u + 2r 1u"`` for two passes (:attr:`spec.Pass.label`)."""
    return " + ".join(p.label for p in _check_passes(passes))


def pattern_bytes(passes, n, dtype):
    """Bytes a call of ``passes`` over ``n`` elements must move: their words * n * itemsize."""
    n = validation.integer("n", n, 0)
    words = sum(p.words for p in _check_passes(passes))
    return words * n * _check_dtype(dtype).itemsize


def pattern_arrays(passes):
    """Arrays a call of ``passes`` holds per element: each pass its own."""
    return sum(p.reads + p.updates + p.writes for p in _check_passes(passes))


def make_pattern_call(passes, n, dtype, parallel, seed=0):
    """A no-argument function running ``passes`` (a sequence of :class:`spec.Pass`) once over
    ``n`` elements of new arrays, each pass its own: the roofline of a kernel of that access
    pattern (``optbench throughput``). As :func:`make_call`: seeded standard normal values,
    compiled and called once here, the scalar's sign alternating between calls so that the
    updated arrays return to their values every second call."""
    passes = _check_passes(passes)
    n = validation.integer("n", n, 1)
    dtype = _check_dtype(dtype)
    rng = np.random.default_rng(seed)
    arrays = [
        tuple(
            rng.standard_normal((count, n), dtype=dtype) for count in (p.reads, p.updates, p.writes)
        )
        for p in passes
    ]
    functions = [pass_functions(p)[bool(parallel)] for p in passes]
    scalars = (SCALAR, -SCALAR)
    calls = [0]

    def call():
        calls[0] += 1
        scalar = scalars[calls[0] & 1]
        for function, (read, update, write) in zip(functions, arrays, strict=True):
            function(read, update, write, n, scalar)

    call.arrays = arrays
    call()
    return call
