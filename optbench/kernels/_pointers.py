"""Raw views of many arrays from one compiled call.

An optimizer steps a whole model (often 100+ arrays of different shapes) in one kernel call.
Passing the arrays themselves would make Numba compile one specialization per number and shape
of arrays; instead the Python layer passes a table of data addresses (``ndarray.ctypes.data``)
and the kernels rebuild 1-D views of the elements they need with :func:`view`. The Python layer
owns every array for the duration of the call and has checked its dtype, size and contiguity.
"""

import numba
from numba import types
from numba.extending import intrinsic

from ._config import INLINE


@intrinsic
def _address_as_pointer(typingctx, address, like):
    """Reinterpret an integer address as a pointer to elements of ``like``'s dtype."""
    signature = types.CPointer(like.dtype)(types.intp, like)

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], context.get_value_type(sig.return_type))

    return signature, codegen


@numba.njit(**INLINE)
def view(address, start, stop, like):
    """1-D view of elements ``[start, stop)`` of the C-contiguous buffer at ``address``.

    ``like`` is any array of the buffer's dtype; only its dtype and item size are used.
    """
    pointer = _address_as_pointer(address + start * like.itemsize, like)
    return numba.carray(pointer, (stop - start,))
