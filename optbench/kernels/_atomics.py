"""Atomic integer operations for kernels that share work between threads.

Numba has no atomics for CPU code; these intrinsics emit LLVM's ``atomicrmw`` and atomic
loads on an element of a C-contiguous int64 array. ``fetch_add`` is sequentially consistent,
so every write a thread made before it is visible to a thread whose :func:`load` returns the
updated value.
"""

import platform

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

_X86 = platform.machine().lower() in {"x86_64", "amd64", "i386", "i686"}


def _element_pointer(context, builder, array_type, array, index):
    array = context.make_array(array_type)(context, builder, array)
    return cgutils.get_item_pointer(context, builder, array_type, array, [index])


def _check_int64_array(array):
    if not (isinstance(array, types.Array) and array.dtype == types.int64):
        raise TypeError(f"an int64 array is needed, got {array}")


@intrinsic
def fetch_add(typingctx, array, index, value):
    """``old = array[index]; array[index] += value; return old``, atomically."""
    _check_int64_array(array)
    signature = types.int64(array, types.intp, types.int64)

    def codegen(context, builder, sig, args):
        pointer = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.atomic_rmw("add", pointer, args[2], "seq_cst")

    return signature, codegen


@intrinsic
def load(typingctx, array, index):
    """``array[index]``, read atomically (acquire): later reads see the writer's earlier ones."""
    _check_int64_array(array)
    signature = types.int64(array, types.intp)

    def codegen(context, builder, sig, args):
        pointer = _element_pointer(context, builder, sig.args[0], args[0], args[1])
        return builder.load_atomic(pointer, "acquire", 8)

    return signature, codegen


@intrinsic
def pause(typingctx):
    """A spin-wait hint to the CPU (``pause`` on x86; nothing elsewhere)."""
    signature = types.void()

    def codegen(context, builder, sig, args):
        if _X86:
            function_type = ir.FunctionType(ir.VoidType(), [])
            hint = cgutils.get_or_insert_function(
                builder.module, function_type, "llvm.x86.sse2.pause"
            )
            builder.call(hint, [])
        return context.get_dummy_value()

    return signature, codegen
