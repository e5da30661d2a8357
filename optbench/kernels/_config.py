"""Numba compilation options for every kernel in the package: the one place they are set.

``FASTMATH`` only lets LLVM contract ``a*b + c`` into fused multiply-adds (one rounding instead
of two; NaN and Inf behave as before). Every other fast-math flag changes what special values
do: ``nnan``/``ninf`` fold ``isnan`` to ``False``, and ``reassoc`` with ``nsz`` let LLVM rewrite
Adam's ``b*m + (1-b)*g`` so that an infinite gradient gave a NaN moment instead of an infinite
one (seen in this package's NaN/Inf tests); ``arcp``/``afn`` only change roundings against
PyTorch's plain division and square root. The kernels are memory-bound, so nothing is lost.
Reductions that must vectorize keep several partial sums in fixed lanes explicitly, which also
keeps their result independent of thread count.

``error_model="numpy"`` makes ``1/0`` give ``inf`` instead of raising.

The optimizer kernels use ``UNFUSED_*``: no contraction at all. Whether LLVM fuses a product
into an addition depends on the code around it (which of two products it fuses in
``a*b + c*d``, whether a product with another use is fused at all), and the serial and
parallel kernels, compiled apart and inlined differently, were measured to round the same Adam
and NAdam updates differently. Unfused, every operation is rounded as in NumPy: the serial
and parallel kernels agree bitwise whatever the compilation history, and so do the optimizers
and their NumPy reference for the same sequence of operations.

``REDUCTION`` is for small, never inlined functions that only sum a contiguous run into a float64
total: ``reassoc`` lets LLVM keep several vector accumulators in registers (a LayerNorm row's
mean and variance, float32 (256, 1024): 2.2x faster than partial sums kept in an array). It
changes nothing else: a sum still propagates NaN, and +Inf and -Inf still give NaN in any
order. What it changes is the order of the additions, which LLVM picks for the machine's
vector width: such a sum is the same in the serial and the parallel kernel and for any thread
count (one compiled function serves both), but can differ in the last bits between an AVX2
and an AVX-512 machine. Numba sets fast-math flags per instruction, so inlining these
functions with ``inline="always"`` would drop the flag; LLVM's own inlining keeps it.

``SERIAL`` kernels run on the calling thread; ``PARALLEL`` kernels split their outer ``prange``
loop over Numba's thread pool (``NUMBA_NUM_THREADS`` / ``numba.set_num_threads``). ``INLINE`` is
for small helpers that are inlined into the kernels calling them. All are cached on disk, so a
second process loads the machine code instead of compiling it. Numba revalidates a cached
kernel against its own source file only: after editing this file, ``make clean`` removes the
stale machine code.
"""

FASTMATH = frozenset({"contract"})

SERIAL = {
    "nogil": True,
    "cache": True,
    "fastmath": set(FASTMATH),
    "error_model": "numpy",
}
PARALLEL = {**SERIAL, "parallel": True}
INLINE = {**SERIAL, "inline": "always"}
REDUCTION = {**SERIAL, "fastmath": set(FASTMATH | {"reassoc"})}
UNFUSED = {**SERIAL, "fastmath": set()}
UNFUSED_PARALLEL = {**UNFUSED, "parallel": True}
UNFUSED_INLINE = {**UNFUSED, "inline": "always"}
