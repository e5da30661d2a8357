"""asv benchmark suite of optbench; see ``benchmarks/README.md`` for the commands.

Numba, OpenBLAS (NumPy's matrix products) and PyTorch read their thread counts when they
start, so the counts are pinned here, in the package that asv imports before any benchmark
module: ``NUMBA_NUM_THREADS`` if set, else one thread, for all of them. One thread because the
suite is for tracking changes on shared, noisy machines: a 2-thread step on a loaded 2-core
machine waits for the slower thread (PyTorch's spinning OpenMP pool ran a 1e4-element Adam step
in 0.6 to 7.7 ms there, against 0.12 ms with one thread). Results taken with different thread
counts are not comparable; the parallel speed-up is measured by ``optbench throughput``.

asv_runner imports NumPy before this package, so OpenBLAS has already started its threads
(one per core) when the variables are set: ``threadpoolctl`` limits them here, in the process
that asv's forkserver forks every benchmark from (without it, the MLP training steps used two
BLAS threads).

The layers allocate their outputs at every call; glibc's malloc is asked to keep freed memory
(``optbench.throughput.keep_freed_memory``), as ``optbench throughput`` does, so that a timing
does not depend on whether the heap happened to hand the last call's pages back (a (256, 1024)
LayerNorm forward+backward: 200 us, or 950 us with 540 page faults per call).
"""

import os

from threadpoolctl import threadpool_limits

THREADS = os.environ.setdefault("NUMBA_NUM_THREADS", "1")
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, THREADS)
threadpool_limits(int(THREADS))

from optbench.throughput import keep_freed_memory  # noqa: E402  (after the thread counts)

keep_freed_memory()
