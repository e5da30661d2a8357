"""Machine code of the update loops: no masked accesses to the state rows.

A state row that an option uses only with that option is never written without it, so its pages
stay unmapped; a masked load or store of it (even with an all-false mask) takes a microcode
assist on such pages, which made AdaBound's step up to 11x slower. The kernels therefore have
one loop per combination of options (see ``optbench.kernels.optimizers``); this test compiles
each optimizer's chunk function afresh (cached machine code cannot be inspected) and looks for
masked loads and stores of array elements. On a CPU without AVX-512 or AVX masked moves there is
nothing to find, and the test checks nothing.
"""

import re

import numba
import pytest
from numba import types

from optbench import registry
from optbench.kernels import _config

# a masked vector move from or to an indexed address: "vmovups (%rdi,%r11,4), %zmm17 {%k3}",
# or AVX's "vmaskmovps"
MASKED_ACCESS = re.compile(
    r"^\s*(?:v(?:p)?maskmov\w*\s|vmov\w*\s[^\n]*\(%\w+,%\w+,\d\)[^\n]*\{%k\d\})", re.M
)


@pytest.mark.parametrize("info", registry.specs(), ids=lambda info: info.name)
def test_update_loops_make_no_masked_accesses(info):
    chunk, name = info.chunk, info.chunk.__name__
    fresh = numba.njit(**{**_config.UNFUSED, "cache": False})(chunk.py_func)
    hyper = types.float64[::1]
    for dtype in (types.float32, types.float64):
        # param, grad, state, column, common hyper, own hyper, step (see kernels._chunk)
        signature = (dtype[::1], dtype[::1], dtype[:, ::1], types.int64, hyper, hyper, types.int64)
        fresh.compile(signature)
        found = MASKED_ACCESS.findall(fresh.inspect_asm(signature))
        assert not found, f"{name}{signature}: {found}"
