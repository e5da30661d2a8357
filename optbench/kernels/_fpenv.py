"""Flush-to-zero for the kernels: subnormal floats treated and produced as zero.

Arithmetic on subnormal numbers (magnitudes below 1.2e-38 in float32, 2.2e-308 in float64)
takes a slow path on x86 CPUs (25 to 40 times slower per element on some; on the AMD EPYC this
package was measured on, a serial Adam step of 1e6 elements with subnormal moments was 4x
slower in float64 and 1.5x in float32); an optimizer's moments decay into that range when a
gradient stays zero for long. The SSE control register ``MXCSR`` has two
bits that remove the cliff: FTZ (bit 15) writes a subnormal result as zero of the same sign,
DAZ (bit 6) reads a subnormal operand as zero. The register belongs to each thread, so a kernel
sets it on the thread that runs each work item, Numba's worker threads included, and restores
the previous value when the item is done: the calling thread's floating-point environment
(NumPy's, the user's) is unchanged after the call.

:func:`flush_begin` and :func:`flush_end` compile to ``stmxcsr``/``ldmxcsr``; on other CPUs
(``SUPPORTED`` is False) they do nothing. ``flush_begin`` takes the flag as a float64 (the
kernels read it from their float64 hyperparameter table).
"""

import platform

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._config import SERIAL

SUPPORTED = platform.machine().lower() in {"x86_64", "amd64"}
# MXCSR bits: flush to zero (15) and denormals are zero (6)
FLUSH_BITS = (1 << 15) | (1 << 6)


def _mxcsr_call(builder, name, slot):
    function_type = ir.FunctionType(ir.VoidType(), [ir.IntType(8).as_pointer()])
    function = cgutils.get_or_insert_function(builder.module, function_type, name)
    builder.call(function, [builder.bitcast(slot, ir.IntType(8).as_pointer())])


def _mxcsr_slot(builder):
    return cgutils.alloca_once(builder, ir.IntType(32))


@intrinsic
def flush_begin(typingctx, flush):
    """If ``flush`` is nonzero, set FTZ and DAZ on this thread and return the previous MXCSR;
    otherwise return -1 and change nothing. Give the result to :func:`flush_end`.

    An intrinsic rather than a Numba function: it costs the kernels no inlining pass.
    """
    signature = types.int64(types.float64)

    def codegen(context, builder, sig, args):
        result = cgutils.alloca_once_value(builder, ir.Constant(ir.IntType(64), -1))
        if SUPPORTED:
            wanted = builder.fcmp_unordered("!=", args[0], ir.Constant(ir.DoubleType(), 0.0))
            with builder.if_then(wanted):
                slot = _mxcsr_slot(builder)
                _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", slot)
                saved = builder.load(slot)
                builder.store(builder.or_(saved, ir.Constant(ir.IntType(32), FLUSH_BITS)), slot)
                _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", slot)
                builder.store(builder.zext(saved, ir.IntType(64)), result)
        return builder.load(result)

    return signature, codegen


@intrinsic
def flush_end(typingctx, saved):
    """Restore the MXCSR that :func:`flush_begin` returned (nothing if it returned -1)."""
    signature = types.void(types.int64)

    def codegen(context, builder, sig, args):
        if SUPPORTED:
            restore = builder.icmp_signed(">=", args[0], ir.Constant(ir.IntType(64), 0))
            with builder.if_then(restore):
                slot = _mxcsr_slot(builder)
                builder.store(builder.trunc(args[0], ir.IntType(32)), slot)
                _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", slot)
        return context.get_dummy_value()

    return signature, codegen


@intrinsic
def _read_mxcsr(typingctx):
    signature = types.int64()

    def codegen(context, builder, sig, args):
        if not SUPPORTED:
            return ir.Constant(ir.IntType(64), -1)
        slot = _mxcsr_slot(builder)
        _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", slot)
        return builder.zext(builder.load(slot), ir.IntType(64))

    return signature, codegen


@njit(**SERIAL)
def current_mxcsr():
    """This thread's MXCSR, or -1 on CPUs without one (for tests)."""
    return _read_mxcsr()
