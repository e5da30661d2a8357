"""Seeded, cached data for the benchmarks, the loop length that makes small kernels timeable,
and the optional PyTorch peer.

Timing: asv 0.6 with asv_runner 0.3 re-runs ``setup()`` before every timed call and times a
single call (``number=1``), so one microsecond step is below the timer's resolution and drowned
in noise. Every ``time_*`` benchmark therefore runs a loop of ``steps_per_call(...)`` steps (or
layer calls) per timed call and reports the time of that whole loop; the loop length is a
function of the benchmark's parameters only, never calibrated at run time, so that a slower
commit shows as a longer time. Divide by the loop length for the time of one step.

Smoke mode: with ``OPTBENCH_BENCH_SMOKE=1`` in the environment every grid keeps all its
optimizers, layers, problems, dtypes and peers but only its smallest size, and the problem,
startup and convergence suites shrink their work, so that ``asv run --quick`` checks that every
benchmark runs in a few minutes (``.ci/bench-smoke``). Its numbers are not results.

Set-up cost: because ``setup()`` runs before every sample, the data and the compiled, warmed
objects are built once per process by the ``functools.cache`` helpers here and reused by the
later ``setup()`` calls. Compilation (or loading from Numba's cache) happens in the first
``setup()``, never inside a timing.
"""

import functools
import os

import numpy as np

from optbench.throughput import matrix_shape

THREADS = int(os.environ["NUMBA_NUM_THREADS"])  # set by __init__
SMOKE = os.environ.get("OPTBENCH_BENCH_SMOKE") == "1"

try:
    import torch
except ImportError:  # the PyTorch peers are skipped
    torch = None
else:
    torch.set_num_threads(THREADS)
    # torch.optim imports torch._dynamo on its first step (1.4 s): done here, once, it is
    # inherited by every benchmark process that asv's forkserver forks from this one
    _tensor = torch.zeros(1, requires_grad=True)
    _tensor.grad = torch.ones(1)
    torch.optim.SGD([_tensor], foreach=True).step()
    del _tensor

# Elements touched per timed call, at least: ~1 to 30 ms of work whatever the size.
ELEMENTS_PER_CALL = 10_000_000
# Python overhead of one array in a step, in elements of data work (~10 us).
ARRAY_COST = 10_000

# Model sizes (elements) and layouts (arrays holding them) of the optimizer benchmarks.
SIZES = (10_000,) if SMOKE else (10_000, 1_000_000, 10_000_000)
LAYOUTS = (1, 100)
DTYPES = ("float32", "float64")


def steps_per_call(n_elements, n_arrays=1):
    """Loop length K of a timed call: ``max(1, ELEMENTS_PER_CALL // (n_elements + ARRAY_COST
    * n_arrays))``.

    Each array is charged ``ARRAY_COST`` elements on top of its data: the Python work of a step
    grows with the number of arrays (a check per array in a kernel step, a chain of NumPy calls
    per array in a peer), so a model of many small arrays gets a shorter loop.
    """
    return max(1, ELEMENTS_PER_CALL // (n_elements + ARRAY_COST * n_arrays))


@functools.cache
def split_sizes(total, n_arrays):
    """Sizes of ``n_arrays`` arrays summing to ``total``, as even as possible."""
    base, extra = divmod(total, n_arrays)
    return tuple(base + (i < extra) for i in range(n_arrays))


def model(total, n_arrays, dtype, seed=0, matrices=False):
    """New parameters and gradients of a model of ``n_arrays`` 1-D arrays (matrices of
    ``optbench.throughput.matrix_shape`` with ``matrices``), ``total`` elements in all,
    standard normal values of ``dtype`` from ``seed``: ``(params, grads)``, two lists."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    sizes = split_sizes(total, n_arrays)
    shapes = [matrix_shape(size) if matrices else (size,) for size in sizes]
    params = [rng.standard_normal(shape, dtype=dtype) for shape in shapes]
    grads = [rng.standard_normal(shape, dtype=dtype) for shape in shapes]
    return params, grads


@functools.cache
def normal(shape, dtype, seed=0):
    """A cached standard normal array of ``shape`` and ``dtype``: never write into it."""
    array = np.random.default_rng(seed).standard_normal(shape, dtype=np.dtype(dtype))
    array.flags.writeable = False
    return array


def require_torch():
    """The ``torch`` module, or ``NotImplementedError`` (asv's "skip") when it is absent."""
    if torch is None:
        raise NotImplementedError("torch is not installed")
    return torch


def torch_dtype(dtype):
    return {"float32": require_torch().float32, "float64": require_torch().float64}[dtype]
