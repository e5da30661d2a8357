"""Numba compilation options for every kernel in the package: the one place they are set.

``FASTMATH`` lets LLVM contract ``a*b + c`` into fused multiply-adds, reassociate sums so
reductions vectorize, and ignore the sign of zero. It deliberately leaves out ``nnan`` and
``ninf``: with those, ``isnan`` folds to ``False`` and NaN/Inf no longer propagate as they do in
NumPy and PyTorch. ``error_model="numpy"`` makes ``1/0`` give ``inf`` instead of raising.

``SERIAL`` kernels run on the calling thread; ``PARALLEL`` kernels split their outer ``prange``
loop over Numba's thread pool (``NUMBA_NUM_THREADS`` / ``numba.set_num_threads``). ``INLINE`` is
for small helpers that are inlined into the kernels calling them. All are cached on disk, so a
second process loads the machine code instead of compiling it.
"""

FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

SERIAL = {
    "nopython": True,
    "nogil": True,
    "cache": True,
    "fastmath": FASTMATH,
    "error_model": "numpy",
}
PARALLEL = {**SERIAL, "parallel": True}
INLINE = {**SERIAL, "inline": "always"}
