"""Machine code of the update loops: no masked accesses to the state rows.

A state row that an option uses only with that option is never written without it, so its pages
stay unmapped; a masked load or store of it (even with an all-false mask) takes a microcode
assist on such pages, which made AdaBound's step up to 11x slower. The kernels therefore have
one loop per combination of options (see ``optbench.kernels.optimizers``); this test compiles
each optimizer's chunk function afresh (cached machine code cannot be inspected) and looks for
masked loads and stores of array elements. On a CPU without AVX-512 or AVX masked moves there is
nothing to find, and the test checks nothing.
"""

import pytest

from optbench import registry, testing


@pytest.mark.parametrize("info", registry.specs(), ids=lambda info: info.name)
def test_update_loops_make_no_masked_accesses(info, rng):
    """Both dtypes, the chunk and (for a two-pass spec) its reduce pass: the conformance
    suite's ``codegen`` check, with its pattern of masked moves."""
    failures = testing.check_codegen(info, rng)
    assert not failures, [str(f) for f in failures]
